// Issue 11: an incoming webhook made from the UI posts as its bot, which both people see live
// and marked as a bot; a wrong or revoked URL is refused with 404 and shows nothing. A bot made
// with `tidings bot create` and added to a group like a person posts through `/api/v1`; both
// people see it live, once per Idempotency-Key; before it joins it gets 403, once revoked 401.
import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  createGroup,
  delivered,
  expectMessage,
  openConversation,
  registerUser,
  uniqueName,
} from "./helpers";

test("a webhook made in Group info posts as a bot, live, until revoked", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const group = uniqueName("builds");
  await createGroup(alice.page, group, [bob.name]);
  await openConversation(bob.page, group);

  await alice.page.getByRole("button", { name: "Group info" }).click();
  const panel = alice.page.getByRole("dialog");
  await panel.getByRole("button", { name: "Webhooks" }).click();
  const botName = uniqueName("ci");
  await panel.getByLabel("Webhook bot name").fill(botName);
  await panel.getByRole("button", { name: "Create webhook" }).click();
  const url = (await panel.getByTestId("webhook-url").textContent()) ?? "";
  expect(url).toMatch(/^http:\/\/.+\/hooks\/[0-9a-f]{64}$/);
  await expect(panel.getByRole("list", { name: "Webhooks of this group" })).toContainText(botName);
  // The bot joined the group: a member, tagged as a bot.
  const member = panel.getByRole("list", { name: "Members of this group" }).getByText(botName);
  await expect(member.locator("..").locator(".bot-badge")).toHaveText("bot");

  // Anything with the URL posts; both people see it at once, from the bot.
  const posted = await alice.page.request.post(url, { data: { text: "build 17 passed" } });
  expect(posted.status()).toBe(200);
  for (const page of [alice.page, bob.page]) {
    await expectMessage(page, "build 17 passed");
    const bubble = page.getByRole("log").locator("li.msg", { hasText: "build 17 passed" });
    await expect(bubble.locator(".sender")).toHaveText(botName);
    await expect(bubble.locator(".bot-badge")).toHaveText("bot");
  }

  // A wrong secret is 404 and shows nothing.
  const wrong = url.replace(/[0-9a-f]{64}$/, "0".repeat(64));
  const refused = await alice.page.request.post(wrong, { data: { text: "sneaky" } });
  expect(refused.status()).toBe(404);

  // Revoked from the UI: the URL answers 404.
  await panel.getByRole("button", { name: `Revoke webhook ${botName}` }).click();
  await expect(panel.getByRole("list", { name: "Webhooks of this group" })).not.toContainText(botName);
  const after = await alice.page.request.post(url, { data: { text: "after revoke" } });
  expect(after.status()).toBe(404);
  await expect(bob.page.getByRole("log")).not.toContainText("sneaky");
  await expect(bob.page.getByRole("log")).not.toContainText("after revoke");
  expect(alice.errors).toEqual([]);
  expect(bob.errors).toEqual([]);
});

test("a bot posts through the HTTP API and two browsers see the message live", async ({ browser, request }) => {
  // scripts/test passes the server's binary and database: the bot is made the operator's way.
  const bin = process.env.TIDINGS_BIN;
  const database = process.env.TIDINGS_DATABASE_URL;
  test.skip(!bin || !database, "needs TIDINGS_BIN and TIDINGS_DATABASE_URL (scripts/test sets them)");
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const group = uniqueName("deploys");
  await createGroup(alice.page, group, [bob.name]);
  const conv = Number(/\/c\/(\d+)$/.exec(alice.page.url())![1]);
  await openConversation(bob.page, group);

  // `tidings bot create NAME` prints the token (only it) on stdout, beside the running server.
  const botName = uniqueName("deploybot");
  const token = execFileSync(bin!, ["bot", "create", botName, "--database-url", database!], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
  expect(token).toMatch(/^\S{16,}$/);

  // Not a member yet: the API refuses, and nothing is shown.
  const api = `/api/v1/conversations/${conv}/messages`;
  const auth = { Authorization: `Bearer ${token}` };
  const early = await request.post(api, { headers: auth, data: { body: "too early" } });
  expect(early.status()).toBe(403);

  // The owner adds the bot in Group info exactly as a person; it is listed as a bot.
  await alice.page.getByRole("button", { name: "Group info" }).click();
  const panel = alice.page.getByRole("dialog");
  await panel.getByLabel("Add member").fill(botName);
  await panel.getByRole("button", { name: "Add", exact: true }).click();
  const member = panel.getByRole("list", { name: "Members of this group" }).getByText(botName);
  await expect(member.locator(".bot-badge")).toHaveText("bot");
  await panel.getByRole("button", { name: "Close" }).click();
  await expect(panel).toBeHidden();

  // Posted with the token; the same Idempotency-Key twice stores one message.
  const key = randomUUID();
  const post = (body: string, idempotencyKey: string) =>
    request.post(api, { headers: { ...auth, "Idempotency-Key": idempotencyKey }, data: { body } });
  const first = await post("deploy 42 finished", key);
  expect(first.status()).toBe(200);
  const stored = await first.json();
  expect(stored.sender.username).toBe(botName);
  const repeat = await post("deploy 42 finished", key);
  expect(repeat.status()).toBe(200);
  expect((await repeat.json()).seq).toBe(stored.seq);
  // A later message: once it is shown, a duplicate of the first (had one been stored) would be too.
  expect((await post("deploy 43 started", randomUUID())).status()).toBe(200);

  for (const page of [alice.page, bob.page]) {
    await expectMessage(page, "deploy 43 started");
    await expect(delivered(page).getByText("deploy 42 finished", { exact: true })).toHaveCount(1);
    const bubble = page.getByRole("log").locator("li.msg", { hasText: "deploy 42 finished" });
    await expect(bubble.locator(".sender")).toHaveText(botName);
    await expect(bubble.locator(".bot-badge")).toHaveText("bot");
  }
  // What is stored, as the bot reads it: each message once, nothing from before it joined.
  const log = await request.get(`${api}?after_seq=0&limit=100`, { headers: auth });
  expect(log.status()).toBe(200);
  const bodies = ((await log.json()).messages as { body: string }[]).map((m) => m.body);
  expect(bodies).toEqual(["deploy 42 finished", "deploy 43 started"]);
  await expect(bob.page.getByRole("log")).not.toContainText("too early");

  // `tidings bot revoke NAME`: the token is refused (401) and nothing more is shown.
  execFileSync(bin!, ["bot", "revoke", botName, "--database-url", database!], { stdio: "ignore" });
  const revoked = await post("after revoke", randomUUID());
  expect(revoked.status()).toBe(401);
  await expect(delivered(alice.page)).toHaveCount(2);
  await expect(bob.page.getByRole("log")).not.toContainText("after revoke");
  expect(alice.errors).toEqual([]);
  expect(bob.errors).toEqual([]);
  for (const u of [alice, bob]) await u.context.close();
});
