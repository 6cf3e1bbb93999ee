// Issue 8: message search. Two people; one searches, sees the matched word marked in the
// results, opens a result that is older than the first history page, and lands on the message,
// marked, in its conversation.
import { test, expect, Page } from "@playwright/test";
import { expectMessage, registerUser, send, startChat, uniqueName, waitConnected } from "./helpers";

/** Sends `count` messages into `conv` from the page's own session over a WebSocket of its own,
 * slower than the per-user send limit, and waits for every ack. */
async function sendMany(page: Page, conv: number, count: number, prefix: string): Promise<void> {
  await page.evaluate(
    async ({ conv, count, prefix }) => {
      const url = location.origin.replace(/^http/, "ws") + "/ws";
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      const acked = new Set<string>();
      ws.onmessage = (ev) => {
        const frame = JSON.parse(ev.data);
        if (frame.type === "ack") acked.add(frame.client_id);
      };
      for (let i = 0; i < count; i++) {
        const client_id = `${prefix}-${i}`;
        ws.send(JSON.stringify({ type: "send", conv, client_id, body: `${prefix} filler ${i}` }));
        await new Promise((r) => setTimeout(r, 70));
      }
      const deadline = Date.now() + 15_000;
      while (acked.size < count && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      ws.close();
      if (acked.size < count) throw new Error(`only ${acked.size} of ${count} acked`);
    },
    { conv, count, prefix },
  );
}

function searchBox(page: Page) {
  return page.getByRole("searchbox", { name: "Search messages" });
}

test("search finds a message, marks the match and opens it in context", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  const conv = Number(new URL(alice.page.url()).pathname.split("/").pop());
  await send(alice.page, "the secret word is pineapple");
  await expectMessage(alice.page, "the secret word is pineapple");
  // Enough newer messages that the found one is not on the first history page (50).
  await sendMany(bob.page, conv, 60, "later");
  await expectMessage(alice.page, "later filler 59");

  // Bob searches every conversation of his (nothing is open).
  await bob.page.goto("/");
  // Typed before hydration, the query would be wiped when the app takes over the box.
  await waitConnected(bob.page);
  await searchBox(bob.page).fill("PINEAPPLE");
  await searchBox(bob.page).press("Enter");
  const hits = bob.page.locator(".search-hits .search-hit");
  await expect(hits).toHaveCount(1);
  await expect(hits.first()).toContainText("the secret word is pineapple");
  await expect(hits.first().locator("mark")).toHaveText("pineapple");
  await expect(bob.page.locator(".search-results-head")).toContainText("1 message");

  // Opening it: the conversation opens, older pages load, the message is shown and marked.
  await hits.first().click();
  await expect(bob.page).toHaveURL(new RegExp(`/c/${conv}$`));
  const found = bob.page
    .getByRole("log")
    .locator("li.msg[data-seq]", { hasText: "the secret word is pineapple" });
  await expect(found).toHaveClass(/flash/, { timeout: 15_000 });
  await expect(found).toBeInViewport();

  // Alice searches only the open conversation; a word nobody wrote finds nothing.
  await searchBox(alice.page).fill("filler 42");
  await alice.page.getByLabel("Only this conversation").check();
  await searchBox(alice.page).press("Enter");
  await expect(alice.page.locator(".search-hits .search-hit")).toHaveCount(1);
  await expect(alice.page.locator(".search-hits mark")).toHaveText(["filler", "42"]);
  await searchBox(alice.page).fill("watermelon");
  await searchBox(alice.page).press("Enter");
  await expect(alice.page.locator(".search-results-head")).toContainText("No messages found");

  // Query syntax is not an error, and a query of symbols only says what to type.
  await searchBox(alice.page).fill('"pineapple');
  await searchBox(alice.page).press("Enter");
  await expect(alice.page.locator(".search-hits .search-hit")).toHaveCount(1);
  await searchBox(alice.page).fill('" * (');
  await searchBox(alice.page).press("Enter");
  await expect(alice.page.locator(".search-results [role=alert]")).toContainText("search for words");
  await expect(alice.page.locator(".search-hits .search-hit")).toHaveCount(0);

  // Escape closes the results.
  await searchBox(alice.page).press("Escape");
  await expect(alice.page.locator(".search-results")).toHaveCount(0);

  for (const user of [alice, bob]) {
    expect(user.dialogs).toEqual([]);
    // The browser logs the refused search's 400 itself; nothing else may be an error.
    expect(user.errors.filter((e) => !e.includes("status of 400"))).toEqual([]);
  }
});
