// Issue 9, honest reading: a message is read only once it has been on screen in a visible,
// focused tab. Until then it raises the badge and the title count, and its sender sees no "Seen".
import { test, expect, Page } from "@playwright/test";
import {
  conversationLink,
  delivered,
  expectMessage,
  openConversation,
  pending,
  registerUser,
  send,
  setTabHidden,
  startChat,
  uniqueName,
  waitConnected,
} from "./helpers";

const favicon = (page: Page) => page.locator("link[rel~='icon']").getAttribute("href");

test("a hidden tab keeps the badge and the title count; Seen waits until the tab is shown", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "hello?");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "hello?");
  const seen = alice.page.getByRole("log").getByText("Seen", { exact: true });
  await expect(seen).toBeVisible();
  await expect(bob.page).toHaveTitle("Tidings");

  // Bob switches to another tab, leaving the chat open in this one.
  await setTabHidden(bob.page, true);
  await send(alice.page, "are you there?");
  await send(alice.page, "it's urgent");
  // Delivered and drawn in Bob's open conversation, but not read: badge, title, favicon.
  await expectMessage(bob.page, "it's urgent");
  await expect(conversationLink(bob.page, alice.name)).toHaveAccessibleDescription(/it's urgent.*2 unread/);
  await expect(bob.page).toHaveTitle("(2) Tidings");
  expect(await favicon(bob.page)).toBe("/favicon-unread.svg");
  // The "New messages" line marks where the news starts.
  await expect(bob.page.locator("li.new-line + li.msg .body")).toHaveText("are you there?");
  // Alice's "Seen" went with her newer messages, and does not come back while Bob is away.
  await expect(seen).toHaveCount(0);
  await alice.page.waitForTimeout(1500);
  await expect(seen).toHaveCount(0);

  // Bob comes back to the tab: read, and Alice is told.
  await setTabHidden(bob.page, false);
  await expect(seen).toBeVisible();
  await expect(bob.page).toHaveTitle("Tidings");
  await expect(conversationLink(bob.page, alice.name)).not.toHaveAccessibleDescription(/unread/);
  expect(await favicon(bob.page)).toBe("/favicon.svg");

  // A window without the focus is not being read either.
  await bob.page.evaluate(() => {
    document.hasFocus = () => false;
    window.dispatchEvent(new Event("blur"));
  });
  await send(alice.page, "still there?");
  await expectMessage(bob.page, "still there?");
  await expect(bob.page).toHaveTitle("(1) Tidings");
  await bob.page.evaluate(() => {
    document.hasFocus = () => true;
    window.dispatchEvent(new Event("focus"));
  });
  await expect(bob.page).toHaveTitle("Tidings");
  await expect(seen).toBeVisible();

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("opening a conversation lands at the New messages line; unread counts only others' messages", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "before");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "before");
  // Bob's own messages never count as unread for him.
  await send(bob.page, "my own words");
  await bob.page.goto("/");
  await waitConnected(bob.page);

  const news = Array.from({ length: 40 }, (_, i) => `news ${String(i + 1).padStart(2, "0")}`);
  for (const text of news) await send(alice.page, text);
  const link = conversationLink(bob.page, alice.name);
  await expect(link).toHaveAccessibleDescription(/40 unread/);
  await expect(bob.page).toHaveTitle("(40) Tidings");

  await openConversation(bob.page, alice.name);
  const line = bob.page.locator("li.new-line");
  await expect(line).toBeInViewport();
  await expect(bob.page.locator("li.new-line + li.msg .body")).toHaveText("news 01");
  // What is on screen is read; the rest waits below, counted on the way down.
  const jump = bob.page.getByRole("button", { name: /New messages/ });
  await expect(jump).toBeVisible();
  const left = Number((await jump.textContent())!.match(/\((\d+)\)/)![1]);
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThan(40);
  await expect(bob.page).toHaveTitle(`(${left}) Tidings`);
  await jump.click();
  await expect(delivered(bob.page).last()).toBeInViewport();
  await expect(jump).toBeHidden();
  await expect(bob.page).toHaveTitle("Tidings");
  await expect(link).not.toHaveAccessibleDescription(/unread/);

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("Seen is drawn only under stored messages, never under one still sending", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);

  // Alice's next sends reach the server, but what the server says back about them is held.
  let hold = false;
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => {
      const frame = JSON.parse(message.toString());
      const about = frame.type === "ack" || (frame.type === "message" && frame.body === "held back");
      if (!(hold && about)) ws.send(message);
    });
  });
  await alice.page.reload();
  await waitConnected(alice.page);
  await openConversation(alice.page, bob.name);
  await send(alice.page, "stored");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "stored");
  const log = alice.page.getByRole("log");
  await expect(log.getByText("Seen", { exact: true })).toBeVisible();

  hold = true;
  await send(alice.page, "held back");
  await expectMessage(bob.page, "held back");
  await expect(pending(alice.page)).toHaveText(["held back"]);
  // Bob has read it, but Alice's page does not know it is stored: "Seen" stays under "stored".
  await alice.page.waitForTimeout(1000);
  await expect(log.locator("li.msg.pending ~ li.seen")).toHaveCount(0);
  await expect(log.locator("li.seen + li.msg.pending")).toHaveCount(1);

  for (const u of [alice, bob]) await u.context.close();
});
