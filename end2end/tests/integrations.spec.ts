// Issue 11: an incoming webhook made from the UI posts as its bot, which both people see live
// and marked as a bot; a wrong or revoked URL is refused with 404 and shows nothing.
import { test, expect } from "@playwright/test";
import { createGroup, expectMessage, openConversation, registerUser, uniqueName } from "./helpers";

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
