// Takes the README's screenshot: the two-pane chat view, a group open, a few conversations listed.
import { test, expect } from "@playwright/test";
import * as path from "path";
import { expectMessage, openConversation, registerUser, send, startChat, uniqueName } from "./helpers";

test("screenshot of the chat for the README", async ({ browser }) => {
  const viewport = { width: 1200, height: 720 };
  const ada = await registerUser(browser, uniqueName("ada"), { viewport });
  const grace = await registerUser(browser, uniqueName("grace"), { viewport });
  const linus = await registerUser(browser, uniqueName("linus"), { viewport });

  // Group titles need not be unique, so this one can read nicely.
  const group = "Launch crew";
  await ada.page.getByRole("button", { name: "New group" }).click();
  await ada.page.getByLabel("Group name").fill(group);
  await ada.page.getByLabel("Members").fill(`${grace.name}, ${linus.name}`);
  await ada.page.getByRole("button", { name: "Create" }).click();
  await send(ada.page, "Morning! The launch checklist is in the doc.");
  await openConversation(grace.page, group);
  await send(grace.page, "Migration ran overnight: 1.2M rows, no errors.");
  await openConversation(linus.page, group);
  await send(linus.page, "Release notes are ready for review.");
  await send(ada.page, "Wonderful. Let's ship it at noon.");
  await send(grace.page, "<b>Bold</b> claims are shown as typed, never as HTML.");
  await expectMessage(ada.page, "<b>Bold</b> claims are shown as typed, never as HTML.");

  await startChat(linus.page, ada.name);
  await send(linus.page, "Got a minute after the launch?");
  await startChat(grace.page, ada.name);
  await send(grace.page, "Lunch later?");
  await send(grace.page, "The new place on 5th?");
  await expect(ada.page.getByRole("navigation", { name: "Conversations" }).getByRole("link")).toHaveCount(3);
  await send(ada.page, "Noon it is!");
  await expectMessage(ada.page, "Noon it is!");

  const file = path.join(__dirname, "..", "..", "docs", "screenshot.png");
  await ada.page.screenshot({ path: file });
  for (const u of [ada, grace, linus]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
