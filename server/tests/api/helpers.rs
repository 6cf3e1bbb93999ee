//! Test harness: `spawn_app()` starts the real server (the same `Server::start` as `main`) on a
//! free port with a fresh SQLite file; `TestUser` holds a real session cookie from the real
//! `/api/register`; `Client` is a real WebSocket connection speaking the typed protocol.

use app::model::{ConvId, Conversation, Message, UserRef};
use app::protocol::{ClientFrame, ServerFrame};
use futures::{SinkExt, StreamExt};
use server::config::Config;
use server::Server;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub db_url: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Starts a server on a fresh database. `tweak` adjusts the configuration (timeouts, queues).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = format!("sqlite://{}", dir.path().join("tidings.db").display());
    let server = start(&db_url, tweak).await;
    TestApp {
        addr: server.addr,
        server: Some(server),
        db_url,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Flags for tests that generate traffic faster than a person types: the per-user send rate
/// (20/s by default) would otherwise refuse most of it. The limit itself is tested in
/// `hardening.rs`.
pub const TRAFFIC: [&str; 4] = ["--send-rate", "1000000", "--send-burst", "1000000"];

/// The same for an embedded server (`spawn_app_with(traffic)`).
pub fn traffic(config: &mut Config) {
    config.send_rate = 1_000_000;
    config.send_burst = 1_000_000;
}

/// Starts a server on an existing database (e.g. a MariaDB one, shared by several servers).
pub async fn spawn_app_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let server = start(db_url, tweak).await;
    TestApp {
        addr: server.addr,
        server: Some(server),
        db_url: db_url.to_owned(),
        http: reqwest::Client::new(),
        _dir: tempfile::tempdir().expect("temp dir"),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

async fn start(db_url: &str, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::with_database(db_url);
    config.addr = Some("127.0.0.1:0".parse().unwrap());
    config.log = "warn".into();
    tweak(&mut config);
    Server::start(config).await.expect("server starts")
}

impl TestApp {
    /// A handle on a server started elsewhere (e.g. a child process), for its HTTP helpers.
    pub fn attach(addr: SocketAddr) -> TestApp {
        TestApp {
            server: None,
            addr,
            db_url: String::new(),
            http: reqwest::Client::new(),
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and starts a new one on the same database file (a new port).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let server = start(&self.db_url, |_| {}).await;
        self.addr = server.addr;
        self.server = Some(server);
    }

    pub fn store(&self) -> server::store::Store {
        self.server.as_ref().expect("running").state.store.clone()
    }

    /// POSTs a form to a server function; returns the status and the JSON reply.
    pub async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// POSTs a form with extra request headers; the status, the JSON reply and the reply's
    /// headers.
    pub async fn post_with(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let reply_headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            reply_headers,
        )
    }

    /// Registers `name` (made unique per test run is not needed: every app has a fresh database).
    pub async fn register(&self, name: &str) -> TestUser {
        let res = self
            .http
            .post(self.url("/api/register"))
            .form(&[("username", name), ("password", "correct horse battery")])
            .send()
            .await
            .expect("register");
        assert_eq!(res.status(), 200, "register {name}");
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("tidings_session="))
            .expect("session cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let user: UserRef = res.json().await.expect("user json");
        TestUser { user, cookie }
    }

    pub async fn open_direct(&self, me: &TestUser, other: &str) -> Conversation {
        let (status, body) = self
            .post("/api/open_direct", Some(&me.cookie), &[("username", other)])
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn create_group(&self, me: &TestUser, title: &str, members: &str) -> Conversation {
        let (status, body) = self
            .post(
                "/api/create_group",
                Some(&me.cookie),
                &[("title", title), ("members", members)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    pub async fn connect(&self, user: &TestUser) -> Client {
        Client::connect(self.addr, Some(&user.cookie))
            .await
            .expect("websocket upgrade")
    }
}

pub struct TestUser {
    pub user: UserRef,
    pub cookie: String,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that speaks the protocol's types.
pub struct Client {
    pub socket: Socket,
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        cookie: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("ws://{addr}/ws").into_client_request()?;
        if let Some(cookie) = cookie {
            req.headers_mut().insert("cookie", cookie.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(req).await?;
        let mut client = Client { socket };
        match client.recv().await {
            ServerFrame::Hello { .. } => Ok(client),
            other => panic!("expected hello first, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&frame.to_json()).await;
    }

    /// Sends a frame; false if the connection is gone (for clients that expect the server to die).
    pub async fn try_send(&mut self, frame: &ClientFrame) -> bool {
        self.socket
            .send(WsMessage::Text(frame.to_json().into()))
            .await
            .is_ok()
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(WsMessage::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_message(&mut self, conv: ConvId, client_id: &str, body: &str) {
        self.send(&ClientFrame::Send {
            conv,
            client_id: client_id.into(),
            body: body.into(),
            reply_to: None,
            attachment: None,
        })
        .await;
    }

    /// The next protocol frame (pings and pongs are skipped); panics after [`WAIT`].
    pub async fn recv(&mut self) -> ServerFrame {
        self.try_recv(WAIT)
            .await
            .expect("a frame before the timeout")
    }

    /// The next protocol frame within `wait`, or None (timeout or closed).
    pub async fn try_recv(&mut self, wait: Duration) -> Option<ServerFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                WsMessage::Text(text) => {
                    return Some(
                        serde_json::from_str(&text)
                            .unwrap_or_else(|e| panic!("bad frame {text}: {e}")),
                    )
                }
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips frames until one matches `pick`; panics if none arrives within [`WAIT`].
    pub async fn expect<T>(&mut self, mut pick: impl FnMut(ServerFrame) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .try_recv(left)
                .await
                .expect("expected frame did not arrive");
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    }

    pub async fn expect_message(&mut self) -> Message {
        self.expect(|f| match f {
            ServerFrame::Message(m) => Some(m),
            _ => None,
        })
        .await
    }

    pub async fn expect_ack(&mut self, client_id: &str) -> ServerFrame {
        let client_id = client_id.to_owned();
        self.expect(move |f| match &f {
            ServerFrame::Ack { client_id: c, .. } if *c == client_id => Some(f),
            _ => None,
        })
        .await
    }

    /// Receives frames for `wait` and returns them all (for asserting that nothing else came).
    pub async fn drain(&mut self, wait: Duration) -> Vec<ServerFrame> {
        let mut out = Vec::new();
        while let Some(frame) = self.try_recv(wait).await {
            out.push(frame);
        }
        out
    }
}

/// A path inside the temp dir (for tests that need files of their own).
#[allow(dead_code)]
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tidings-test-{}-{name}", std::process::id()))
}

/// The real `tidings` binary as a child process (for kill -9 tests and per-process memory).
pub struct Node {
    pub addr: SocketAddr,
    db_url: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    pub async fn start(addr: SocketAddr, db_url: &str, extra_args: &[&str]) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args([
                "--addr",
                &addr.to_string(),
                "--database-url",
                db_url,
                "--log",
                "warn",
            ])
            .args(extra_args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tidings");
        let node = Node {
            addr,
            db_url: db_url.to_owned(),
            args: extra_args.iter().map(|a| a.to_string()).collect(),
            child: Some(child),
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("http://{addr}/healthz"))
                .send()
                .await
                .is_ok()
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tidings did not come up on {addr}");
    }

    /// SIGTERM, then wait (up to 30 s) for the process to exit; its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .expect("exit status")
    }

    /// SIGKILL, and leave it dead.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL");
        }
    }

    /// SIGKILL, then start again on the same address, database and flags.
    pub async fn kill_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().await.expect("SIGKILL"); // tokio's kill() is SIGKILL on unix
        let args: Vec<String> = self.args.clone();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        *self = Node::start(self.addr, &self.db_url.clone(), &args).await;
    }
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Node {
    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().and_then(|c| c.id()).expect("running");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .map(str::to_owned)
            })
            .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// One counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}

/// A private `redis-server` on its own port, for tests that kill Redis (never the shared one).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return RedisServer {
                    port,
                    child: Some(child),
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL redis");
        }
    }
}
