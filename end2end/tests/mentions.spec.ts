// Issue 8, mentions: "@" in the composer offers the conversation's members, the chosen name is
// marked in the message, and the person named gets a distinct "@" badge and a notification even
// though the conversation is muted.
import { test, expect } from "@playwright/test";
import {
  conversationLink,
  createGroup,
  openConversation,
  registerUser,
  uniqueName,
  waitConnected,
} from "./helpers";

test("@ offers members, marks the name and notifies the person named even when muted", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const page = bob.page;
  // A recording Notification API, as in notifications.spec.ts, already allowed.
  await page.addInitScript(() => {
    const w = window as any;
    w.__notes = [];
    localStorage.setItem("test:permission", "granted");
    w.Notification = class {
      static get permission() {
        return "granted";
      }
      static requestPermission() {
        return Promise.resolve("granted");
      }
      title: string;
      body: string;
      onclick: ((e: Event) => void) | null = null;
      constructor(title: string, options: { body: string }) {
        this.title = title;
        this.body = options.body;
        w.__notes.push(this);
      }
      close() {}
    };
  });
  await page.reload();
  await waitConnected(page);
  const notes = () => page.evaluate(() => (window as any).__notes.map((n: any) => `${n.title} | ${n.body}`));
  await page.getByRole("button", { name: "Notifications: off" }).click();

  const group = uniqueName("team");
  await createGroup(alice.page, group, [bob.name]);
  await expect(conversationLink(page, group)).toBeVisible();
  // Bob mutes the group: plain messages stay quiet.
  await openConversation(page, group);
  await page.getByRole("button", { name: "Mute" }).click();
  await page.goto("/");
  await waitConnected(page);

  const box = alice.page.getByRole("textbox", { name: "Message" });
  await box.fill("just chatting");
  await box.press("Enter");
  await expect(conversationLink(page, group)).toHaveAccessibleDescription(/just chatting/);

  // Alice types "@" and the start of Bob's name: his name is offered; Enter takes it.
  await box.fill("look here @");
  await box.pressSequentially(bob.name.slice(0, 3));
  const offered = alice.page.getByRole("listbox", { name: "Members" }).getByRole("option");
  await expect(offered).toHaveText([`@${bob.name}`]);
  await box.press("Enter");
  await expect(box).toHaveValue(`look here @${bob.name} `);
  await expect(offered).toHaveCount(0);
  await box.pressSequentially("please");
  await box.press("Enter");
  await expect(box).toHaveValue("");

  // The name is marked in Alice's copy.
  await expect(alice.page.getByRole("log").locator(".mention")).toHaveText(`@${bob.name}`);

  // Bob (the conversation not open): a notification although the group is muted — only for
  // the mention — and the "@" badge beside the unread count.
  await expect.poll(notes).toEqual([
    `${alice.name} mentioned you in ${group} | look here @${bob.name} please`,
  ]);
  const link = conversationLink(page, group);
  await expect(link.locator(".badge.mention")).toContainText("1");
  await expect(link.locator(".badge:not(.mention)")).toContainText("2");
  // Reading the conversation clears the badge; the mention is marked as his.
  await openConversation(page, group);
  await expect(page.getByRole("log").locator(".mention.me")).toHaveText(`@${bob.name}`);
  await expect(link.locator(".badge.mention")).toHaveCount(0);

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
