// gRPC-Web from a real browser page: the page, served from a local origin, calls the data
// service with fetch (as a gRPC-Web library does in a browser), so that Chromium applies CORS:
// a preflight for the Authorization header, then the call.
//
//   node tests/web/cors.mjs TOKEN
// prints `origin http://localhost:PORT` (the allowed origin, for --cors-origin), reads the data
// service's URL from stdin, then prints one JSON object of what each page saw:
//   allowed / allowed_without_token: the page at http://localhost:PORT;
//   refused: the same page at http://127.0.0.1:PORT, an origin not allowed.
import http from "node:http";
import readline from "node:readline";
import { launch, watchedPage } from "./browser.mjs";

const [token] = process.argv.slice(2);
const server = http.createServer((_, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>tradepact gRPC-Web</title><p>test page</p>");
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const port = server.address().port;
console.log(`origin http://localhost:${port}`);
const lines = readline.createInterface({ input: process.stdin });
const dataUrl = (await lines[Symbol.asyncIterator]().next()).value.trim();

// Runs in the page: one gRPC-Web call of ListCountries (an empty request is a 5-byte frame).
async function listCountries({ dataUrl, token }) {
  const headers = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const res = await fetch(`${dataUrl}/tradepact.data.v1.TradeDataService/ListCountries`, {
      method: "POST",
      headers,
      body: new Uint8Array(5),
    });
    const body = new Uint8Array(await res.arrayBuffer());
    let at = 0;
    let messages = 0;
    let trailer = "";
    while (at + 5 <= body.length) {
      const length = new DataView(body.buffer, at + 1, 4).getUint32(0);
      const payload = body.slice(at + 5, at + 5 + length);
      if (body[at] & 0x80) trailer = new TextDecoder().decode(payload);
      else messages += 1;
      at += 5 + length;
    }
    const status = res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(trailer)?.[1];
    return {
      fetched: true,
      http_status: res.status,
      grpc_status: status === undefined ? null : Number(status),
      messages,
      message_bytes: body.length,
    };
  } catch (e) {
    return { fetched: false, error: String(e) };
  }
}

const browser = await launch();
const errors = [];
const result = {};
try {
  const page = await watchedPage(browser, errors);
  await page.goto(`http://localhost:${port}/`);
  result.allowed = await page.evaluate(listCountries, { dataUrl, token });
  result.allowed_without_token = await page.evaluate(listCountries, { dataUrl, token: null });
  const refused = await watchedPage(browser, []);
  await refused.goto(`http://127.0.0.1:${port}/`);
  result.refused = await refused.evaluate(listCountries, { dataUrl, token });
} finally {
  await browser.close();
  server.close();
}
result.console_errors = errors;
console.log(JSON.stringify(result));
