// Accounts: the login form works as a plain HTML form before (or without) the WASM, and from the
// hydrated app; errors are shown; a visitor without a session is sent to /login.
import { test, expect } from "@playwright/test";
import { PASSWORD, registerUser, uniqueName, waitConnected } from "./helpers";

test("without a session / redirects to /login", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("button", { name: "Log in" })).toBeVisible();
});

test("register, log in and errors work as plain HTML forms without JavaScript", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const name = uniqueName("nojs");

  await page.goto("/login");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("navigation", { name: "Conversations" })).toBeVisible();

  // Log out, then a wrong password comes back to the form with the error shown.
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText(/password|credentials/i);

  // The right password logs in.
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("navigation", { name: "Conversations" })).toBeVisible();
  await context.close();
});

test("the hydrated form shows errors and logs in and out", async ({ browser }) => {
  const user = await registerUser(browser, uniqueName("hyd"));
  const page = user.page;

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);

  // A taken username.
  await page.getByLabel("Username").fill(user.name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Register" }).click();
  await expect(page.getByRole("alert")).toContainText(/taken|exists/i);

  // A wrong password: the fields are marked invalid and described by the error.
  await page.getByLabel("Password").fill("wrong password!");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText(/password|credentials/i);
  await expect(page.getByLabel("Password")).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Password")).toHaveAccessibleDescription(/password|credentials/i);

  // Enter in the password field logs in.
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Password").press("Enter");
  await expect(page).toHaveURL(/\/$/);
  await waitConnected(page);
  await user.context.close();
});
