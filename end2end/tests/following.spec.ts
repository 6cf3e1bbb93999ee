// Issue 9, following the conversation: at the bottom, new messages (live bursts and catch-up
// after a reconnect) keep the view at the bottom; scrolled up, nothing moves the view and a
// "New messages ↓ (N)" button counts what came.
import { test, expect, Page } from "@playwright/test";
import { delivered, expectMessage, openConversation, registerUser, send, startChat, uniqueName } from "./helpers";

const numbered = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix} ${String(i + 1).padStart(3, "0")}`);

/** Distance in pixels between the log's view and its bottom. */
const fromBottom = (page: Page) =>
  page.getByRole("log").evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);

test("bursts keep a reader at the bottom; a reader scrolled up is never moved", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "hi");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "hi");
  const first = ["hi", ...numbered("first", 20)];
  for (const text of first.slice(1)) await send(alice.page, text);
  await expectMessage(bob.page, "first 020");
  await expect(delivered(bob.page).last()).toBeInViewport();

  // A live burst while Bob is at the bottom: he stays there.
  const burst = numbered("burst", 50);
  for (const text of burst) await send(alice.page, text);
  await expectMessage(bob.page, "burst 050");
  await expect(delivered(bob.page).last()).toBeInViewport();
  expect(await fromBottom(bob.page)).toBeLessThan(5);

  // Bob scrolls up to read something older.
  const log = bob.page.getByRole("log");
  await log.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await bob.page.waitForTimeout(300);
  const before = await log.evaluate((el) => el.scrollTop);
  const more = numbered("more", 12);
  for (const text of more) await send(alice.page, text);
  await expect(delivered(bob.page)).toHaveCount(first.length + burst.length + more.length);
  await bob.page.waitForTimeout(300);
  expect(Math.abs((await log.evaluate((el) => el.scrollTop)) - before)).toBeLessThan(2);
  const jump = bob.page.getByRole("button", { name: "New messages (12)" });
  await expect(jump).toBeVisible();
  await expect(delivered(bob.page).last()).not.toBeInViewport();

  // The button takes him down and goes away; everything is read.
  await jump.click();
  await expect(delivered(bob.page).last()).toBeInViewport();
  await expect(jump).toBeHidden();
  await expect(bob.page).toHaveTitle("Tidings");

  // Catch-up after a reconnect is a burst too: back at the bottom with all of it.
  await bob.context.setOffline(true);
  await expect(bob.page.getByRole("status")).toHaveText("Reconnecting…");
  const missed = numbered("missed", 80);
  for (const text of missed) await send(alice.page, text);
  await bob.context.setOffline(false);
  await expect(bob.page.getByRole("status")).toHaveText("", { timeout: 30_000 });
  await expectMessage(bob.page, "missed 080");
  await expect(delivered(bob.page).last()).toBeInViewport();
  expect(await fromBottom(bob.page)).toBeLessThan(5);

  const appErrors = (errors: string[]) => errors.filter((e) => !/net::ERR_|WebSocket/.test(e));
  expect(appErrors(bob.errors)).toEqual([]);
  for (const u of [alice, bob]) await u.context.close();
});
