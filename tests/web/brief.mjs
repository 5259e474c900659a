// Loads a negotiation brief (a self-contained HTML file) in headless Chromium, takes a
// screenshot of the whole page and prints one JSON object: console errors and exceptions, the
// requests the page made besides itself (a self-contained page makes none), its figures
// (data-figure → data-value), the text of the "left out" box and the page's text.
//
//   node tests/web/brief.mjs BRIEF.html SCREENSHOT.png
import { pathToFileURL } from "node:url";
import { launch, watchedPage } from "./browser.mjs";

const [file, screenshot] = process.argv.slice(2);
const browser = await launch();
const errors = [];
const requests = [];
let result;
try {
  const page = await watchedPage(browser, errors);
  const url = pathToFileURL(file).href;
  page.on("request", (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url, { waitUntil: "load" });
  await page.screenshot({ path: screenshot, fullPage: true });
  result = await page.evaluate(() => ({
    title: document.title,
    figures: Object.fromEntries(
      [...document.querySelectorAll("[data-figure]")].map((e) => [e.dataset.figure, e.dataset.value]),
    ),
    svg_charts: document.querySelectorAll("figure svg").length,
    left_out: document.getElementById("left-out")?.innerText ?? null,
    text: document.body.innerText,
  }));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...result, console_errors: errors, requests }));
