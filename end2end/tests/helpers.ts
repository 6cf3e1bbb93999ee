// Shared steps for the Tidings browser tests: unique users, logging in, chatting.
// Every test makes its own users (random suffix) so runs can repeat against the same database.
import { Browser, BrowserContext, Locator, Page, expect } from "@playwright/test";

export const PASSWORD = "correct horse battery";

/** A fresh valid username (3–32 of a-z 0-9 _ . -) starting with `prefix`. */
export function uniqueName(prefix: string): string {
  const suffix = Math.random().toString(36).slice(2, 8).padEnd(6, "0");
  return `${prefix}_${suffix}`.slice(0, 32);
}

export type User = {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Any alert() etc. seen: there must be none (no message body may run as HTML). */
  dialogs: string[];
  /** Uncaught exceptions (a WASM panic among them) and console errors from the app. */
  errors: string[];
};

/** Registers `name` in a new browser context and waits until the chat is live. */
export async function registerUser(
  browser: Browser,
  name: string,
  options: { viewport?: { width: number; height: number }; baseURL?: string } = {},
): Promise<User> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1200, height: 800 },
    // Only when given: an explicit undefined would override the configured baseURL.
    ...(options.baseURL ? { baseURL: options.baseURL } : {}),
  });
  const page = await context.newPage();
  // Any alert() would mean a message body ran as HTML: record it so the test can check.
  const dialogs: string[] = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  await page.goto("/login");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page).toHaveURL(/\/$/);
  await waitConnected(page);
  return { name, context, page, dialogs, errors };
}

/** The chat is hydrated and its WebSocket is open (the status line is empty). */
export async function waitConnected(page: Page): Promise<void> {
  await expect(page.getByRole("navigation", { name: "Conversations" })).toBeVisible();
  await expect(page.getByRole("status")).toHaveText("", { timeout: 20_000 });
}

export function conversationLink(page: Page, title: string): Locator {
  return page
    .getByRole("navigation", { name: "Conversations" })
    .getByRole("link", { name: title, exact: true });
}

/** Opens the direct chat with `other` through "New chat" → "Start a chat with". */
export async function startChat(page: Page, other: string): Promise<void> {
  await page.getByRole("button", { name: "New chat" }).click();
  const dialog = page.getByRole("dialog", { name: "New chat" });
  await dialog.getByLabel("Start a chat with").fill(other);
  await dialog.getByRole("button", { name: "Chat", exact: true }).click();
  await expect(page).toHaveURL(/\/c\/\d+$/);
  await expect(dialog).toBeHidden();
  await expect(paneTitle(page)).toHaveText(other);
}

/** Creates a group through "New chat" and waits until it is open. */
export async function createGroup(page: Page, title: string, members: string[]): Promise<void> {
  await page.getByRole("button", { name: "New chat" }).click();
  const dialog = page.getByRole("dialog", { name: "New chat" });
  await dialog.getByLabel("Group name").fill(title);
  await dialog.getByLabel("Members").fill(members.join(", "));
  await dialog.getByRole("button", { name: "Create group" }).click();
  await expect(page).toHaveURL(/\/c\/\d+$/);
  await expect(paneTitle(page)).toHaveText(title);
}

/** The open conversation's title (the pane's heading, the screen's top-level one). */
export function paneTitle(page: Page): Locator {
  return page.getByRole("main").getByRole("heading", { level: 1 }).first();
}

/** Opens a conversation from the list (waiting for it to appear there). */
export async function openConversation(page: Page, title: string): Promise<void> {
  await conversationLink(page, title).click();
  await expect(page).toHaveURL(/\/c\/\d+$/);
  await expect(paneTitle(page)).toHaveText(title);
}

/**
 * Makes the page believe its tab is hidden (or shown again), as when the person switches tabs:
 * headless Chromium keeps every page visible, so the page's own view of it is overridden.
 */
export async function setTabHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", {
      configurable: true,
      get: () => (hidden ? "hidden" : "visible"),
    });
    document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
  }, hidden);
}

export async function send(page: Page, text: string): Promise<void> {
  const box = page.getByRole("textbox", { name: "Message" });
  await box.fill(text);
  await box.press("Enter");
  await expect(box).toHaveValue("");
}

/** Stored (acknowledged) messages in the open conversation's log. */
export function delivered(page: Page): Locator {
  return page.getByRole("log").locator("li.msg[data-seq] .body");
}

/** Messages still in the outbox (sent but not acknowledged). */
export function pending(page: Page): Locator {
  return page.getByRole("log").locator('li.msg[data-state="pending"] .body');
}

/** Waits until exactly one stored message with this exact text is shown. */
export async function expectMessage(page: Page, text: string): Promise<void> {
  await expect(delivered(page).getByText(text, { exact: true })).toHaveCount(1);
}
