// Two browsers on two different server nodes (one MariaDB, one Redis) chat and see each other's
// presence. scripts/test starts the two nodes and passes their addresses in NODE_A_URL and
// NODE_B_URL.
import { expect, test } from "@playwright/test";
import { expectMessage, registerUser, send, startChat, uniqueName, openConversation } from "./helpers";

const nodeA = process.env.NODE_A_URL;
const nodeB = process.env.NODE_B_URL;

test("two browsers on two nodes chat and see each other online", async ({ browser }) => {
  expect(nodeA, "NODE_A_URL is set by scripts/test").toBeTruthy();
  expect(nodeB, "NODE_B_URL is set by scripts/test").toBeTruthy();
  const ann = await registerUser(browser, uniqueName("ann"), { baseURL: nodeA });
  const ben = await registerUser(browser, uniqueName("ben"), { baseURL: nodeB });

  await startChat(ann.page, ben.name);
  await send(ann.page, "hello from node A");
  await openConversation(ben.page, ann.name);
  await expectMessage(ben.page, "hello from node A");
  await send(ben.page, "hello back from node B");
  await expectMessage(ann.page, "hello back from node B");

  // Presence crosses nodes both ways.
  await expect(ann.page.locator("p.subtitle")).toHaveText("online");
  await expect(ben.page.locator("p.subtitle")).toHaveText("online");
  await ben.context.close();
  await expect(ann.page.locator("p.subtitle")).toHaveText("direct chat");

  expect(ann.errors).toEqual([]);
  expect(ann.dialogs).toEqual([]);
  await ann.context.close();
});
