// Issue 2: two people chat one-to-one, a third joins a group, everyone sees messages live,
// history survives a reload, and message bodies are text, never HTML.
import { test, expect } from "@playwright/test";
import {
  conversationLink,
  createGroup,
  delivered,
  expectMessage,
  openConversation,
  paneTitle,
  registerUser,
  send,
  startChat,
  uniqueName,
  waitConnected,
} from "./helpers";

test("direct chat both ways, a group of three, history after reload", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const carol = await registerUser(browser, uniqueName("carol"));

  // Alice opens a direct chat with Bob by username and writes.
  await startChat(alice.page, bob.name);
  await send(alice.page, "Hi Bob, it's Alice");
  await expectMessage(alice.page, "Hi Bob, it's Alice");

  // Bob sees the conversation (titled with Alice's name) appear live, opens it, and replies.
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "Hi Bob, it's Alice");
  // Bob's read receipt reaches Alice.
  await expect(alice.page.getByRole("log").getByText("Seen", { exact: true })).toBeVisible();
  await send(bob.page, "Hello Alice!");
  await expectMessage(bob.page, "Hello Alice!");
  await expectMessage(alice.page, "Hello Alice!");

  // Both ways again, live, while both have the chat open.
  await send(alice.page, "How are you?");
  await expectMessage(bob.page, "How are you?");

  // A body that looks like HTML is shown literally, and nothing runs.
  const script = "<script>alert(1)</script>";
  await send(alice.page, script);
  await expectMessage(bob.page, script);
  await expect(bob.page.getByRole("log").locator("script")).toHaveCount(0);
  expect(bob.dialogs).toEqual([]);

  // Alice creates a group with Bob and Carol.
  const group = uniqueName("team");
  await createGroup(alice.page, group, [bob.name, carol.name]);
  await send(alice.page, "Welcome to the group");
  await expectMessage(alice.page, "Welcome to the group");

  // The group moved to the top of Alice's list.
  const aliceList = alice.page.getByRole("navigation", { name: "Conversations" }).getByRole("link");
  await expect(aliceList.first()).toHaveAccessibleName(group);

  for (const member of [bob, carol]) {
    await openConversation(member.page, group);
    await expectMessage(member.page, "Welcome to the group");
  }
  await send(carol.page, "Hi all, Carol here");
  for (const member of [alice, bob, carol]) {
    await expectMessage(member.page, "Hi all, Carol here");
  }

  // Bob's direct chat with Alice shows an unread count once Alice writes while Bob is in the group.
  await alice.page.goto("/");
  await waitConnected(alice.page);
  await openConversation(alice.page, bob.name);
  await send(alice.page, "Ping from the direct chat");
  const bobsDirect = conversationLink(bob.page, alice.name);
  await expect(bobsDirect).toHaveAccessibleDescription(/Ping from the direct chat.*1 unread/);

  // A reload shows the history.
  await bob.page.reload();
  await waitConnected(bob.page);
  await openConversation(bob.page, alice.name);
  await expect(delivered(bob.page)).toHaveText([
    "Hi Bob, it's Alice",
    "Hello Alice!",
    "How are you?",
    script,
    "Ping from the direct chat",
  ]);
  await openConversation(bob.page, group);
  await expect(delivered(bob.page)).toHaveText(["Welcome to the group", "Hi all, Carol here"]);

  for (const u of [alice, bob, carol]) {
    expect(u.dialogs).toEqual([]);
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("scrolling up loads older history, in order, without gaps or repeats", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  const all = Array.from({ length: 75 }, (_, i) => `history ${String(i + 1).padStart(3, "0")}`);
  for (const text of all) await send(alice.page, text);
  await expectMessage(alice.page, all[all.length - 1]);

  // Bob opens the chat: the newest page first, then older pages as he scrolls to the top.
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, all[all.length - 1]);
  const log = bob.page.getByRole("log");
  await expect(delivered(bob.page)).not.toHaveCount(all.length);
  for (let i = 0; i < 10 && (await delivered(bob.page).count()) < all.length; i++) {
    await log.evaluate((el) => el.scrollTo(0, 0));
    await bob.page.waitForTimeout(300);
  }
  await expect(delivered(bob.page)).toHaveText(all);
  await expect(bob.page.getByRole("button", { name: "Load older messages" })).toHaveCount(0);
  // Older pages are not news: nothing was announced to screen readers.
  await expect(bob.page.locator(".log-wrap [aria-live='polite']")).toHaveText("");

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("group info: rename, add and remove members, leave", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const carol = await registerUser(browser, uniqueName("carol"));

  const group = uniqueName("club");
  await createGroup(alice.page, group, [bob.name]);
  await expect(conversationLink(bob.page, group)).toBeVisible();

  // Rename: everyone's list follows.
  const renamed = uniqueName("renamed");
  await alice.page.getByRole("button", { name: "Group info" }).click();
  const panel = alice.page.getByRole("dialog");
  await panel.getByLabel("New group name").fill(renamed);
  await panel.getByRole("button", { name: "Rename" }).click();
  await expect(paneTitle(alice.page)).toHaveText(renamed);
  await expect(conversationLink(bob.page, renamed)).toBeVisible();

  // Add Carol: the group appears in her list and she can read along.
  await alice.page.getByLabel("Add member").fill(carol.name);
  await alice.page.getByRole("button", { name: "Add", exact: true }).click();
  await expect(conversationLink(carol.page, renamed)).toBeVisible();
  await alice.page.keyboard.press("Escape");
  await expect(panel).toBeHidden();
  await send(alice.page, "Carol, welcome");
  await openConversation(carol.page, renamed);
  await expectMessage(carol.page, "Carol, welcome");

  // Remove Carol (after confirming): the group leaves her list, and she is told why.
  await alice.page.getByRole("button", { name: "Group info" }).click();
  await panel.getByRole("button", { name: `Remove ${carol.name}` }).click();
  await panel.getByRole("button", { name: "Yes, remove" }).click();
  await expect(conversationLink(carol.page, renamed)).toHaveCount(0);
  await expect(carol.page.getByRole("alert").filter({ hasText: "removed you from" })).toContainText(
    `${alice.name} removed you from “${renamed}”.`,
  );

  // Bob leaves (after confirming): gone from his list, and Alice's member list shows only her.
  await openConversation(bob.page, renamed);
  await bob.page.getByRole("button", { name: "Group info" }).click();
  await bob.page.getByRole("dialog").getByRole("button", { name: "Leave group" }).click();
  await bob.page.getByRole("dialog").getByRole("button", { name: "Yes, leave" }).click();
  await expect(conversationLink(bob.page, renamed)).toHaveCount(0);
  await expect(bob.page.getByRole("alert").filter({ hasText: "removed you" })).toHaveCount(0);
  await expect(panel.getByRole("list", { name: "Members of this group" }).getByRole("listitem")).toHaveCount(1);
  await expect(panel).toContainText("Members (1)");
  await expect(alice.page.locator("p.subtitle").first()).toContainText("1 member:");

  for (const u of [alice, bob, carol]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
