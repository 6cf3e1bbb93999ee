// Issue 9, reconnecting: after a long outage the page says when it will try again, and "Retry
// now" does not wait.
import { test, expect } from "@playwright/test";
import { registerUser, uniqueName, waitConnected } from "./helpers";

test("after repeated failures the wait is shown and Retry now connects at once", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const page = alice.page;
  // While `__blockWs` is set, every new WebSocket fails before opening, as when the server is down.
  await page.addInitScript(() => {
    const Real = window.WebSocket;
    (window as any).__blockWs = false;
    window.WebSocket = new Proxy(Real, {
      construct(target, args: [string]) {
        if (!(window as any).__blockWs) return new target(...args);
        const failed: any = { readyState: 3, onopen: null, onmessage: null, onclose: null, onerror: null };
        failed.close = () => {};
        failed.send = () => {};
        setTimeout(() => failed.onclose && failed.onclose({ code: 1006 }), 20);
        return failed;
      },
    });
  });
  await page.reload();
  await waitConnected(page);
  const status = page.getByRole("status");

  // Drop the connection (going offline closes it) and come back to a server that is "down".
  await page.evaluate(() => ((window as any).__blockWs = true));
  await alice.context.setOffline(true);
  await expect(status).toHaveText("Reconnecting…");
  await alice.context.setOffline(false);
  // Each failed attempt doubles the wait; once it is long, the page says how long.
  await expect(status).toHaveText(/^Reconnecting in ([6-9]|\d\d) s$/, { timeout: 40_000 });
  const retry = page.getByRole("button", { name: "Retry now" });
  await expect(retry).toBeVisible();

  // The server is back: Retry now connects well before the wait is over.
  await page.evaluate(() => ((window as any).__blockWs = false));
  await retry.click();
  await expect(status).toHaveText("", { timeout: 2_500 });
  await expect(retry).toBeHidden();

  const appErrors = alice.errors.filter((e) => !/net::ERR_|WebSocket/.test(e));
  expect(appErrors).toEqual([]);
  await alice.context.close();
});
