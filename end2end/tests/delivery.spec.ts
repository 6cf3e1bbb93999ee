// Issue 3, browser side: nothing acknowledged is lost, duplicated or reordered when a browser goes
// offline, sends while offline, or reloads with a message still pending.
import { test, expect } from "@playwright/test";
import {
  delivered,
  expectMessage,
  openConversation,
  pending,
  registerUser,
  send,
  startChat,
  uniqueName,
  waitConnected,
} from "./helpers";

test("offline catch-up, sending while offline, and a reload with a pending message", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "first");
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "first");

  // Bob goes offline; his page notices and says so.
  await bob.context.setOffline(true);
  await expect(bob.page.getByRole("status")).toHaveText("Reconnecting…");

  // Alice sends 20 messages meanwhile.
  const burst = Array.from({ length: 20 }, (_, i) => `burst ${String(i + 1).padStart(2, "0")}`);
  for (const text of burst) await send(alice.page, text);
  await expect(pending(alice.page)).toHaveCount(0);
  await expectMessage(alice.page, "burst 20");

  // Bob types while offline: the composer still takes it, shown as pending.
  await send(bob.page, "written while offline");
  await expect(pending(bob.page)).toHaveText(["written while offline"]);

  // Back online: without a reload, Bob gets all 20 once and in order, and his message goes out.
  await bob.context.setOffline(false);
  await expect(bob.page.getByRole("status")).toHaveText("", { timeout: 30_000 });
  await expect(pending(bob.page)).toHaveCount(0);
  await expect(delivered(bob.page)).toHaveText(["first", ...burst, "written while offline"]);
  await expect(delivered(alice.page)).toHaveText(["first", ...burst, "written while offline"]);

  // A reload while a message is pending: Bob's socket reaches the server, but the server's replies
  // (the ack among them) are held back, so the message is stored yet still pending in Bob's page.
  let forwardReplies = false;
  await bob.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((message) => {
      if (forwardReplies) ws.send(message);
    });
  });
  await bob.page.reload();
  await expect(bob.page.getByRole("navigation", { name: "Conversations" })).toBeVisible();
  await openConversation(bob.page, alice.name);
  await send(bob.page, "sent just before a reload");
  await expectMessage(alice.page, "sent just before a reload");
  await expect(pending(bob.page)).toHaveText(["sent just before a reload"]);

  // Reload with the replies flowing again: the saved outbox re-sends it with the same client_id;
  // the server recognises it, so everyone sees it exactly once.
  forwardReplies = true;
  await bob.page.reload();
  await waitConnected(bob.page);
  await openConversation(bob.page, alice.name);
  await expect(pending(bob.page)).toHaveCount(0);
  await expectMessage(bob.page, "sent just before a reload");
  await alice.page.waitForTimeout(1000);
  const expected = ["first", ...burst, "written while offline", "sent just before a reload"];
  await expect(delivered(alice.page)).toHaveText(expected);
  await expect(delivered(bob.page)).toHaveText(expected);

  // Going offline may make the browser log failed requests; anything else is a bug.
  const appErrors = (errors: string[]) => errors.filter((e) => !/net::ERR_|WebSocket/.test(e));
  expect(appErrors(alice.errors)).toEqual([]);
  expect(appErrors(bob.errors)).toEqual([]);
  await alice.context.close();
  await bob.context.close();
});

test("a refused message shows the error and can be retried or discarded", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(bob.page, alice.name);

  // Stand in for a server that refuses Alice's sends while `refuse` is set (frames as documented
  // in the protocol); everything else passes through to the real server.
  let refuse = true;
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(message.toString());
      if (refuse && frame.type === "send") {
        ws.send(
          JSON.stringify({ type: "error", code: "rate_limited", message: "slow down", client_id: frame.client_id }),
        );
      } else {
        server.send(message);
      }
    });
  });
  await alice.page.reload();
  await waitConnected(alice.page);
  await openConversation(alice.page, bob.name);

  const failed = alice.page.getByRole("log").locator('li.msg[data-state="failed"]');
  await send(alice.page, "refused, then retried");
  await expect(failed).toHaveCount(1);
  await expect(failed).toContainText("slow down");

  refuse = false;
  await failed.getByRole("button", { name: "Retry" }).click();
  await expect(failed).toHaveCount(0);
  await expectMessage(alice.page, "refused, then retried");
  await expectMessage(bob.page, "refused, then retried");

  refuse = true;
  await send(alice.page, "refused, then discarded");
  await expect(failed).toContainText("slow down");
  await failed.getByRole("button", { name: "Discard" }).click();
  await expect(failed).toHaveCount(0);

  // Discarded means gone, also after a reload (the saved outbox forgot it too).
  refuse = false;
  await alice.page.reload();
  await waitConnected(alice.page);
  await openConversation(alice.page, bob.name);
  await expect(delivered(alice.page)).toHaveText(["refused, then retried"]);
  await expect(alice.page.getByRole("log").locator("li.msg[data-state]")).toHaveCount(0);
  await expect(delivered(bob.page)).toHaveText(["refused, then retried"]);

  await alice.context.close();
  await bob.context.close();
});

test("a live message that skips a seq makes the page fetch the gap, keeping the order", async ({ browser }) => {
  const alice = await registerUser(browser, uniqueName("alice"));
  const bob = await registerUser(browser, uniqueName("bob"));
  await startChat(alice.page, bob.name);
  await send(alice.page, "one");

  // Lose exactly one live frame on its way to Bob, as a flaky fan-out might, and watch Bob's page
  // ask for what it missed.
  let dropped = 0;
  let syncsAfterDrop = 0;
  await bob.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      if (dropped > 0 && JSON.parse(message.toString()).type === "sync") syncsAfterDrop += 1;
      server.send(message);
    });
    server.onMessage((message) => {
      const frame = JSON.parse(message.toString());
      if (frame.type === "message" && frame.body === "lost in transit" && dropped === 0) {
        dropped += 1;
        return;
      }
      ws.send(message);
    });
  });
  await bob.page.reload();
  await waitConnected(bob.page);
  await openConversation(bob.page, alice.name);
  await expectMessage(bob.page, "one");

  await send(alice.page, "lost in transit");
  await send(alice.page, "after the gap");
  await expect(delivered(bob.page)).toHaveText(["one", "lost in transit", "after the gap"]);
  expect(dropped).toBe(1);
  expect(syncsAfterDrop).toBe(1);

  await alice.context.close();
  await bob.context.close();
});
