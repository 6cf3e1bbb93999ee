// Issue 9, contacts: a request by username (picked from suggestions with the keyboard) reaches
// the other person live with a badge; they accept; both lists show each other with presence;
// one click opens the direct chat; removing asks first and reaches the other side live. And the
// "New chat" dialog suggests people as you type.
import { test, expect, Page } from "@playwright/test";
import { expectMessage, paneTitle, registerUser, send, uniqueName } from "./helpers";

/** The Contacts section of the sidebar, opened. */
async function openContacts(page: Page) {
  const section = page.getByRole("region", { name: "Contacts" });
  const summary = section.locator("summary");
  if ((await section.locator("details").getAttribute("open")) === null) await summary.click();
  await expect(section.getByLabel("Add a contact")).toBeVisible();
  return section;
}

test("contact request → live badge → accept → presence → one click opens the chat → remove", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));

  // Alice types the start of Bob's name and picks him from the suggestions with the keyboard.
  const mine = await openContacts(alice.page);
  const field = mine.getByLabel("Add a contact");
  await field.fill(bob.name.slice(0, -1));
  const suggestions = mine.getByRole("listbox");
  await expect(suggestions.getByRole("option", { name: bob.name })).toBeVisible();
  await field.press("ArrowDown");
  await expect(suggestions.getByRole("option", { name: bob.name })).toHaveAttribute("aria-selected", "true");
  await field.press("Enter");
  const sent = mine.getByRole("list", { name: "Requests I sent" });
  await expect(sent.getByRole("listitem")).toHaveText(new RegExp(bob.name));
  await expect(field).toHaveValue("");

  // Bob sees a badge on Contacts at once, without reloading.
  const theirs = bob.page.getByRole("region", { name: "Contacts" });
  await expect(theirs.locator("summary .badge")).toHaveText(/^1/);
  await openContacts(bob.page);
  const requests = theirs.getByRole("list", { name: "Contact requests" });
  await expect(requests.getByRole("listitem")).toHaveCount(1);
  await requests.getByRole("button", { name: `Accept ${alice.name}` }).click();
  await expect(theirs.locator("summary .badge")).toHaveCount(0);

  // Both lists now hold the other, online (both are connected).
  await expect(
    theirs.getByRole("list", { name: "My contacts" }).getByRole("button", { name: `${alice.name}, online` }),
  ).toBeVisible();
  const aliceContact = mine.getByRole("list", { name: "My contacts" }).getByRole("button", { name: `${bob.name}, online` });
  await expect(aliceContact).toBeVisible();
  await expect(sent).toBeHidden();

  // One click opens the direct chat.
  await aliceContact.click();
  await expect(alice.page).toHaveURL(/\/c\/\d+$/);
  await expect(paneTitle(alice.page)).toHaveText(bob.name);
  await send(alice.page, "Hi contact");
  await expectMessage(alice.page, "Hi contact");

  // Bob goes away: Alice sees him offline.
  await bob.page.goto("about:blank");
  await expect(mine.getByRole("list", { name: "My contacts" }).getByRole("button", { name: `${bob.name}, offline` })).toBeVisible();
  await bob.page.goBack();
  await openContacts(bob.page);
  await expect(
    theirs.getByRole("list", { name: "My contacts" }).getByRole("button", { name: `${alice.name}, online` }),
  ).toBeVisible();

  // Removing asks first; cancelling keeps the contact, confirming reaches Bob live.
  await mine.getByRole("button", { name: `Remove ${bob.name}` }).click();
  await mine.getByRole("group", { name: "Confirm removal" }).getByRole("button", { name: "Cancel" }).click();
  await expect(mine.getByRole("list", { name: "My contacts" }).getByRole("listitem")).toHaveCount(1);
  await mine.getByRole("button", { name: `Remove ${bob.name}` }).click();
  await mine.getByRole("group", { name: "Confirm removal" }).getByRole("button", { name: "Remove" }).click();
  await expect(mine.getByRole("list", { name: "My contacts" }).getByRole("listitem")).toHaveCount(0);
  await expect(theirs.getByRole("list", { name: "My contacts" }).getByRole("listitem")).toHaveCount(0);
  await expect(theirs.getByText("No contacts yet")).toBeVisible();

  // A refused request says why, next to the field.
  await field.fill(alice.name);
  await mine.getByRole("button", { name: "Send request" }).click();
  await expect(mine.locator("#contact-request-error")).toContainText("your own contact");
  await expect(field).toHaveAttribute("aria-invalid", "true");

  for (const u of [alice, bob]) {
    // The browser logs the refused request's 400 itself; nothing else may appear.
    expect(u.errors.filter((e) => !e.includes("status of 400 (Bad Request)"))).toEqual([]);
    await u.context.close();
  }
});

test("New chat suggests people as you type; a click on one opens the chat", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const carol = await registerUser(browser, uniqueName("carol"));
  const page = alice.page;

  await page.getByRole("button", { name: "New chat" }).click();
  const dialog = page.getByRole("dialog", { name: "New chat" });
  const field = dialog.getByRole("combobox", { name: "Start a chat with" });
  // One character is not enough to ask.
  await field.fill(carol.name.slice(0, 1));
  await expect(dialog.getByRole("listbox")).toBeHidden();
  await field.fill(carol.name.slice(0, -2));
  const option = dialog.getByRole("option", { name: carol.name });
  await expect(option).toBeVisible();
  await expect(field).toHaveAttribute("aria-expanded", "true");
  // Escape closes the list, not the dialog.
  await field.press("Escape");
  await expect(dialog.getByRole("listbox")).toBeHidden();
  await expect(dialog).toBeVisible();
  await field.fill(carol.name.slice(0, -1));
  await option.click();
  await expect(page).toHaveURL(/\/c\/\d+$/);
  await expect(dialog).toBeHidden();
  await expect(paneTitle(page)).toHaveText(carol.name);

  for (const u of [alice, carol]) {
    expect(u.errors).toEqual([]);
    await u.context.close();
  }
});
