// Headless Chromium (Debian's, driven by playwright-core) for the browser tests.
import { chromium } from "playwright-core";

/** Starts Chromium with the flags this machine needs (no sandbox as root, no background
 *  networking: the network is closed and its attempts are refused). */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new page that records console errors and uncaught exceptions into `errors`. */
export async function watchedPage(browser, errors) {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
  return page;
}
