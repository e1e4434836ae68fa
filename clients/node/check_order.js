#!/usr/bin/env node
// A foreign (non-Python) riskgate client: loads protos/riskgate/v1/riskgate.proto at run time
// with @grpc/proto-loader (no generated code), sends GetAccount and one CheckOrder, and prints
// the decision as one JSON line on stdout.
//
//   node check_order.js [--target HOST:PORT] [--client-order-id ID] [--timeout-ms MS]
//                       [--proto-root DIR] ACCOUNT SYMBOL SIDE QTY [PRICE]
//
// SIDE is buy or sell. With PRICE the order is a LIMIT order, without it a MARKET order.
// Output: the Decision message with proto field names, enums as names, 64-bit integers as
// strings and every field present (the shape of `riskgate check --json`), plus one extra key
// "account_before" with the account's figures from GetAccount just before the order.
// Exit status: 0 accepted, 1 rejected, 2 error (one line on stderr naming the gRPC status).
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const DEFAULT_TARGET = "127.0.0.1:50051";
const DEFAULT_PROTO_ROOT = path.resolve(__dirname, "..", "..", "protos");
const PROTO_FILE = "riskgate/v1/riskgate.proto";
const USAGE =
  "usage: node check_order.js [--target HOST:PORT] [--client-order-id ID] " +
  "[--timeout-ms MS] [--proto-root DIR] ACCOUNT SYMBOL SIDE QTY [PRICE]";

class UsageError extends Error {}

function parseNumber(text, name) {
  const value = Number(text);
  if (text === undefined || String(text).trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`${name}: expected a finite number, got ${JSON.stringify(text)}`);
  }
  return value;
}

function parseArgs(argv) {
  const opts = {
    target: DEFAULT_TARGET,
    clientOrderId: `node-${Date.now()}-${process.pid}`,
    timeoutMs: 5000,
    protoRoot: DEFAULT_PROTO_ROOT,
  };
  const positional = [];
  const flags = {
    "--target": (v) => (opts.target = v),
    "--client-order-id": (v) => (opts.clientOrderId = v),
    "--timeout-ms": (v) => (opts.timeoutMs = parseNumber(v, "--timeout-ms")),
    "--proto-root": (v) => (opts.protoRoot = path.resolve(v)),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") {
      process.stdout.write(USAGE + "\n");
      process.exit(0);
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (name in flags) {
      const value = eq > 0 && name !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name}: missing value`);
      flags[name](value);
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length < 4 || positional.length > 5) {
    throw new UsageError(`expected ACCOUNT SYMBOL SIDE QTY [PRICE], got ${positional.length} arguments`);
  }
  const [account, symbol, sideText, qtyText, priceText] = positional;
  const side = { buy: "SIDE_BUY", sell: "SIDE_SELL" }[sideText.toLowerCase()];
  if (!side) throw new UsageError(`SIDE: expected buy or sell, got ${JSON.stringify(sideText)}`);
  opts.order = {
    account_id: account,
    client_order_id: opts.clientOrderId,
    symbol,
    side,
    quantity: parseNumber(qtyText, "QTY"),
    order_type: priceText === undefined ? "ORDER_TYPE_MARKET" : "ORDER_TYPE_LIMIT",
  };
  if (priceText !== undefined) opts.order.price = parseNumber(priceText, "PRICE");
  return opts;
}

function loadService(protoRoot) {
  // google/protobuf/timestamp.proto is not on disk: protobufjs ships the well-known types
  // built in (protobufjs/src/common.js) and resolves the import to them.
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [protoRoot],
    keepCase: true, // proto field names (account_id), as in `riskgate check --json`
    longs: String, // uint64 (compute_ns, market_version) as decimal strings
    enums: String, // enum values as names (REJECT_REASON_INSUFFICIENT_MARGIN)
    defaults: true, // every field present, zero values included
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition);
  return pkg.riskgate.v1.RiskGate;
}

function unary(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// Drop proto-loader's bookkeeping keys for proto3 `optional` fields ("_price": "price").
function clean(value) {
  if (Array.isArray(value)) return value.map(clean);
  if (value && typeof value === "object") {
    const out = {};
    for (const [key, v] of Object.entries(value)) {
      if (!key.startsWith("_")) out[key] = clean(v);
    }
    return out;
  }
  return value;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`check_order: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  const RiskGate = loadService(opts.protoRoot);
  const client = new RiskGate(opts.target, grpc.credentials.createInsecure());
  try {
    const account = await unary(
      client, "GetAccount", { account_id: opts.order.account_id }, opts.timeoutMs,
    );
    const decision = await unary(client, "CheckOrder", { order: opts.order }, opts.timeoutMs);
    const out = clean(decision);
    out.account_before = {
      account_id: account.account_id,
      trading_state: account.trading_state,
      margin_status: account.margin_status,
      equity_usd: account.equity_usd,
      initial_margin_usd: account.initial_margin_usd,
      maintenance_margin_usd: account.maintenance_margin_usd,
      working_orders: account.working_orders.length,
      market_version: account.market_version,
    };
    process.stdout.write(JSON.stringify(out) + "\n");
    return decision.accepted ? 0 : 1;
  } catch (err) {
    const code = err && err.code !== undefined ? grpc.status[err.code] || String(err.code) : "ERROR";
    const details = (err && (err.details || err.message)) || String(err);
    process.stderr.write(`check_order: ${code}: ${details} (target ${opts.target})\n`);
    return 2;
  } finally {
    client.close();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`check_order: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 2;
  },
);
