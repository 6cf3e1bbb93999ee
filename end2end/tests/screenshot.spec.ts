// Takes the README's screenshots: the two-pane chat on a desktop in light and dark, and the
// conversation screen of a phone. A group open, a few conversations listed.
import { test, expect } from "@playwright/test";
import * as path from "path";
import { createGroup, expectMessage, openConversation, registerUser, send, startChat, uniqueName } from "./helpers";

const docs = path.join(__dirname, "..", "..", "docs");

test("screenshots of the chat for the README", async ({ browser }) => {
  const viewport = { width: 1200, height: 720 };
  const ada = await registerUser(browser, uniqueName("ada"), { viewport });
  const grace = await registerUser(browser, uniqueName("grace"), { viewport });
  const linus = await registerUser(browser, uniqueName("linus"), { viewport: { width: 390, height: 760 } });

  // Group titles need not be unique, so this one can read nicely.
  const group = "Launch crew";
  await createGroup(ada.page, group, [grace.name, linus.name]);
  await send(ada.page, "Morning! The launch checklist is in the doc: https://example.org/launch");
  await send(ada.page, "Please tick off your part by 11.");
  await openConversation(grace.page, group);
  await send(grace.page, "Migration ran overnight: 1.2M rows, no errors.");
  await send(grace.page, "Dashboards look calm.");
  await openConversation(linus.page, group);
  await send(linus.page, "Release notes are ready for review.");
  await send(ada.page, "Wonderful. Let's ship it at noon.");
  await send(grace.page, "<b>Bold</b> claims are shown as typed, never as HTML.");
  await expectMessage(ada.page, "<b>Bold</b> claims are shown as typed, never as HTML.");

  // Linus is on a phone: the list (and "New chat") is the screen behind the conversation.
  await linus.page.getByRole("link", { name: "Back to conversations" }).click();
  await startChat(linus.page, ada.name);
  await send(linus.page, "Got a minute after the launch?");
  await startChat(grace.page, ada.name);
  await send(grace.page, "Lunch later?");
  await send(grace.page, "The new place on 5th?");
  await expect(ada.page.getByRole("navigation", { name: "Conversations" }).getByRole("link")).toHaveCount(3);
  await send(ada.page, "Noon it is!");
  await expectMessage(ada.page, "Noon it is!");

  await ada.page.screenshot({ path: path.join(docs, "screenshot.png") });
  await ada.page.emulateMedia({ colorScheme: "dark" });
  await ada.page.screenshot({ path: path.join(docs, "screenshot-dark.png") });
  await linus.page.getByRole("link", { name: "Back to conversations" }).click();
  await openConversation(linus.page, group);
  await expectMessage(linus.page, "Noon it is!");
  await linus.page.screenshot({ path: path.join(docs, "screenshot-phone.png") });
  for (const u of [ada, grace, linus]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
