// Issue 8: edit, delete, reply and react, live between two people (two browser contexts), and
// group events as lines in the timeline.
import { test, expect, Page, Locator } from "@playwright/test";
import {
  createGroup,
  expectMessage,
  openConversation,
  registerUser,
  send,
  startChat,
  uniqueName,
} from "./helpers";

/**
 * The stored message whose own body contains `text`, in the open conversation (not a reply
 * that only quotes it: the quote is not the reply's body).
 */
function message(page: Page, text: string): Locator {
  return page
    .getByRole("log")
    .locator("li.msg[data-seq]", { has: page.locator(".bubble > .body", { hasText: text }) });
}

/** Shows a message's actions (they appear on hover and focus) and clicks one. */
async function act(page: Page, text: string, action: string): Promise<void> {
  const m = message(page, text);
  await m.hover();
  await m.getByRole("button", { name: action, exact: true }).click();
}

test("edit, react, reply and delete reach the other person live", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "helo bob");
  await send(alice.page, "second thought");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "helo bob");

  // Alice fixes her typo in place; Escape on another edit changes nothing.
  await act(alice.page, "second thought", "Edit");
  const editBox = alice.page.getByRole("textbox", { name: "Edit message" });
  await editBox.fill("never mind");
  await editBox.press("Escape");
  await expect(editBox).toBeHidden();
  await expectMessage(alice.page, "second thought");
  await act(alice.page, "helo bob", "Edit");
  await editBox.fill("hello bob");
  await editBox.press("Enter");
  await expectMessage(bob.page, "hello bob");
  await expect(message(bob.page, "hello bob").getByText("edited")).toBeVisible();
  await expectMessage(alice.page, "hello bob");
  await expectMessage(bob.page, "second thought");

  // Bob reacts; Alice sees the count and who reacted; Bob takes it back.
  await act(bob.page, "hello bob", "Add a reaction");
  await message(bob.page, "hello bob").getByRole("button", { name: "👍", exact: true }).click();
  const onAlice = message(alice.page, "hello bob").locator("button.reaction");
  await expect(onAlice).toHaveCount(1);
  await expect(onAlice).toHaveAttribute("title", `👍 1: ${bob.name}`);
  await expect(onAlice).toHaveAttribute("aria-pressed", "false");
  const onBob = message(bob.page, "hello bob").locator("button.reaction");
  await expect(onBob).toHaveAttribute("aria-pressed", "true");
  await onBob.click();
  await expect(onAlice).toHaveCount(0);

  // Bob replies to Alice's message: the quote shows in the composer, then in the message.
  await act(bob.page, "hello bob", "Reply");
  await expect(bob.page.locator(".replying")).toContainText(`Replying to ${alice.name}`);
  await send(bob.page, "hi alice");
  await expect(bob.page.locator(".replying")).toHaveCount(0);
  const reply = message(alice.page, "hi alice");
  await expect(reply.locator(".quote")).toContainText("hello bob");
  // Clicking the quote scrolls to the original and marks it.
  await reply.locator(".quote").click();
  await expect(message(alice.page, "hello bob")).toHaveClass(/flash/);

  // Alice deletes her message after confirming: a tombstone for both, also in Bob's quote.
  await act(alice.page, "hello bob", "Delete");
  await alice.page.getByRole("button", { name: "Delete for everyone" }).click();
  const tombstone = bob.page.getByRole("log").locator("li.msg.deleted");
  await expect(tombstone).toHaveCount(1);
  await expect(tombstone).toContainText("message deleted");
  await expect(bob.page.getByRole("log").getByText("hello bob")).toHaveCount(0);
  await expect(message(bob.page, "hi alice").locator(".quote")).toContainText("message deleted");

  // The state holds after a reload (history returns messages in their current state).
  await bob.page.reload();
  await expect(bob.page.getByRole("log").locator("li.msg.deleted")).toHaveCount(1);
  await expect(message(bob.page, "second thought")).toBeVisible();
  expect(alice.errors).toEqual([]);
  expect(bob.errors).toEqual([]);
});

test("group changes show as lines in the timeline", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const carol = await registerUser(browser, uniqueName("carol"));
  const group = uniqueName("plans");
  await createGroup(alice.page, group, [bob.name]);
  await openConversation(bob.page, group);

  // Alice adds Carol and renames the group through "Group info".
  await alice.page.getByRole("button", { name: "Group info" }).click();
  const panel = alice.page.getByRole("dialog");
  await panel.getByLabel("Add member").fill(carol.name);
  await panel.getByRole("button", { name: "Add", exact: true }).click();
  const lines = bob.page.getByRole("log").locator("li.system");
  const created = `${alice.name} created the group “${group}”`;
  await expect(lines).toHaveText([created, `${alice.name} added ${carol.name}`]);
  const renamed = uniqueName("trip");
  await panel.getByLabel("New group name").fill(renamed);
  await panel.getByRole("button", { name: "Rename" }).click();
  await expect(lines).toHaveText([
    created,
    `${alice.name} added ${carol.name}`,
    `${alice.name} renamed the group to “${renamed}”`,
  ]);
  await expect(alice.page.getByRole("log").locator("li.system").last()).toHaveText(
    `You renamed the group to “${renamed}”`,
  );
  // After a reload they come from history.
  await bob.page.reload();
  await expect(bob.page.getByRole("log").locator("li.system")).toHaveCount(3);
});
