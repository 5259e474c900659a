// gRPC-Web from Node with Connect's gRPC-Web transport over HTTP/1.1 (a gRPC-Web client
// library, as a web front end would use): a unary call, a server-streaming call and a refused
// call against the data service at the URL given. Prints one JSON object for the test in
// tests/tests/e2e/web.rs to compare with the same calls over gRPC.
//
//   node tests/web/grpc_web.mjs http://127.0.0.1:PORT [TOKEN]
import { createClient, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";
import {
  TradeDataService,
  Flow,
  TradeKind,
  Frequency,
} from "./gen/tradepact/data/v1/data_service_pb.js";

const [baseUrl, token] = process.argv.slice(2);
const transport = createGrpcWebTransport({
  baseUrl,
  httpVersion: "1.1",
  interceptors: token
    ? [(next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      }]
    : [],
});
const client = createClient(TradeDataService, transport);
const options = { timeoutMs: 10_000 };

const balance = await client.getTradeBalance(
  { reporter: "USA", partner: "KOR", startPeriod: "2011", endPeriod: "2016" },
  options,
);

const streamed = [];
for await (const message of client.streamSeries(
  {
    key: {
      reporter: "USA",
      partner: "KOR",
      flow: Flow.IMPORT,
      kind: TradeKind.GOODS,
      product: "TOTAL",
      frequency: Frequency.ANNUAL,
    },
  },
  options,
)) {
  streamed.push(message.values.map((v) => [v.period, v.valueUsd]));
}

let refused = null;
try {
  await client.getTradeBalance({ reporter: "", partner: "KOR" }, options);
} catch (e) {
  const error = ConnectError.from(e);
  refused = {
    code: error.code,
    message: error.rawMessage,
    fields: error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)),
  };
}

console.log(
  JSON.stringify({
    goods_balance: balance.rows.map((r) => [r.period, r.goods?.balanceUsd ?? null]),
    streamed,
    refused,
  }),
);
