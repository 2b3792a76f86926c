/**
 * A real browser for tests: Debian's headless Chromium (apt package `chromium`), driven over the DevTools
 * protocol by puppeteer-core (npm), which never downloads a browser of its own. Rule: a missing browser is
 * an error naming the package to install, never a skip.
 */
import puppeteer, { type Browser } from "puppeteer-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The browser binary: `$BVO_CHROMIUM`, else Debian's `/usr/bin/chromium` (or another Chromium found). */
export function chromiumPath(): string {
  const explicit = Deno.env.get("BVO_CHROMIUM");
  for (const path of explicit ? [explicit] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* next */ }
  }
  throw new Error(
    `no Chromium at ${
      explicit ?? CANDIDATES.join(", ")
    }: install Debian's package (apt-get install chromium) ` +
      "or set BVO_CHROMIUM",
  );
}

/** Launches headless Chromium with a fresh profile; close it with `browser.close()`. */
export async function launchBrowser(): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Chromium's sandbox refuses root and needs user namespaces (restricted on some hosts); the pages are
    // our own loopback peers.
    args: ["--no-sandbox"],
    defaultViewport: { width: 1400, height: 1100 },
  });
}
