/**
 * The story as a user sees it: `task dev`'s sample (real Backrest with its real web UI, the operator, one
 * VolSync sync) opened in headless Chromium. The test clicks what the README and `task dev` tell a user to
 * click: the repo by its id in the menu, the snapshot in its tree, "Snapshot Browser", then folders down to
 * a file. The screenshot of that page is the README's (`BVO_SCREENSHOT=docs/backrest-ui.png` writes it
 * there); no password appears on it.
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { launchBrowser } from "./harness/browser.ts";
import { tempDir } from "./harness/process.ts";
import { startStory } from "./harness/story.ts";

/** The single element showing exactly `text` (puppeteer's text selector), once it appears. */
async function byText(page: Page, text: string, within = "") {
  const found = await page.waitForSelector(`${within} ::-p-text(${text})`, { timeout: 30_000 });
  if (!found) throw new Error(`nothing shows "${text}"`);
  return found;
}

function entry(page: Page, name: string) {
  return byText(page, name, "[data-testid=snapshot-browser-entry]");
}

Deno.test("browser: Backrest's UI shows the VolSync snapshot of the repo the operator registered, and its files", async () => {
  const story = await startStory({ namespace: "backups" });
  const secretPassword = (await story.cp.json("GET", `/api/v1/namespaces/backups/secrets/restic-my-app`) as {
    data: { RESTIC_PASSWORD: string };
  }).data.RESTIC_PASSWORD;
  const browser = await launchBrowser();
  try {
    const started = performance.now();
    const page = await browser.newPage();
    await page.goto(story.backrest.url, { waitUntil: "load" });
    assert.equal(await page.title(), "Backrest");

    // The menu (Repositories) lists the repo by its id; clicking it opens the repo's page.
    const menuItem = await page.waitForSelector(`[data-testid="sidebar-item-repo-${story.repoId}"]`, {
      timeout: 30_000,
    });
    assert.ok(menuItem);
    assert.equal((await menuItem.evaluate((e) => e.textContent))?.trim(), story.repoId);
    await menuItem.click();
    await page.waitForFunction((id: string) => location.hash === `#/repo/${id}`, {}, story.repoId);

    // The operation tree holds the snapshot the sync made (Backrest's short id); selecting it shows details.
    await (await byText(page, `ID: ${story.sync.snapshotId}`)).click();
    await byText(page, "@volsync"); // user and host: VolSync's mover sets the host
    await (await byText(page, "Snapshot Browser")).click();

    // Its files, as restic stored them from /data; down two folders to one file.
    for (const top of ["README.txt", "config", "uploads"]) await entry(page, top);
    await (await entry(page, "uploads")).click();
    await (await entry(page, "2026")).click();
    const file = await entry(page, "notes.txt");
    await file.scrollIntoView();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    // deno-lint-ignore no-console -- the measured time belongs in the test output
    console.error(`browser: repo opened and a file listed in ${seconds} s`);

    const dir = await tempDir("browser");
    const shot = Deno.env.get("BVO_SCREENSHOT") ?? `${dir}/backrest-ui.png`;
    await page.screenshot({ path: shot as `${string}.png` });
    // deno-lint-ignore no-console
    console.error(`browser: screenshot ${shot}`);

    // Nothing on the page (text, markup, or what scripts hold in the DOM) carries the repository password.
    const password = new TextDecoder().decode(Uint8Array.from(atob(secretPassword), (c) => c.charCodeAt(0)));
    assert.ok(password.length >= 8);
    const html = await page.content();
    const text = String(await page.evaluate("document.body.innerText"));
    assert.ok(!html.includes(password) && !text.includes(password), "the password is not on the page");
  } finally {
    await browser.close();
  }
});
