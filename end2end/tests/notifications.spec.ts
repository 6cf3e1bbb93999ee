// Issue 9, notifications: opt-in (the browser is asked only from the visible control, never on
// load), only for messages the person is not looking at, a click opens the conversation, and a
// per-conversation mute. Both choices survive a reload.
import { test, expect } from "@playwright/test";
import {
  conversationLink,
  createGroup,
  openConversation,
  paneTitle,
  registerUser,
  send,
  startChat,
  uniqueName,
  waitConnected,
} from "./helpers";

test("opt-in notifications for unseen messages; a click opens the conversation; mute", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const page = bob.page;
  // The page's Notification API is replaced by one that records what would be shown and whether
  // permission was asked for (the answer is "allow", remembered like a browser would).
  await page.addInitScript(() => {
    const w = window as any;
    w.__notes = [];
    w.__asked = 0;
    w.Notification = class {
      static get permission() {
        return localStorage.getItem("test:permission") ?? "default";
      }
      static requestPermission() {
        w.__asked += 1;
        localStorage.setItem("test:permission", "granted");
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
  const asked = () => page.evaluate(() => (window as any).__asked);
  expect(await asked()).toBe(0);

  // Nothing is shown before Bob turns notifications on.
  await startChat(alice.page, bob.name);
  await send(alice.page, "before opting in");
  await expect(conversationLink(page, alice.name)).toBeVisible();
  const toggle = page.getByRole("button", { name: /^Notifications:/ });
  await expect(toggle).toHaveText("Notifications: off");
  await toggle.click();
  await expect(toggle).toHaveText("Notifications: on");
  await expect(toggle).toHaveAttribute("aria-pressed", "true");
  expect(await asked()).toBe(1);

  await send(alice.page, "ping 1");
  await expect.poll(notes).toEqual([`${alice.name} | ping 1`]);

  // What Bob is looking at does not notify.
  await openConversation(page, alice.name);
  await send(alice.page, "ping 2");
  await expect(page.getByRole("log").getByText("ping 2")).toBeVisible();
  await page.waitForTimeout(500);
  expect(await notes()).toHaveLength(1);

  // A group message while Bob reads the direct chat: a notification; its click opens the group.
  const group = uniqueName("notes");
  await createGroup(alice.page, group, [bob.name]);
  await send(alice.page, "group hello");
  await expect.poll(notes).toContain(`${alice.name} in ${group} | group hello`);
  await page.evaluate(() => {
    const all = (window as any).__notes;
    all[all.length - 1].onclick(new Event("click"));
  });
  await expect(paneTitle(page)).toHaveText(group);

  // Muted: no notification, and the list says so. Both choices survive a reload.
  const mute = page.getByRole("button", { name: "Mute" });
  await mute.click();
  await expect(page.getByRole("button", { name: "Muted" })).toHaveAttribute("aria-pressed", "true");
  await page.reload();
  await waitConnected(page);
  await expect(toggle).toHaveText("Notifications: on");
  await expect(conversationLink(page, group)).toContainText("muted");
  await openConversation(page, alice.name);
  const before = (await notes()).length;
  await send(alice.page, "quiet please");
  await expect(conversationLink(page, group)).toHaveAccessibleDescription(/quiet please/);
  await page.waitForTimeout(500);
  expect(await notes()).toHaveLength(before);

  // Turned off: nothing more.
  await toggle.click();
  await expect(toggle).toHaveText("Notifications: off");
  await page.goto("/");
  await waitConnected(page);
  await openConversation(alice.page, bob.name);
  await send(alice.page, "after opting out");
  await expect(conversationLink(page, alice.name)).toHaveAccessibleDescription(/after opting out/);
  await page.waitForTimeout(500);
  expect(await notes()).toHaveLength(0);
  expect(await asked()).toBe(0);

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
