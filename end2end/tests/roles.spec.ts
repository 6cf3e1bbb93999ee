// Group roles in the group info panel (issue #9): owner and admin badges, only the controls a
// person may use, the owner making and dismissing an admin live, confirmation before leaving,
// Escape closing the panel with the focus back on its button, a removal explained, and an error
// that clears after the next success.
import { expect, test } from "@playwright/test";
import {
  conversationLink,
  createGroup,
  openConversation,
  paneTitle,
  registerUser,
  uniqueName,
} from "./helpers";

test("the owner promotes bob, who may then rename and remove; members see no such controls", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const carol = await registerUser(browser, uniqueName("carol"));
  const group = uniqueName("crew");
  await createGroup(alice.page, group, [bob.name, carol.name]);
  await openConversation(bob.page, group);

  // Bob, a member, sees who owns the group and no Rename, Remove or role controls.
  const info = bob.page.getByRole("button", { name: "Group info" });
  await info.click();
  const bobs = bob.page.getByRole("dialog");
  const members = bobs.getByRole("list", { name: "Members of this group" });
  await expect(members.getByRole("listitem")).toHaveCount(3);
  await expect(members.getByRole("listitem").first()).toContainText(alice.name);
  await expect(members.getByRole("listitem").first()).toContainText("owner");
  await expect(bobs.getByRole("button", { name: /^Remove / })).toHaveCount(0);
  await expect(bobs.getByLabel("New group name")).toHaveCount(0);
  await expect(bobs.getByRole("button", { name: /admin/ })).toHaveCount(0);
  await expect(bobs.getByLabel("Add member")).toBeVisible();

  // Escape closes the panel and gives the focus back to the button that opened it.
  await bob.page.keyboard.press("Escape");
  await expect(bobs).toBeHidden();
  await expect(info).toBeFocused();
  await info.click();

  // The owner sees every control; she makes Bob an admin. Bob's open panel follows live.
  await alice.page.getByRole("button", { name: "Group info" }).click();
  const alices = alice.page.getByRole("dialog");
  await expect(alices.getByRole("button", { name: `Remove ${bob.name}` })).toBeVisible();
  await expect(alices.getByRole("button", { name: `Remove ${alice.name}` })).toHaveCount(0);
  await alices.getByRole("button", { name: `Make ${bob.name} an admin` }).click();
  // The focus stays with the control that replaced the one clicked.
  await expect(alices.getByRole("button", { name: `Dismiss ${bob.name} as admin` })).toBeFocused();
  const bobRow = members.getByRole("listitem").filter({ hasText: bob.name });
  await expect(bobRow).toContainText("admin");
  await expect(bobs.getByRole("button", { name: `Remove ${carol.name}` })).toBeVisible();
  await expect(bobs.getByRole("button", { name: `Remove ${alice.name}` })).toHaveCount(0);
  await expect(bobs.getByRole("button", { name: /an admin$/ })).toHaveCount(0);
  await expect(bob.page.getByRole("log").locator("li.system").last()).toHaveText(
    `${alice.name} made you an admin`,
  );

  // Bob renames: a refused name shows an error, the next success clears it.
  await bobs.getByLabel("New group name").fill("   ");
  await bobs.getByRole("button", { name: "Rename" }).click();
  await expect(bobs.getByRole("alert")).toContainText("group name");
  await expect(bobs.getByLabel("New group name")).toHaveAttribute("aria-invalid", "true");
  await expect(bobs.getByLabel("New group name")).toHaveAccessibleDescription(/group name/);
  const renamed = uniqueName("renamed");
  await bobs.getByLabel("New group name").fill(renamed);
  await bobs.getByRole("button", { name: "Rename" }).click();
  await expect(paneTitle(alice.page)).toHaveText(renamed);
  await expect(bobs.locator("#group-panel-error")).toHaveText("");
  await expect(bobs.getByLabel("New group name")).toHaveAttribute("aria-invalid", "false");

  // Bob removes Carol after confirming; she is told who removed her.
  await bobs.getByRole("button", { name: `Remove ${carol.name}` }).click();
  await bobs.getByRole("group", { name: `Remove ${carol.name}?` }).getByRole("button", { name: "Yes, remove" }).click();
  await expect(members.getByRole("listitem")).toHaveCount(2);
  await expect(conversationLink(carol.page, renamed)).toHaveCount(0);
  await expect(carol.page.getByRole("alert").filter({ hasText: "removed you from" })).toContainText(
    `${bob.name} removed you from “${renamed}”.`,
  );

  // Dismissed, Bob loses the controls again.
  await alices.getByRole("button", { name: `Dismiss ${bob.name} as admin` }).click();
  await expect(bobs.getByLabel("New group name")).toHaveCount(0);
  await expect(bobRow).not.toContainText("admin");

  // Leaving asks first; cancelling keeps Bob in the group.
  await bobs.getByRole("button", { name: "Leave group" }).click();
  const question = bobs.getByRole("group", { name: "Leave this group?" });
  await expect(question).toBeVisible();
  await question.getByRole("button", { name: "Cancel" }).click();
  await expect(question).toBeHidden();
  await expect(conversationLink(bob.page, renamed)).toBeVisible();
  await bobs.getByRole("button", { name: "Leave group" }).click();
  await question.getByRole("button", { name: "Yes, leave" }).click();
  await expect(conversationLink(bob.page, renamed)).toHaveCount(0);
  await expect(alices.getByRole("list", { name: "Members of this group" }).getByRole("listitem")).toHaveCount(1);
  await expect(alices.locator("p.subtitle")).toContainText("1 member");
  await expect(alices.locator("p.subtitle")).not.toContainText("1 members");

  // The refused rename is the one failed request the browser reports.
  expect(bob.errors).toEqual(["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
  for (const u of [alice, bob, carol]) {
    if (u !== bob) expect(u.errors).toEqual([]);
    expect(u.dialogs).toEqual([]);
    await u.context.close();
  }
});
