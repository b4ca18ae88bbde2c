// A scripted stand-in for an LLM provider, for tests that need faults on demand.
//
// The server listens on 127.0.0.1 only and serves:
//   POST .../chat/completions   OpenAI chat completions (any path with that ending)
//   POST .../messages           Anthropic Messages API (any path with that ending)
//   GET  /health                {"status":"ok"}
//   /__script, /__reset, /__requests, /__stats   the control API for browser and workerd tests
//   other paths                 static files when staticRoot or staticRoutes is set, else 404 JSON
//
// The first matching rule, or else the default action, responds to each API
// request. Actions are plain JSON-serializable objects, so the control API
// accepts the same scripts as the in-process script() method, without functions:
//   { status, headers, body, delayMs }                      one complete response
//   { status, headers, chunks, chunkDelayMs, delayMs, then } a chunked response;
//       then is "end" (default), "stall" (keep the socket open) or "reset"
//   { stall: "before-headers", delayMs }                    never answer
//   { reset: true, delayMs }                                destroy the socket, no response
// A chunk is a string (UTF-8), { data }, { bytes: [...] } or { base64 }, each
// with an optional delayMs. A streamed helper's chunks are a plain array, so a
// test can slice it, for example to stall after the first delta.
//
// Rules are `{ match?, times?, respond }`, checked in the order added. `match`
// is a function of the record or an object whose keys must all hold:
// `contains` (text in the request body), `path` (exact path) and `nth`
// (1-based request number). `respond` is an action, an array of actions used
// in turn (the last one repeats), or `(record, ctx) => action`, where
// ctx.index counts earlier requests taken by the same rule and ctx.inFlight
// counts API requests in flight, this one included.
//
// Each API request gets a record: seq, method, path, url, headers (lowercase
// names), body (parsed JSON, else the raw string), bodyText, and times in ms
// since the server started (see now()): receivedAt, respondedAt (headers
// sent), finishedAt (response ended), clientClosedAt (the client closed the
// connection before the response ended) and closedAt (the request stopped
// counting as in flight). outcome is null while the request is in progress,
// then "completed", "client-closed", "reset" or "stalled". A stalled request
// whose client later closes becomes "client-closed". ruleIndex is null for the
// default action, and error holds the message when a respond function throws.
// OPTIONS, /health, static files and the control API make no records.
//
// Every response, including errors, 404s and OPTIONS preflights, carries CORS
// headers and exposes the retry and rate-limit headers that browsers hide from
// pages by default.
//
// CLI: node tests/support/scripted-server.mjs [--port N] [--static DIR] [--route PREFIX=DIR]...
// prints "READY http://127.0.0.1:PORT" and serves until SIGINT or SIGTERM.

import { createReadStream, realpathSync } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";

const HOST = "127.0.0.1";
const KEEP_ALIVE_TIMEOUT_MS = 1_000;
const MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024;

const EXPOSED_HEADERS = [
  "retry-after",
  "retry-after-ms",
  "x-ratelimit-limit-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
  "anthropic-ratelimit-requests-limit",
  "anthropic-ratelimit-requests-remaining",
  "anthropic-ratelimit-requests-reset",
  "anthropic-ratelimit-tokens-limit",
  "anthropic-ratelimit-tokens-remaining",
  "anthropic-ratelimit-tokens-reset",
  "x-request-id",
  "request-id",
  "content-length",
  "content-type",
];

const CONTENT_TYPES = {
  ".wasm": "application/wasm",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".cjs": "text/javascript; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

const MATCH_KEYS = new Set(["contains", "path", "nth"]);
const RULE_KEYS = new Set(["match", "times", "respond"]);

// ---------------------------------------------------------------------------
// Action helpers
// ---------------------------------------------------------------------------

/** Counts whitespace-separated words, a stand-in for a token count. */
function estimateTokens(text) {
  if (text == null || text === "") return 0;
  return text.split(/\s+/).filter(Boolean).length || 1;
}

/** Splits text into stream deltas: an explicit array, n even pieces, or words with their trailing space. */
function splitPieces(text, pieces) {
  if (Array.isArray(pieces)) return pieces.map(String);
  const source = text ?? "";
  if (source === "") return [];
  if (Number.isInteger(pieces) && pieces > 0) {
    const codePoints = Array.from(source);
    const size = Math.ceil(codePoints.length / pieces);
    const parts = [];
    for (let i = 0; i < codePoints.length; i += size) parts.push(codePoints.slice(i, i + size).join(""));
    return parts;
  }
  return source.match(/\s*\S+\s*|\s+/g);
}

function sseData(value) {
  return `data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`;
}

function sseEvent(type, value) {
  return `event: ${type}\ndata: ${JSON.stringify(value)}\n\n`;
}

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };

/** Builds a 200 OpenAI `chat.completion` action. A null text gives `content: null`. */
export function openaiOk(text, { finishReason = "stop", usage, model = "scripted", delayMs = 0, headers = {} } = {}) {
  const completionTokens = estimateTokens(text);
  const body = {
    id: "chatcmpl-scripted",
    object: "chat.completion",
    created: 1_700_000_000,
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: text },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
  };
  if (usage !== null) {
    body.usage = usage ?? { prompt_tokens: 9, completion_tokens: completionTokens, total_tokens: 9 + completionTokens };
  }
  return { status: 200, headers: { ...headers }, body, delayMs };
}

/** Builds a 200 Anthropic Messages action. An empty or null text gives `content: []`. */
export function anthropicOk(text, { stopReason = "end_turn", usage, model = "scripted", delayMs = 0, headers = {} } = {}) {
  const body = {
    id: "msg_scripted",
    type: "message",
    role: "assistant",
    model,
    content: text == null || text === "" ? [] : [{ type: "text", text }],
    stop_reason: stopReason,
    stop_sequence: null,
    usage: usage ?? { input_tokens: 9, output_tokens: estimateTokens(text) },
  };
  return { status: 200, headers: { ...headers }, body, delayMs };
}

/**
 * Builds an OpenAI streamed reply: one `chat.completion.chunk` SSE event per
 * chunk, a usage-only chunk with `choices: []` when includeUsage, then `data: [DONE]`.
 */
export function openaiStream(
  text,
  {
    pieces,
    finishReason = "stop",
    usage,
    includeUsage = true,
    firstChunkEmptyChoices = false,
    model = "scripted",
    chunkDelayMs = 0,
    delayMs = 0,
    then = "end",
    headers = {},
  } = {},
) {
  const deltas = splitPieces(text, pieces);
  const base = { id: "chatcmpl-scripted", object: "chat.completion.chunk", created: 1_700_000_000, model };
  const chunks = [];
  if (firstChunkEmptyChoices) {
    // Azure OpenAI sends this content-filter chunk first, with no choices.
    chunks.push(
      sseData({
        id: "",
        object: "",
        created: 0,
        model: "",
        choices: [],
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
      }),
    );
  }
  chunks.push(
    sseData({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }),
  );
  for (const piece of deltas) {
    chunks.push(sseData({ ...base, choices: [{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }] }));
  }
  chunks.push(sseData({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }] }));
  if (includeUsage) {
    const completionTokens = estimateTokens(deltas.join(""));
    const usageBody = usage ?? { prompt_tokens: 9, completion_tokens: completionTokens, total_tokens: 9 + completionTokens };
    chunks.push(sseData({ ...base, choices: [], usage: usageBody }));
  }
  chunks.push(sseData("[DONE]"));
  return { status: 200, headers: { ...SSE_HEADERS, ...headers }, chunks, chunkDelayMs, delayMs, then };
}

/**
 * Builds an Anthropic streamed reply with the Messages API event sequence.
 * With errorAfter n, an `error` event replaces everything after the n-th delta.
 */
export function anthropicStream(
  text,
  {
    pieces,
    stopReason = "end_turn",
    usage,
    model = "scripted",
    chunkDelayMs = 0,
    delayMs = 0,
    errorAfter,
    errorType = "overloaded_error",
    errorMessage,
    then = "end",
    headers = {},
  } = {},
) {
  const deltas = splitPieces(text, pieces);
  const inputTokens = usage?.input_tokens ?? 9;
  const outputTokens = usage?.output_tokens ?? estimateTokens(deltas.join(""));
  const chunks = [
    sseEvent("message_start", {
      type: "message_start",
      message: {
        id: "msg_scripted",
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: inputTokens, output_tokens: 1 },
      },
    }),
    sseEvent("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    sseEvent("ping", { type: "ping" }),
  ];
  const errorEvent = sseEvent("error", {
    type: "error",
    error: { type: errorType, message: errorMessage ?? (errorType === "overloaded_error" ? "Overloaded" : errorType) },
  });
  for (const [index, piece] of deltas.entries()) {
    if (errorAfter !== undefined && index === errorAfter) {
      chunks.push(errorEvent);
      return { status: 200, headers: { ...SSE_HEADERS, ...headers }, chunks, chunkDelayMs, delayMs, then };
    }
    chunks.push(
      sseEvent("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: piece } }),
    );
  }
  if (errorAfter !== undefined && errorAfter >= deltas.length) {
    chunks.push(errorEvent);
    return { status: 200, headers: { ...SSE_HEADERS, ...headers }, chunks, chunkDelayMs, delayMs, then };
  }
  chunks.push(
    sseEvent("content_block_stop", { type: "content_block_stop", index: 0 }),
    sseEvent("message_delta", {
      type: "message_delta",
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: outputTokens },
    }),
    sseEvent("message_stop", { type: "message_stop" }),
  );
  return { status: 200, headers: { ...SSE_HEADERS, ...headers }, chunks, chunkDelayMs, delayMs, then };
}

/** Returns the bytes of one chunk in any of its forms. */
function chunkBytes(chunk) {
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  if (chunk && typeof chunk === "object") {
    if (typeof chunk.data === "string") return Buffer.from(chunk.data, "utf8");
    if (Array.isArray(chunk.bytes)) return Buffer.from(chunk.bytes);
    if (typeof chunk.base64 === "string") return Buffer.from(chunk.base64, "base64");
  }
  throw new TypeError(`invalid chunk ${JSON.stringify(chunk)}: expected a string, { data }, { bytes } or { base64 }`);
}

/** Returns an action's whole response body as bytes, and the headers it goes with. */
function actionBytes(action) {
  if (Array.isArray(action.chunks)) {
    return { bytes: Buffer.concat(action.chunks.map(chunkBytes)), headers: { ...action.headers } };
  }
  const { text, contentType } = encodeBody(action.body, action.headers);
  const headers = { ...action.headers };
  if (contentType && !hasHeader(headers, "content-type")) headers["content-type"] = contentType;
  return { bytes: Buffer.from(text, "utf8"), headers };
}

function cutIntoChunks(action, offsets) {
  const { bytes, headers } = actionBytes(action);
  const chunks = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    if (offset <= start || offset > bytes.length) continue;
    chunks.push({ base64: bytes.subarray(start, offset).toString("base64") });
    start = offset;
  }
  const { body: _body, chunks: _chunks, ...rest } = action;
  return { ...rest, headers, chunks };
}

/**
 * Returns a copy of a streamed or plain action whose body is re-cut into
 * chunks of n bytes. Cuts may fall inside a multi-byte character. Per-chunk
 * delays of the original are dropped, and chunkDelayMs applies between the new chunks.
 */
export function cutEvery(action, n) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`cutEvery: n must be a positive integer, got ${n}`);
  const { bytes } = actionBytes(action);
  const offsets = [];
  for (let offset = n; offset < bytes.length; offset += n) offsets.push(offset);
  return cutIntoChunks(action, offsets);
}

/** Returns a copy of a streamed or plain action whose body is cut at the given byte offsets. */
export function cutAt(action, offsets) {
  if (!Array.isArray(offsets) || offsets.some((offset) => !Number.isInteger(offset) || offset < 0)) {
    throw new TypeError(`cutAt: offsets must be an array of non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  return cutIntoChunks(action, [...new Set(offsets)].sort((a, b) => a - b));
}

/** Builds an OpenAI-style error action: `{ error: { message, type, param, code } }`. */
export function openaiError(status, message, { type, code, param = null, headers = {} } = {}) {
  let defaultType = "invalid_request_error";
  let defaultCode = null;
  if (status === 429) {
    defaultType = "requests";
    defaultCode = "rate_limit_exceeded";
  } else if (status >= 500) {
    defaultType = "server_error";
  }
  return {
    status,
    headers: { ...headers },
    body: { error: { message, type: type ?? defaultType, param, code: code === undefined ? defaultCode : code } },
  };
}

/** Builds an Anthropic-style error action: `{ type: "error", error: { type, message } }`. */
export function anthropicError(status, type, message, { headers = {} } = {}) {
  return { status, headers: { ...headers }, body: { type: "error", error: { type, message } } };
}

/** Builds the HTML 502 page that Cloudflare sends in front of an API. */
export function html502() {
  return {
    status: 502,
    headers: { "content-type": "text/html" },
    body:
      "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>" +
      "<hr><center>cloudflare</center></body></html>",
  };
}

/**
 * Parses a Server-Sent Events body into `{ event, data }` records in order.
 * `event` is null when the block has no event line. `data` is parsed JSON,
 * or the raw string (for example "[DONE]") when it is not JSON.
 */
export function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === "") continue;
    let event = null;
    const dataLines = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice("event:".length).trim();
      else if (line.startsWith("data:")) dataLines.push(line.slice("data:".length).replace(/^ /, ""));
    }
    const raw = dataLines.join("\n");
    let data = raw;
    try {
      data = JSON.parse(raw);
    } catch {
      // Non-JSON data such as "[DONE]" stays a string.
    }
    events.push({ event, data });
  }
  return events;
}

// ---------------------------------------------------------------------------
// Validation of rules and actions
// ---------------------------------------------------------------------------

function hasHeader(headers, name) {
  return Object.keys(headers ?? {}).some((key) => key.toLowerCase() === name);
}

/** Serializes a body action's body: strings as they are, anything else as JSON. */
function encodeBody(body, headers) {
  if (body === undefined || body === null) return { text: "", contentType: null };
  if (typeof body === "string") return { text: body, contentType: null };
  const contentType = hasHeader(headers, "content-type") ? null : "application/json";
  return { text: JSON.stringify(body), contentType };
}

function validateAction(action, where) {
  if (action === null || typeof action !== "object" || Array.isArray(action)) {
    throw new TypeError(`${where} must be an action object, got ${JSON.stringify(action)}`);
  }
  if (action.delayMs !== undefined && !(Number.isFinite(action.delayMs) && action.delayMs >= 0)) {
    throw new TypeError(`${where}.delayMs must be a non-negative number, got ${action.delayMs}`);
  }
  if (action.reset !== undefined && action.reset !== true) {
    throw new TypeError(`${where}.reset must be true when present`);
  }
  if (action.stall !== undefined && action.stall !== "before-headers") {
    throw new TypeError(`${where}.stall must be "before-headers", got ${JSON.stringify(action.stall)}`);
  }
  if (action.status !== undefined && !(Number.isInteger(action.status) && action.status >= 200 && action.status <= 599)) {
    throw new TypeError(`${where}.status must be an integer HTTP status in 200..599, got ${action.status}`);
  }
  if (action.headers !== undefined && (action.headers === null || typeof action.headers !== "object")) {
    throw new TypeError(`${where}.headers must be an object`);
  }
  if (action.chunks !== undefined) {
    if (!Array.isArray(action.chunks)) throw new TypeError(`${where}.chunks must be an array`);
    action.chunks.forEach((chunk, index) => {
      try {
        chunkBytes(chunk);
      } catch (error) {
        throw new TypeError(`${where}.chunks[${index}]: ${error.message}`);
      }
    });
    if (action.body !== undefined) throw new TypeError(`${where} has both body and chunks; use one`);
  }
  if (action.then !== undefined && !["end", "stall", "reset"].includes(action.then)) {
    throw new TypeError(`${where}.then must be "end", "stall" or "reset", got ${JSON.stringify(action.then)}`);
  }
}

function validateResponder(respond, where) {
  if (typeof respond === "function") return;
  if (Array.isArray(respond)) {
    if (respond.length === 0) throw new TypeError(`${where} must not be an empty array`);
    respond.forEach((action, index) => validateAction(action, `${where}[${index}]`));
    return;
  }
  validateAction(respond, where);
}

function validateRule(rule, where, { jsonOnly = false } = {}) {
  if (rule === null || typeof rule !== "object") throw new TypeError(`${where} must be an object`);
  for (const key of Object.keys(rule)) {
    if (!RULE_KEYS.has(key)) throw new TypeError(`${where}.${key} is not a rule key (expected match, times, respond)`);
  }
  const { match, times, respond } = rule;
  if (match !== undefined && typeof match !== "function") {
    if (match === null || typeof match !== "object") throw new TypeError(`${where}.match must be a function or an object`);
    for (const key of Object.keys(match)) {
      if (!MATCH_KEYS.has(key)) throw new TypeError(`${where}.match.${key} is not supported (expected contains, path, nth)`);
    }
    if (match.contains !== undefined && typeof match.contains !== "string") {
      throw new TypeError(`${where}.match.contains must be a string`);
    }
    if (match.path !== undefined && typeof match.path !== "string") throw new TypeError(`${where}.match.path must be a string`);
    if (match.nth !== undefined && !(Number.isInteger(match.nth) && match.nth >= 1)) {
      throw new TypeError(`${where}.match.nth must be a positive integer (1-based)`);
    }
  }
  if (jsonOnly && (typeof match === "function" || typeof respond === "function")) {
    throw new TypeError(`${where}: functions cannot be sent over the control API`);
  }
  if (times !== undefined && !(Number.isInteger(times) && times >= 0)) {
    throw new TypeError(`${where}.times must be a non-negative integer`);
  }
  if (respond === undefined) throw new TypeError(`${where}.respond is missing`);
  validateResponder(respond, `${where}.respond`);
}

function ruleMatches(rule, record) {
  const { match } = rule;
  if (match === undefined) return true;
  if (typeof match === "function") return Boolean(match(record));
  if (match.nth !== undefined && record.seq !== match.nth) return false;
  if (match.path !== undefined && record.path !== match.path) return false;
  if (match.contains !== undefined) {
    const normalized = typeof record.body === "string" ? record.body : JSON.stringify(record.body);
    if (!record.bodyText.includes(match.contains) && !normalized.includes(match.contains)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Request handling helpers
// ---------------------------------------------------------------------------

/** Resolves after ms, or early with false when the signal aborts. */
function sleep(ms, signal) {
  if (signal.aborted) return Promise.resolve(false);
  if (!ms) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      resolve(false);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function corsHeaders(req, extraExposed = []) {
  const requested = req.headers["access-control-request-headers"];
  const headers = {
    "access-control-allow-origin": req.headers.origin ?? "*",
    "access-control-allow-headers": requested ? `*, ${requested}` : "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-expose-headers": [...new Set([...EXPOSED_HEADERS, ...extraExposed])].join(", "),
    "access-control-max-age": "600",
    vary: "Origin",
  };
  // Chrome's Private Network Access preflight requires this header before a
  // page may reach a loopback address.
  if (req.headers["access-control-request-private-network"]) headers["access-control-allow-private-network"] = "true";
  return headers;
}

function sendJson(req, res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    ...corsHeaders(req),
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on("data", (part) => {
      size += part.length;
      if (size > MAX_REQUEST_BODY_BYTES) {
        reject(new Error(`request body exceeds ${MAX_REQUEST_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      parts.push(part);
    });
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

function parseBody(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function apiRoute(method, pathname) {
  if (method !== "POST") return null;
  if (pathname.endsWith("/chat/completions")) return "openai";
  if (pathname.endsWith("/messages")) return "anthropic";
  return null;
}

/** Maps a URL path onto a file under root, or null when it leaves root or is malformed. */
function resolveStaticPath(root, relativeUrlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(relativeUrlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0")) return null;
  const base = path.resolve(root);
  const target = path.resolve(base, `.${path.posix.sep}${decoded}`);
  if (target !== base && !target.startsWith(base + path.sep)) return null;
  return target;
}

async function serveStatic(req, res, filePath) {
  let info;
  try {
    info = await stat(filePath);
    if (info.isDirectory()) {
      filePath = path.join(filePath, "index.html");
      info = await stat(filePath);
    }
  } catch {
    sendJson(req, res, 404, { error: { message: `not found: ${req.url}`, type: "not_found" } });
    return;
  }
  if (!info.isFile()) {
    sendJson(req, res, 404, { error: { message: `not found: ${req.url}`, type: "not_found" } });
    return;
  }
  const contentType = CONTENT_TYPES[path.extname(filePath).toLowerCase()] ?? "application/octet-stream";
  res.writeHead(200, {
    ...corsHeaders(req),
    "content-type": contentType,
    "content-length": info.size,
    // Browser tests must always load the latest build.
    "cache-control": "no-store",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  createReadStream(filePath)
    .on("error", () => res.destroy())
    .pipe(res);
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/**
 * Starts a scripted provider server on 127.0.0.1.
 *
 * @param {object} [options]
 * @param {number} [options.port=0] TCP port, where 0 picks a free one
 * @param {string|null} [options.staticRoot] directory served for non-API paths
 * @param {Record<string, string>} [options.staticRoutes] URL prefix → directory, checked before staticRoot
 */
export async function startScriptedServer({ port = 0, staticRoot = null, staticRoutes = {} } = {}) {
  const startedAt = performance.now();
  const now = () => performance.now() - startedAt;
  const routes = Object.entries(staticRoutes)
    .map(([prefix, dir]) => [prefix.endsWith("/") ? prefix : `${prefix}/`, dir])
    .sort((a, b) => b[0].length - a[0].length);

  let rules = [];
  let defaultResponder = null;
  let defaultUses = 0;
  let records = [];
  // The epoch changes on reset(), so requests from before a reset no longer
  // update the counters of the new epoch.
  let epoch = 0;
  const counters = { count: 0, maxInFlight: 0, clientCloses: 0, maxOpenConnections: 0 };
  let inFlight = 0;
  const sockets = new Set();
  const pending = new Set();
  let closing = null;

  const httpServer = http.createServer({ noDelay: true });
  httpServer.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // A stalled response must stay open until the client or close() ends it.
  httpServer.requestTimeout = 0;
  httpServer.headersTimeout = 10_000;

  httpServer.on("connection", (socket) => {
    sockets.add(socket);
    counters.maxOpenConnections = Math.max(counters.maxOpenConnections, sockets.size);
    socket.on("close", () => sockets.delete(socket));
  });
  httpServer.on("clientError", (_error, socket) => socket.destroy());

  const server = {
    url: "",
    port: 0,
    httpServer,
    now,
    script(newRules) {
      const list = Array.isArray(newRules) ? newRules : [newRules];
      list.forEach((rule, index) => validateRule(rule, `rules[${index}]`));
      for (const rule of list) rules.push({ ...rule, used: 0 });
      return server;
    },
    setDefault(responder) {
      if (responder === null || responder === undefined) {
        defaultResponder = null;
      } else {
        validateResponder(responder, "default");
        defaultResponder = responder;
      }
      defaultUses = 0;
      return server;
    },
    reset() {
      rules = [];
      records = [];
      epoch += 1;
      defaultUses = 0;
      counters.count = 0;
      counters.clientCloses = 0;
      counters.maxInFlight = inFlight;
      counters.maxOpenConnections = sockets.size;
      return server;
    },
    requests() {
      return records.slice();
    },
    stats() {
      return {
        count: counters.count,
        inFlight,
        maxInFlight: counters.maxInFlight,
        openConnections: sockets.size,
        maxOpenConnections: counters.maxOpenConnections,
        clientCloses: counters.clientCloses,
      };
    },
    /** Resolves with pred's truthy result. A pred that throws counts as false until the timeout. */
    waitFor(pred, { timeoutMs = 5_000 } = {}) {
      const deadline = performance.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        let lastError = null;
        const poll = () => {
          try {
            const value = pred(server);
            if (value) {
              resolve(value);
              return;
            }
          } catch (error) {
            lastError = error;
          }
          if (performance.now() >= deadline) {
            const source = String(pred).replace(/\s+/g, " ").slice(0, 200);
            const cause = lastError ? `; the predicate last threw: ${lastError.message}` : "";
            reject(
              new Error(
                `waitFor timed out after ${timeoutMs} ms waiting for ${source}` +
                  `; stats: ${JSON.stringify(server.stats())}${cause}`,
              ),
            );
            return;
          }
          setTimeout(poll, 5);
        };
        poll();
      });
    },
    close() {
      // The server's close callback can run before the destroyed sockets emit
      // "close", so close() also waits for every socket.
      closing ??= (async () => {
        for (const entry of pending) entry.abortByServer();
        const socketsClosed = [...sockets].map((socket) => new Promise((resolve) => socket.once("close", resolve)));
        const serverClosed = new Promise((resolve) => httpServer.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        httpServer.closeAllConnections?.();
        await Promise.all([serverClosed, ...socketsClosed]);
      })();
      return closing;
    },
  };

  /** Picks the responder for a record: the first matching rule with uses left, else the default. */
  function selectResponder(record) {
    for (const [index, rule] of rules.entries()) {
      if (rule.times !== undefined && rule.used >= rule.times) continue;
      if (!ruleMatches(rule, record)) continue;
      const use = rule.used;
      rule.used += 1;
      return { ruleIndex: index, responder: rule.respond, use };
    }
    const use = defaultUses;
    defaultUses += 1;
    return { ruleIndex: null, responder: defaultResponder, use };
  }

  async function resolveAction(responder, record, use, route) {
    if (responder === null) return route === "openai" ? openaiOk("ok") : anthropicOk("ok");
    if (Array.isArray(responder)) return responder[Math.min(use, responder.length - 1)];
    if (typeof responder === "function") {
      const action = await responder(record, { index: use, inFlight, server });
      validateAction(action, `the action returned for request ${record.seq}`);
      return action;
    }
    return responder;
  }

  async function handleApi(req, res, pathname, route) {
    const bodyText = await readBody(req);
    const recordEpoch = epoch;
    inFlight += 1;
    counters.count += 1;
    counters.maxInFlight = Math.max(counters.maxInFlight, inFlight);
    const record = {
      seq: counters.count,
      method: req.method,
      path: pathname,
      url: req.url,
      headers: { ...req.headers },
      body: parseBody(bodyText),
      bodyText,
      receivedAt: now(),
      respondedAt: null,
      finishedAt: null,
      closedAt: null,
      inFlightAtArrival: inFlight,
      clientClosedAt: null,
      outcome: null,
      ruleIndex: null,
      error: null,
    };
    records.push(record);

    const controller = new AbortController();
    const { signal } = controller;
    let serverEnded = false;
    let settled = false;
    const entry = {
      abortByServer() {
        serverEnded = true;
        controller.abort();
      },
    };
    pending.add(entry);

    const socket = req.socket;
    const settle = () => {
      if (settled) return;
      settled = true;
      inFlight -= 1;
      pending.delete(entry);
      record.closedAt = now();
      // A keep-alive socket carries many requests, so each request removes its own listener.
      socket.off("close", onClose);
    };
    res.on("error", () => {});
    res.on("finish", () => {
      record.finishedAt = now();
      record.outcome = "completed";
      settle();
    });
    const onClose = () => {
      if (settled) return;
      controller.abort();
      if (!serverEnded && !res.writableFinished) {
        record.clientClosedAt = now();
        record.outcome = "client-closed";
        if (recordEpoch === epoch) counters.clientCloses += 1;
      }
      settle();
    };
    res.on("close", onClose);
    socket.on("close", onClose);

    let action;
    try {
      const selected = selectResponder(record);
      record.ruleIndex = selected.ruleIndex;
      action = await resolveAction(selected.responder, record, selected.use, route);
    } catch (error) {
      record.error = error.message;
      console.error(`scripted-server: respond for request ${record.seq} (${pathname}) failed: ${error.message}`);
      if (!signal.aborted) {
        sendJson(req, res, 500, { error: { message: `scripted-server: ${error.message}`, type: "script_error" } });
      }
      return;
    }
    await runAction(req, res, action, record, signal, () => {
      serverEnded = true;
    });
  }

  async function runAction(req, res, action, record, signal, markServerEnded) {
    if (!(await sleep(action.delayMs ?? 0, signal))) return;

    if (action.reset) {
      markServerEnded();
      record.outcome = "reset";
      destroySocket(req.socket);
      return;
    }
    if (action.stall === "before-headers") {
      record.outcome = "stalled";
      return;
    }

    const status = action.status ?? 200;
    const actionHeaders = action.headers ?? {};
    const exposed = Object.keys(actionHeaders).map((name) => name.toLowerCase());
    const headers = { ...corsHeaders(req, exposed) };

    if (!Array.isArray(action.chunks)) {
      const { text, contentType } = encodeBody(action.body, actionHeaders);
      if (contentType) headers["content-type"] = contentType;
      assignLowercase(headers, actionHeaders);
      headers["content-length"] = Buffer.byteLength(text);
      res.writeHead(status, headers);
      record.respondedAt = now();
      res.end(text);
      return;
    }

    headers["content-type"] = "text/event-stream; charset=utf-8";
    assignLowercase(headers, actionHeaders);
    res.writeHead(status, headers);
    res.flushHeaders();
    record.respondedAt = now();

    for (const [index, chunk] of action.chunks.entries()) {
      const explicitDelay = typeof chunk === "object" && chunk !== null ? chunk.delayMs : undefined;
      const wait = explicitDelay ?? (index === 0 ? 0 : action.chunkDelayMs ?? 0);
      if (!(await sleep(wait, signal))) return;
      if (res.destroyed) return;
      res.write(chunkBytes(chunk));
    }

    const then = action.then ?? "end";
    if (then === "end") {
      res.end();
    } else if (then === "stall") {
      record.outcome = "stalled";
    } else {
      markServerEnded();
      record.outcome = "reset";
      destroySocket(req.socket);
    }
  }

  function handleControl(req, res, pathname) {
    if (pathname === "/__requests" && req.method === "GET") {
      sendJson(req, res, 200, records);
      return;
    }
    if (pathname === "/__stats" && req.method === "GET") {
      sendJson(req, res, 200, server.stats());
      return;
    }
    if (pathname === "/__reset" && req.method === "POST") {
      readBody(req)
        .then(() => {
          server.reset();
          sendJson(req, res, 200, { ok: true });
        })
        .catch((error) => {
          console.error(`scripted-server: reading the ${pathname} body failed: ${error.message}`);
          res.destroy();
        });
      return;
    }
    if (pathname === "/__script" && req.method === "POST") {
      readBody(req).then(
        (text) => {
          try {
            applyScriptPayload(text);
          } catch (error) {
            sendJson(req, res, 400, { error: { message: error.message, type: "invalid_script" } });
            return;
          }
          sendJson(req, res, 200, { ok: true, rules: rules.length });
        },
        (error) => {
          console.error(`scripted-server: reading the ${pathname} body failed: ${error.message}`);
          res.destroy();
        },
      );
      return;
    }
    sendJson(req, res, 405, { error: { message: `${req.method} ${pathname} is not supported`, type: "method_not_allowed" } });
  }

  /** Validates a POST /__script body and adds its rules and default action. */
  function applyScriptPayload(text) {
    const payload = JSON.parse(text);
    if (payload === null || typeof payload !== "object") throw new TypeError("body must be a JSON object");
    const newRules = payload.rules ?? [];
    if (!Array.isArray(newRules)) throw new TypeError("rules must be an array");
    newRules.forEach((rule, index) => validateRule(rule, `rules[${index}]`, { jsonOnly: true }));
    if (payload.default !== undefined) server.setDefault(payload.default);
    server.script(newRules);
  }

  async function handleOther(req, res, pathname) {
    if (req.method === "GET" || req.method === "HEAD") {
      for (const [prefix, dir] of routes) {
        if (pathname.startsWith(prefix)) {
          const filePath = resolveStaticPath(dir, pathname.slice(prefix.length));
          if (filePath) await serveStatic(req, res, filePath);
          else sendJson(req, res, 404, { error: { message: `not found: ${req.url}`, type: "not_found" } });
          return;
        }
      }
      if (staticRoot) {
        const filePath = resolveStaticPath(staticRoot, pathname);
        if (filePath) await serveStatic(req, res, filePath);
        else sendJson(req, res, 404, { error: { message: `not found: ${req.url}`, type: "not_found" } });
        return;
      }
    }
    sendJson(req, res, 404, { error: { message: `not found: ${req.method} ${req.url}`, type: "not_found" } });
  }

  httpServer.on("request", (req, res) => {
    const pathname = new URL(req.url, "http://127.0.0.1").pathname;
    const fail = (error) => {
      console.error(`scripted-server: ${req.method} ${req.url} failed: ${error.message}`);
      if (!res.headersSent && !res.destroyed) {
        sendJson(req, res, 500, { error: { message: `scripted-server: ${error.message}`, type: "server_error" } });
      }
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, corsHeaders(req));
      res.end();
      return;
    }
    if (pathname.startsWith("/__")) {
      handleControl(req, res, pathname);
      return;
    }
    if (pathname === "/health" && req.method === "GET") {
      sendJson(req, res, 200, { status: "ok" });
      return;
    }
    const route = apiRoute(req.method, pathname);
    if (route) {
      handleApi(req, res, pathname, route).catch(fail);
      return;
    }
    handleOther(req, res, pathname).catch(fail);
  });

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, HOST, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
  server.port = httpServer.address().port;
  server.url = `http://${HOST}:${server.port}`;
  return server;
}

/** Copies headers into target under lowercase names, replacing any existing value. */
function assignLowercase(target, headers) {
  for (const [name, value] of Object.entries(headers)) target[name.toLowerCase()] = value;
}

/** Destroys a socket with a TCP RST where Node supports it, so the client sees ECONNRESET. */
function destroySocket(socket) {
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket.destroy();
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

function parseCliArguments(argv) {
  const usage =
    "usage: node tests/support/scripted-server.mjs [--port N] [--static DIR] [--route PREFIX=DIR]...";
  const options = { port: 0, staticRoot: null, staticRoutes: {} };
  for (let i = 0; i < argv.length; i += 1) {
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${argv[i]}\n${usage}`);
    if (argv[i] === "--port") {
      options.port = Number(value);
      if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
        throw new Error(`--port must be an integer in 0..65535, got ${value}`);
      }
    } else if (argv[i] === "--static") {
      options.staticRoot = path.resolve(value);
    } else if (argv[i] === "--route") {
      const separator = value.indexOf("=");
      if (separator < 1) throw new Error(`--route must look like PREFIX=DIR, got ${value}`);
      options.staticRoutes[value.slice(0, separator)] = path.resolve(value.slice(separator + 1));
    } else {
      throw new Error(`unknown argument: ${argv[i]}\n${usage}`);
    }
    i += 1;
  }
  return options;
}

async function main() {
  const server = await startScriptedServer(parseCliArguments(process.argv.slice(2)));
  console.log(`READY ${server.url}`);
  const shutdown = async () => {
    await server.close();
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

const invokedPath = process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : null;
if (invokedPath === import.meta.url) {
  main().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
