// The Socket.IO 4 chat server that scripts/bench measures Tidings against.
//
// It is written the way Socket.IO's own documentation shows a chat: clients `join` a room and
// send `message` events that the server re-emits to the room's other members, acknowledging the
// sender through the event's callback. Nothing is stored and nobody's membership is checked:
// this is the lean baseline a Node developer would start from, not a Tidings clone. With
// REDIS_URL set, the official Redis adapter carries each room broadcast to every node.
//
// Two small additions make the benchmark's memory and "authenticated connection" figures
// comparable with Tidings:
//   * `POST /register` (form or JSON `username`, `password`) hashes the password with Node's
//     built-in scrypt and keeps the account in a Map, and answers a session token;
//   * a connection must present that token in its handshake (`40{"token":"…"}`). Tokens are
//     HMAC-signed usernames, so every node accepts tokens issued by any other node.
//
// Usage: node server.js [PORT] [REDIS_URL]   (or PORT, REDIS_URL, REDIS_PREFIX, PEER_SECRET env)

import { createServer } from "node:http";
import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { Server } from "socket.io";

const port = Number(process.env.PORT ?? process.argv[2] ?? 3000);
const redisUrl = process.env.REDIS_URL ?? process.argv[3];
const redisPrefix = process.env.REDIS_PREFIX ?? "socket.io";
// Shared by all nodes of one cluster, so a token signed by one is valid on the others.
const secret = process.env.PEER_SECRET ?? "tidings-bench-peer";
const scryptAsync = promisify(scrypt);

// ---------------------------------------------------------------------------------------------
// Accounts: username -> { id, salt, hash }. Process memory only, like the rest of this server.
const users = new Map();
let nextUserId = 1;

const sign = (username) => createHmac("sha256", secret).update(username).digest("base64url");
const tokenFor = (username) => `${username}.${sign(username)}`;

// Returns the username a token was issued for, or null.
function verify(token) {
  if (typeof token !== "string") return null;
  const dot = token.lastIndexOf(".");
  if (dot <= 0) return null;
  const username = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1));
  const expected = Buffer.from(sign(username));
  return given.length === expected.length && timingSafeEqual(given, expected) ? username : null;
}

function readBody(req, limit = 4096) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
      if (body.length > limit) reject(new Error("too large"));
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

function reply(res, status, value, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(value));
}

async function register(req, res) {
  let fields;
  try {
    const body = await readBody(req);
    fields = (req.headers["content-type"] ?? "").includes("application/json")
      ? JSON.parse(body)
      : Object.fromEntries(new URLSearchParams(body));
  } catch {
    return reply(res, 400, { code: "invalid", message: "unreadable body" });
  }
  const username = String(fields.username ?? "").toLowerCase();
  const password = String(fields.password ?? "");
  if (!/^[a-z0-9_.-]{3,32}$/.test(username) || password.length < 8) {
    return reply(res, 400, { code: "invalid", message: "bad username or password" });
  }
  if (users.has(username)) return reply(res, 409, { code: "conflict", message: "taken" });
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, 64);
  if (users.has(username)) return reply(res, 409, { code: "conflict", message: "taken" });
  const id = nextUserId++;
  users.set(username, { id, salt, hash });
  const token = tokenFor(username);
  reply(res, 200, { id, username, token }, {
    "set-cookie": `session=${token}; HttpOnly; SameSite=Lax; Path=/`,
  });
}

const httpServer = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/register") {
    register(req, res).catch(() => reply(res, 500, { code: "internal" }));
  } else if (req.url === "/healthz") {
    reply(res, 200, { status: "ok", users: users.size, connections: io.engine.clientsCount });
  } else {
    reply(res, 404, { code: "not_found" });
  }
});

// ---------------------------------------------------------------------------------------------
// The chat, as in Socket.IO's documentation.
const io = new Server(httpServer, { serveClient: false });

if (redisUrl) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  for (const client of [pubClient, subClient]) {
    client.on("error", (err) => console.error("redis:", err.message));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient, { key: redisPrefix }));
}

io.use((socket, next) => {
  const username = verify(socket.handshake.auth?.token);
  if (!username) return next(new Error("unauthorized"));
  socket.data.username = username;
  next();
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("message", (room, msg, ack) => {
    socket.to(room).emit("message", msg);
    if (typeof ack === "function") ack();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`socket.io peer on 127.0.0.1:${port}${redisUrl ? ` (redis ${redisUrl})` : ""}`);
});
