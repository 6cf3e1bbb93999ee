// Issue 8, attachments: a picture attached with the picker shows inline for the other person
// (sized, lazy-loaded, fetched through the members-only URL); any other file is a download link
// with its name and size; an upload in progress can be cancelled and then sends nothing.
import { test, expect } from "@playwright/test";
import { openConversation, registerUser, send, expectMessage, startChat, uniqueName } from "./helpers";

/** A 1×1 PNG. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

test("an image from the picker shows inline; another file is a link with name and size", async ({
  browser,
}) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "a picture for you");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "a picture for you");

  const picker = alice.page.locator("form.composer input[type=file]");
  await picker.setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: PNG });
  const img = bob.page.getByRole("log").locator("li.msg img[alt='dot.png']");
  await expect(img).toBeVisible();
  await expect(img).toHaveAttribute("loading", "lazy");
  await expect(img).toHaveAttribute("width", "1");
  await expect(img).toHaveAttribute("height", "1");
  await expect(img).toHaveAttribute("src", /^\/api\/attachments\/[0-9a-f]{32}$/);
  // The picture really loaded (decoded), through the authorized URL.
  await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBe(1);
  // The sender sees it too, and the conversation list names the file.
  await expect(alice.page.getByRole("log").locator("li.msg img[alt='dot.png']")).toBeVisible();

  const text = Buffer.from("minutes of the meeting\n".repeat(100)); // 2300 bytes
  await picker.setInputFiles({ name: "minutes.txt", mimeType: "text/plain", buffer: text });
  const link = bob.page.getByRole("log").locator("a.attachment-file", { hasText: "minutes.txt" });
  await expect(link).toBeVisible();
  await expect(link).toContainText("2.2 KB");
  await expect(link).toHaveAttribute("href", /^\/api\/attachments\/[0-9a-f]{32}$/);
  await expect(bob.page.getByRole("log").locator("img[alt='minutes.txt']")).toHaveCount(0);
  const [download] = await Promise.all([bob.page.waitForEvent("download"), link.click()]);
  expect(download.suggestedFilename()).toBe("minutes.txt");
});

test("an upload shows its progress and can be cancelled, sending nothing", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  // Hold the upload back so that it is still under way when Cancel is pressed.
  const uploads = (url: URL) => url.pathname === "/api/attachments";
  await alice.page.route(uploads, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await route.continue().catch(() => {});
  });
  await alice.page
    .locator("form.composer input[type=file]")
    .setInputFiles({ name: "slow.png", mimeType: "image/png", buffer: PNG });
  const status = alice.page.locator(".uploading");
  await expect(status).toContainText("Uploading slow.png");
  await expect(status.getByRole("progressbar")).toBeVisible();
  await status.getByRole("button", { name: "Cancel" }).click();
  await expect(status).toBeHidden();
  await alice.page.unroute(uploads);

  await send(alice.page, "after the cancel");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "after the cancel");
  await expect(bob.page.getByRole("log").locator("img, a.attachment-file")).toHaveCount(0);
  await expect(alice.page.getByRole("log").locator("li.msg img")).toHaveCount(0);
});
