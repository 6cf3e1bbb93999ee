// Issue 9, how messages read: day separators, runs of one sender under one name and time, a
// stable colour per person, links (http/https only, never HTML), the senders named for screen
// readers, and the composer's character counter.
import { test, expect } from "@playwright/test";
import {
  createGroup,
  delivered,
  expectMessage,
  openConversation,
  registerUser,
  send,
  startChat,
  uniqueName,
} from "./helpers";

const DAY = 24 * 60 * 60 * 1000;

test("day separators, runs and colours in a group", async ({ browser }) => {
  const ada = await registerUser(browser, uniqueName("ada"));
  const bo = await registerUser(browser, uniqueName("bo"));
  const cy = await registerUser(browser, uniqueName("cy"));
  const group = uniqueName("days");
  await createGroup(ada.page, group, [bo.name, cy.name]);
  await openConversation(bo.page, group);
  await openConversation(cy.page, group);
  for (const [u, text] of [
    [ada, "a1"], [ada, "a2"], [bo, "b1"], [bo, "b2"], [cy, "c1"], [ada, "a3"], [ada, "a4"],
  ] as const) {
    await send(u.page, text);
    await expectMessage(ada.page, text);
  }

  // The history Ada loads next says the first messages are older: the stored times are moved
  // back on their way to the page (the layout is the browser's business; the server only stores).
  const shift: Record<string, number> = { a1: 400 * DAY, a2: 400 * DAY - 60_000, b1: 3 * DAY, b2: DAY };
  await ada.page.route("**/api/history", async (route) => {
    const response = await route.fetch();
    const page = await response.json();
    for (const m of page.messages) {
      if (shift[m.body]) m.at = new Date(Date.parse(m.at) - shift[m.body]).toISOString();
    }
    // The group's "created" line goes back with its first messages (two minutes before a1).
    for (const e of page.events ?? []) {
      e.at = new Date(Date.parse(e.at) - 400 * DAY - 120_000).toISOString();
    }
    await route.fulfill({ response, json: page });
  });
  await ada.page.reload();
  await openConversation(ada.page, group);
  await expect(delivered(ada.page)).toHaveText(["a1", "a2", "b1", "b2", "c1", "a3", "a4"]);

  const log = ada.page.getByRole("log");
  const days = log.locator("li.day");
  await expect(days).toHaveCount(4);
  const labels = await days.allTextContents();
  const lastYear = new Date(Date.now() - 400 * DAY).getFullYear();
  expect(labels[0]).toMatch(new RegExp(`^\\w{3} \\d{1,2} \\w{3} ${lastYear}$`));
  expect(labels[1]).toMatch(/^\w{3} \d{1,2} \w{3}$/);
  expect(labels[2]).toBe("Yesterday");
  expect(labels[3]).toBe("Today");

  // Runs: a1+a2 (one minute apart) share a head; b1 and b2 are on different days; c1 alone;
  // a3+a4 share one.
  const heads = log.locator("li.msg.head .body");
  await expect(heads).toHaveText(["a1", "b1", "b2", "c1", "a3"]);
  // In a group, the head of a run of someone else's messages shows their name in their colour;
  // the exact time is in every message's tooltip.
  const boHead = log.locator("li.msg.head", { hasText: "b1" });
  await expect(boHead.locator(".sender")).toBeVisible();
  await expect(boHead.locator(".sender")).toHaveText(bo.name);
  await expect(boHead.locator("time")).toHaveAttribute("title", /^\w{3} \d{1,2} \w{3} \d{4}, \d{2}:\d{2}$/);
  const colourOf = async (name: string) =>
    (await log.locator("li.msg.head:not(.mine)", { hasText: name }).first().locator(".sender").getAttribute("class"))!;
  expect(await colourOf("b1")).toMatch(/\bu\d\b/);
  // Bo's colour is the same in Cy's page.
  const cyLog = cy.page.getByRole("log");
  const inCy = await cyLog.locator("li.msg.head:not(.mine)", { hasText: "b1" }).locator(".sender").getAttribute("class");
  expect(inCy).toBe(await colourOf("b1"));

  for (const u of [ada, bo, cy]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("links, text that looks like HTML, senders for screen readers, and the character counter", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  const text = 'Docs: https://example.org/guide?x=1. Not links: javascript:alert(1) <a href="http://evil.test">x</a>';
  await send(alice.page, text);
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, text);

  const body = bob.page.getByRole("log").locator("li.msg .body").last();
  const links = body.getByRole("link");
  await expect(links).toHaveCount(2);
  await expect(links.first()).toHaveAttribute("href", "https://example.org/guide?x=1");
  await expect(links.first()).toHaveAttribute("target", "_blank");
  await expect(links.first()).toHaveAttribute("rel", "noopener noreferrer");
  // The address inside the would-be tag is a link; the tag itself stays text.
  await expect(links.nth(1)).toHaveAttribute("href", "http://evil.test");
  await expect(body.locator("a[href^='javascript']")).toHaveCount(0);
  expect(bob.dialogs).toEqual([]);

  // In a direct chat no name is drawn, but screen readers hear who wrote each message.
  const item = bob.page.getByRole("log").locator("li.msg").last();
  await expect(item.locator(".sender")).toHaveText(alice.name);
  await expect(alice.page.getByRole("log").locator("li.msg").last().locator(".sender")).toHaveText("You");

  // The composer counts characters near the 4,000 limit and refuses past it.
  const box = alice.page.getByRole("textbox", { name: "Message" });
  const counter = alice.page.locator("#composer-count");
  await box.fill("x".repeat(100));
  await expect(counter).toBeHidden();
  await box.fill("x".repeat(3600));
  await expect(counter).toHaveText("3600 / 4000");
  await box.fill("x".repeat(4001));
  await expect(counter).toHaveText("4001 / 4000");
  await expect(counter).toHaveClass(/over/);
  await expect(box).toHaveAttribute("aria-invalid", "true");
  await box.press("Enter");
  await expect(alice.page.locator("#composer-error")).toContainText("at most 4000 characters");
  await expect(box).toHaveValue("x".repeat(4001));
  await box.fill("fits");
  await box.press("Enter");
  await expectMessage(bob.page, "fits");
  // New messages from others are announced politely; the log itself is not a live region, so
  // older pages loaded by scrolling are never read out as news.
  await expect(bob.page.getByRole("log")).toHaveAttribute("aria-live", "off");
  await expect(bob.page.locator(".log-wrap [aria-live='polite']")).toHaveText(`${alice.name}: fits`);

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
