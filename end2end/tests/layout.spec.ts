// Issue 9, phones, zoom, keyboards and contrast: at 360 × 640 (and a desktop at 200 % zoom) the
// list and the conversation are two screens; everything works from the keyboard; dialogs close
// with Escape or a click outside; text meets WCAG AA contrast in light and dark.
import { test, expect, Page } from "@playwright/test";
import {
  conversationLink,
  createGroup,
  expectMessage,
  openConversation,
  paneTitle,
  registerUser,
  send,
  startChat,
  uniqueName,
  waitConnected,
} from "./helpers";

const phone = { width: 360, height: 640 };

/** Nothing sticks out sideways. */
async function expectNoSidewaysScroll(page: Page) {
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(wide).toBeLessThanOrEqual(0);
}

/** The element fits inside the viewport. */
async function expectFits(page: Page, selector: string) {
  const box = (await page.locator(selector).boundingBox())!;
  const view = page.viewportSize()!;
  expect(box.x).toBeGreaterThanOrEqual(0);
  expect(box.y).toBeGreaterThanOrEqual(0);
  expect(box.x + box.width).toBeLessThanOrEqual(view.width + 0.5);
  expect(box.y + box.height).toBeLessThanOrEqual(view.height + 0.5);
}

test("a phone at 360 × 640: from login to sending in a group, with a back control", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"), { viewport: phone });
  const bob = await registerUser(browser, uniqueName("bob"));
  const list = alice.page.getByRole("navigation", { name: "Conversations" });
  await expect(list).toBeVisible();
  await expectNoSidewaysScroll(alice.page);

  // "New chat" opens a dialog that fits the screen.
  await alice.page.getByRole("button", { name: "New chat" }).click();
  await expectFits(alice.page, "dialog.new-chat");
  await alice.page.keyboard.press("Escape");
  const group = uniqueName("phone");
  await createGroup(alice.page, group, [bob.name]);

  // The conversation is its own screen: the list is gone, the back control is there.
  await expect(list).toBeHidden();
  const back = alice.page.getByRole("link", { name: "Back to conversations" });
  await expect(back).toBeVisible();
  // Each screen has one top-level heading: here the conversation's title, in view.
  const topHeading = alice.page.getByRole("heading", { level: 1 });
  await expect(topHeading).toHaveCount(1);
  await expect(topHeading).toHaveText(group);
  await expect(topHeading).toBeInViewport();
  await send(alice.page, "sent from a phone");
  await expectMessage(alice.page, "sent from a phone");
  await openConversation(bob.page, group);
  await expectMessage(bob.page, "sent from a phone");
  await send(bob.page, "received on a desktop");
  await expectMessage(alice.page, "received on a desktop");
  await expect(alice.page.getByRole("textbox", { name: "Message" })).toBeInViewport();
  await expectNoSidewaysScroll(alice.page);

  // The group panel takes the whole screen.
  await alice.page.getByRole("button", { name: "Group info" }).click();
  await expectFits(alice.page, "dialog.panel");
  expect((await alice.page.locator("dialog.panel").boundingBox())!.width).toBeGreaterThanOrEqual(phone.width - 0.5);
  await alice.page.getByRole("dialog").getByRole("button", { name: "Close" }).click();

  // Back to the list.
  await back.click();
  await expect(list).toBeVisible();
  await expect(paneTitle(alice.page)).toBeHidden();
  await expect(conversationLink(alice.page, group)).toBeVisible();
  await expect(topHeading).toHaveCount(1);
  await expect(topHeading).toHaveText("Tidings");

  for (const u of [alice, bob]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("a desktop at 200 % zoom gets the two-screen layout with a usable list", async ({ browser }) => {
  // 200 % zoom of a 1280 × 800 window is a 640 × 400 CSS viewport.
  const zoomed = await registerUser(browser, uniqueName("zoom"), { viewport: { width: 640, height: 400 } });
  const other = await registerUser(browser, uniqueName("other"));
  await startChat(other.page, zoomed.name);
  await send(other.page, "hello at 200 %");
  const page = zoomed.page;
  const list = page.getByRole("navigation", { name: "Conversations" });
  await expect(conversationLink(page, other.name)).toBeVisible();
  // A message just sent is "now" in the list (its exact time is the tooltip).
  const time = conversationLink(page, other.name).locator(".conv-time");
  await expect(time).toHaveText("now");
  await expect(time).toBeVisible();
  await expect(time).toHaveAttribute("title", /\d{1,2}:\d{2}/);
  // Most of the screen is for the list, not for controls above it.
  expect((await list.boundingBox())!.height).toBeGreaterThan(200);
  await conversationLink(page, other.name).click();
  await expectMessage(page, "hello at 200 %");
  await expect(page.getByRole("textbox", { name: "Message" })).toBeInViewport();
  await expectNoSidewaysScroll(page);
  for (const u of [zoomed, other]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

test("keyboard only: skip link, arrows through the list, focus in the composer, dialogs close with Escape or outside", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  const carol = await registerUser(browser, uniqueName("carol"));
  await startChat(bob.page, alice.name);
  await send(bob.page, "from bob");
  await startChat(carol.page, alice.name);
  await send(carol.page, "from carol");
  const page = alice.page;
  await expect(conversationLink(page, bob.name)).toBeVisible();
  await page.reload();
  await waitConnected(page);

  // The first Tab reaches the skip link, which jumps to the conversation pane.
  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to the conversation" });
  await expect(skip).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("main")).toBeFocused();

  // Arrow keys move through the list; Enter opens; the composer has the focus.
  await conversationLink(page, carol.name).focus();
  await page.keyboard.press("ArrowDown");
  await expect(conversationLink(page, bob.name)).toBeFocused();
  await page.keyboard.press("ArrowUp");
  await expect(conversationLink(page, carol.name)).toBeFocused();
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await expect(paneTitle(page)).toHaveText(bob.name);
  const box = page.getByRole("textbox", { name: "Message" });
  await expect(box).toBeFocused();
  await page.keyboard.type("typed without a mouse");
  await page.keyboard.press("Enter");
  await expectMessage(bob.page, "typed without a mouse");

  // "New chat" from the keyboard: the username field has the focus; Escape closes it.
  await page.getByRole("button", { name: "New chat" }).focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "New chat" });
  await expect(dialog.getByLabel("Start a chat with")).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  // A click outside closes it too; a click inside does not.
  await page.getByRole("button", { name: "New chat" }).click();
  await dialog.getByLabel("Group name").click();
  await expect(dialog).toBeVisible();
  await page.mouse.click(5, 5);
  await expect(dialog).toBeHidden();

  // The group panel: Escape and outside clicks close it; a cancelled removal removes nobody.
  const group = uniqueName("keys");
  await createGroup(page, group, [bob.name]);
  await page.getByRole("button", { name: "Group info" }).click();
  const panel = page.getByRole("dialog");
  await expect(panel.getByRole("heading", { name: group })).toBeVisible();
  await panel.getByRole("button", { name: `Remove ${bob.name}` }).click();
  await panel.getByRole("button", { name: "Cancel" }).click();
  await expect(panel.getByRole("list", { name: "Members of this group" }).getByRole("listitem")).toHaveCount(2);
  await page.keyboard.press("Escape");
  await expect(panel).toBeHidden();
  await page.getByRole("button", { name: "Group info" }).click();
  await page.mouse.click(5, 300);
  await expect(panel).toBeHidden();
  await expect(box).toBeVisible();

  for (const u of [alice, bob, carol]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});

/** Every visible piece of text against the colour actually behind it (WCAG 2 contrast). */
async function contrastFailures(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const parse = (c: string) => {
      const m = c.match(/rgba?\(([\d.]+),? ([\d.]+),? ([\d.]+)(?:,? \/? ?([\d.]+))?\)/);
      return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])] : null;
    };
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const over = (top: number[], under: number[]) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
    const background = (el: Element | null): number[] => {
      const layers: number[][] = [];
      for (; el; el = el.parentElement) {
        const c = parse(getComputedStyle(el).backgroundColor);
        if (c && c[3] > 0) {
          layers.push(c);
          if (c[3] >= 1) break;
        }
      }
      let colour = [255, 255, 255];
      for (const layer of layers.reverse()) colour = over(layer, colour);
      return colour;
    };
    const failures: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement!;
      if (!node.textContent!.trim()) continue;
      const rect = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (rect.width <= 1 || rect.height <= 1 || style.visibility === "hidden") continue;
      if (el.closest("[aria-hidden='true'], .link-status:not(.visible), .skip-link, dialog:not([open])")) continue;
      const bg = background(el);
      const fg = over(parse(style.color)!, bg);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) failures.push(`${ratio.toFixed(2)} ${el.tagName}.${el.className}: ${node.textContent!.trim().slice(0, 30)}`);
    }
    return failures;
  });
}

for (const scheme of ["light", "dark"] as const) {
  test(`text contrast meets WCAG AA (${scheme})`, async ({ browser }) => {
    const alice = await registerUser(browser, uniqueName("alice"));
    const bob = await registerUser(browser, uniqueName("bob"));
    await alice.page.emulateMedia({ colorScheme: scheme });
    const group = uniqueName("contrast");
    await createGroup(alice.page, group, [bob.name]);
    await send(alice.page, "mine, with https://example.org");
    await openConversation(bob.page, group);
    await send(bob.page, "theirs");
    await expectMessage(alice.page, "theirs");
    await startChat(bob.page, alice.name);
    await send(bob.page, "an unread one");
    await expect(conversationLink(alice.page, bob.name)).toHaveAccessibleDescription(/unread/);
    expect(await contrastFailures(alice.page)).toEqual([]);
    await alice.page.getByRole("button", { name: "New chat" }).click();
    await alice.page.getByRole("dialog").getByRole("button", { name: "Chat", exact: true }).click();
    expect(await contrastFailures(alice.page)).toEqual([]);
    // The group panel, with its role badges and the owner's controls.
    await alice.page.keyboard.press("Escape");
    await openConversation(alice.page, group);
    await alice.page.getByRole("button", { name: "Group info" }).click();
    await alice.page.getByRole("button", { name: `Make ${bob.name} an admin` }).click();
    await expect(alice.page.getByRole("button", { name: `Dismiss ${bob.name} as admin` })).toBeVisible();
    expect(await contrastFailures(alice.page)).toEqual([]);
    await alice.page.goto("/login");
    expect(await contrastFailures(alice.page)).toEqual([]);
    for (const u of [alice, bob]) await u.context.close();
  });
}
