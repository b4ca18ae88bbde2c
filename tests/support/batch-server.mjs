// A scripted stand-in for the two provider batch APIs, for tests of the batch mode.
//
// The server listens on 127.0.0.1 only and serves, under any prefix (a provider's
// baseURL is `${server.url}/v1`):
//   OpenAI Batch API
//     POST /v1/files                        multipart/form-data: purpose=batch, file (JSONL)
//     GET  /v1/files/{id}/content           the file's bytes (input, output or error file)
//     POST /v1/batches                      { input_file_id, endpoint, completion_window, metadata? }
//     GET  /v1/batches/{id}
//     POST /v1/batches/{id}/cancel
//   Anthropic Message Batches
//     POST /v1/messages/batches             { requests: [{ custom_id, params }] }
//     GET  /v1/messages/batches/{id}
//     POST /v1/messages/batches/{id}/cancel
//     GET  /v1/messages/batches/{id}/results
//
// Each request line runs against an upstream chat server, by default a scripted
// server (tests/support/scripted-server.mjs) that this server starts and exposes
// as `server.upstream`, so tests script per-line replies, faults and delays with
// its rules. Every forwarded request carries an `x-batch-custom-id` header.
//
// The lifecycle follows the documented states. An OpenAI batch is validating
// (validatingMs), then in_progress while lines run (`concurrency` at a time), then
// finalizing (finalizingMs), then completed. It fails when the input does not
// validate, expires once `expireAfter` lines have run, and after a cancel is
// cancelling until the lines in flight end, then cancelled. An Anthropic batch is
// in_progress, canceling after a cancel, then ended. Output lines use the documented
// shapes: OpenAI `{id, custom_id, response: {status_code, request_id, body}, error}`
// (non-2xx responses and expired or cancelled lines go to the error file), Anthropic
// `{custom_id, result: {type: succeeded | errored | canceled | expired, ...}}`.
//
// Knobs (startBatchServer options, or server.configure() between tests):
//   concurrency, validatingMs, finalizingMs, cancelDelayMs   timing
//   order: "completion" | "input" | "reverse"               order of result lines
//   expireAfter: n            expire after n lines have run
//   rejectLine: (line, n) => { code, message, param } | null   OpenAI validation failure
//   extraLines: [string]      raw lines appended to each output or results file
//   bodyAsString: true        OpenAI response.body as a JSON string (as ogx sends it)
//   apiKey                    when set, requests without it get 401
//   limits: { openai: { maxRequests, maxBytes }, anthropic: { ... } }   rejected above
//
// server.requests() lists the batch API calls: { seq, method, path, headers,
// bodyText, body, multipart }. server.batches() lists the batches with their input
// (`lines`, parsed) and public object (`object`).

import http from "node:http";

import { startScriptedServer } from "./scripted-server.mjs";

const HOST = "127.0.0.1";
const MAX_BODY_BYTES = 300 * 1024 * 1024;
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

const DEFAULTS = {
  concurrency: 8,
  validatingMs: 10,
  finalizingMs: 10,
  cancelDelayMs: 10,
  order: "completion",
  expireAfter: null,
  rejectLine: null,
  extraLines: [],
  bodyAsString: false,
  apiKey: null,
  limits: {
    openai: { maxRequests: 50_000, maxBytes: 200_000_000 },
    anthropic: { maxRequests: 100_000, maxBytes: 256_000_000 },
  },
};

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on("data", (part) => {
      size += part.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body exceeds ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      parts.push(part);
    });
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

function send(res, status, value, contentType = "application/json") {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function openaiError(res, status, message, { type = "invalid_request_error", code = null, param = null } = {}) {
  send(res, status, { error: { message, type, param, code } });
}

function anthropicError(res, status, type, message) {
  send(res, status, { type: "error", error: { type, message } });
}

/** Parses a multipart body with the runtime's own form-data parser. */
async function parseMultipart(contentType, bytes) {
  const form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  const file = form.get("file");
  return {
    purpose: form.get("purpose"),
    file: file && typeof file === "object" ? { name: file.name, type: file.type, text: await file.text() } : null,
    fields: [...form.keys()],
  };
}

function iso(ms) {
  return new Date(ms).toISOString();
}

/**
 * Starts the batch server. Options are the knobs above plus `upstream`, a base
 * URL of a chat server (without /v1) to use instead of a scripted server of its own.
 */
export async function startBatchServer({ upstream, ...options } = {}) {
  const ownUpstream = upstream ? null : await startScriptedServer();
  const upstreamUrl = upstream ?? ownUpstream.url;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let config = { ...DEFAULTS, ...options };
  let records = [];
  let seq = 0;
  let counter = 0;
  const files = new Map();
  const batches = new Map();

  const nextId = (prefix) => {
    counter += 1;
    return `${prefix}${counter.toString(16).padStart(8, "0")}`;
  };

  function storeFile(filename, purpose, text) {
    const id = nextId("file-");
    const object = {
      id,
      object: "file",
      bytes: Buffer.byteLength(text),
      created_at: Math.floor(Date.now() / 1000),
      filename,
      purpose,
      status: "processed",
    };
    files.set(id, { object, text });
    return object;
  }

  /** Sends one line to the upstream chat server; returns { status, body } or { error }. */
  function forward(api, customId, body) {
    const path = api === "openai" ? "/v1/chat/completions" : "/v1/messages";
    const text = JSON.stringify(body);
    const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(text), "x-batch-custom-id": customId };
    if (api === "anthropic") headers["anthropic-version"] = "2023-06-01";
    // node:http with a keep-alive agent: about twice as fast as fetch for the
    // thousands of small requests a large batch makes.
    return new Promise((resolve) => {
      const request = http.request(`${upstreamUrl}${path}`, { method: "POST", headers, agent }, (response) => {
        const parts = [];
        response.on("data", (part) => parts.push(part));
        response.on("end", () => {
          const raw = Buffer.concat(parts).toString("utf8");
          let parsed = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            // A non-JSON error page stays text.
          }
          resolve({ status: response.statusCode, body: parsed, requestId: response.headers["x-request-id"] ?? `req_${customId}` });
        });
        response.on("error", (error) => resolve({ error: error.message }));
      });
      request.on("error", (error) => resolve({ error: error.message }));
      request.end(text);
    });
  }

  /** Runs the lines with `concurrency` workers until all ran, the batch expires or is cancelled. */
  async function runLines(batch) {
    const queue = batch.lines.map((line, index) => ({ line, index }));
    let ran = 0;
    const worker = async () => {
      while (queue.length > 0 && !batch.cancelRequested && !batch.expired) {
        const { line, index } = queue.shift();
        batch.inFlight += 1;
        const result = await forward(batch.api, line.custom_id, batch.api === "openai" ? line.body : line.params);
        batch.inFlight -= 1;
        batch.results.push({ index, customId: line.custom_id, ...result });
        ran += 1;
        if (config.expireAfter !== null && ran >= config.expireAfter) batch.expired = true;
        updateCounts(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, config.concurrency) }, worker));
  }

  function ok(result) {
    return result.error === undefined && result.status >= 200 && result.status < 300;
  }

  function updateCounts(batch) {
    if (batch.api === "openai") {
      const failed = batch.results.filter((r) => !ok(r)).length;
      batch.object.request_counts = { total: batch.lines.length, completed: batch.results.length - failed, failed };
    }
  }

  function ordered(results) {
    const list = [...results];
    if (config.order === "input") list.sort((a, b) => a.index - b.index);
    if (config.order === "reverse") list.sort((a, b) => b.index - a.index);
    return list;
  }

  /** Writes the OpenAI output and error files; lines that never ran get `missingCode`. */
  function finishOpenai(batch, missingCode, missingMessage) {
    const output = [];
    const errors = [];
    for (const r of ordered(batch.results)) {
      const id = `batch_req_${batch.id}_${r.index + 1}`;
      if (r.error !== undefined) {
        errors.push({ id, custom_id: r.customId, response: null, error: { code: "request_failed", message: r.error } });
        continue;
      }
      const body = config.bodyAsString ? JSON.stringify(r.body) : r.body;
      const line = { id, custom_id: r.customId, response: { status_code: r.status, request_id: r.requestId, body }, error: null };
      (ok(r) ? output : errors).push(line);
    }
    const ran = new Set(batch.results.map((r) => r.index));
    batch.lines.forEach((line, index) => {
      if (ran.has(index) || missingCode === null) return;
      errors.push({ id: `batch_req_${batch.id}_${index + 1}`, custom_id: line.custom_id, response: null, error: { code: missingCode, message: missingMessage } });
    });
    const outputLines = [...output.map((l) => JSON.stringify(l)), ...config.extraLines];
    batch.object.output_file_id = storeFile(`${batch.id}_output.jsonl`, "batch_output", outputLines.map((l) => `${l}\n`).join("")).id;
    batch.object.error_file_id = errors.length > 0 ? storeFile(`${batch.id}_error.jsonl`, "batch_output", errors.map((l) => `${JSON.stringify(l)}\n`).join("")).id : null;
    const failed = batch.results.filter((r) => !ok(r)).length + (missingCode === null ? 0 : batch.lines.length - ran.size);
    batch.object.request_counts = { total: batch.lines.length, completed: batch.results.length - batch.results.filter((r) => !ok(r)).length, failed };
  }

  function finishAnthropic(batch, missingType) {
    const results = [];
    const counts = { processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 0 };
    for (const r of ordered(batch.results)) {
      if (ok(r)) {
        results.push({ custom_id: r.customId, result: { type: "succeeded", message: r.body } });
        counts.succeeded += 1;
        continue;
      }
      const inner =
        r.error !== undefined
          ? { type: "api_error", message: r.error }
          : { type: r.body?.error?.type ?? "api_error", message: r.body?.error?.message ?? String(r.body) };
      results.push({ custom_id: r.customId, result: { type: "errored", error: { type: "error", error: inner } } });
      counts.errored += 1;
    }
    const ran = new Set(batch.results.map((r) => r.index));
    batch.lines.forEach((line, index) => {
      if (ran.has(index)) return;
      results.push({ custom_id: line.custom_id, result: { type: missingType } });
      counts[missingType] += 1;
    });
    batch.resultsText = [...results.map((l) => JSON.stringify(l)), ...config.extraLines].map((l) => `${l}\n`).join("");
    batch.object.request_counts = counts;
    batch.object.processing_status = "ended";
    batch.object.ended_at = iso(Date.now());
    batch.object.results_url = `${server.url}/v1/messages/batches/${batch.id}/results`;
  }

  /** Checks OpenAI input lines as the API does before running any of them. */
  function validateOpenai(batch, text) {
    const errors = [];
    const seen = new Set();
    const models = new Set();
    const lines = [];
    text.split("\n").forEach((raw, n) => {
      if (raw.trim() === "") return;
      const lineNumber = n + 1;
      let line;
      try {
        line = JSON.parse(raw);
      } catch {
        errors.push({ code: "invalid_json_line", line: lineNumber, message: "This line is not parseable as valid JSON.", param: null });
        return;
      }
      const fail = (code, message, param) => errors.push({ code, line: lineNumber, message, param });
      if (typeof line.custom_id !== "string") fail("missing_required_parameter", "Missing required parameter: custom_id", "custom_id");
      else if (seen.has(line.custom_id)) fail("duplicate_custom_id", `The custom_id ${line.custom_id} is used more than once`, "custom_id");
      seen.add(line.custom_id);
      if (line.method !== "POST") fail("invalid_request", "Method must be POST", "method");
      if (line.url !== batch.object.endpoint) fail("invalid_url", "URL provided for this request does not match the batch endpoint", "url");
      if (line.body === null || typeof line.body !== "object") fail("invalid_request", "Body must be a JSON dictionary object", "body");
      else {
        if (typeof line.body.model !== "string") fail("invalid_request", "Model parameter is required", "body.model");
        models.add(line.body.model);
        if (!Array.isArray(line.body.messages)) fail("invalid_request", "Messages parameter is required", "body.messages");
        if (line.body.stream) fail("streaming_unsupported", "Streaming is not supported in batch processing", "body.stream");
      }
      const rejected = config.rejectLine?.(line, lineNumber);
      if (rejected) errors.push({ line: lineNumber, param: null, ...rejected });
      lines.push(line);
    });
    if (models.size > 1) errors.push({ code: "mismatched_model", line: null, message: "All requests in a batch must use the same model", param: "body.model" });
    if (lines.length > config.limits.openai.maxRequests) {
      errors.push({ code: "too_many_requests", line: null, message: `The batch has ${lines.length} requests, above ${config.limits.openai.maxRequests}`, param: null });
    }
    return { errors, lines };
  }

  async function processOpenai(batch) {
    await sleep(config.validatingMs);
    const { errors, lines } = validateOpenai(batch, files.get(batch.object.input_file_id).text);
    batch.lines = lines;
    if (batch.cancelRequested) {
      await finishCancelledOpenai(batch);
      return;
    }
    if (errors.length > 0) {
      Object.assign(batch.object, { status: "failed", failed_at: Math.floor(Date.now() / 1000), errors: { object: "list", data: errors } });
      return;
    }
    Object.assign(batch.object, { status: "in_progress", in_progress_at: Math.floor(Date.now() / 1000) });
    updateCounts(batch);
    await runLines(batch);
    if (batch.cancelRequested) {
      await finishCancelledOpenai(batch);
      return;
    }
    if (batch.expired) {
      finishOpenai(batch, "batch_expired", "This request could not be executed before the completion window expired.");
      Object.assign(batch.object, { status: "expired", expired_at: Math.floor(Date.now() / 1000) });
      return;
    }
    Object.assign(batch.object, { status: "finalizing", finalizing_at: Math.floor(Date.now() / 1000) });
    await sleep(config.finalizingMs);
    finishOpenai(batch, null, null);
    Object.assign(batch.object, { status: "completed", completed_at: Math.floor(Date.now() / 1000) });
  }

  async function finishCancelledOpenai(batch) {
    await sleep(config.cancelDelayMs);
    finishOpenai(batch, "batch_cancelled", "This request was cancelled before it ran.");
    Object.assign(batch.object, { status: "cancelled", cancelled_at: Math.floor(Date.now() / 1000) });
  }

  async function processAnthropic(batch) {
    await runLines(batch);
    if (batch.cancelRequested) {
      await sleep(config.cancelDelayMs);
      finishAnthropic(batch, "canceled");
      return;
    }
    finishAnthropic(batch, batch.expired ? "expired" : "canceled");
  }

  function newBatch(api, object, lines) {
    const batch = { id: object.id, api, object, lines, results: [], inFlight: 0, cancelRequested: false, expired: false, resultsText: null };
    batches.set(object.id, batch);
    return batch;
  }

  function authorized(req, res, api) {
    if (api === "anthropic" && !req.headers["anthropic-version"]) {
      anthropicError(res, 400, "invalid_request_error", "anthropic-version: header is required");
      return false;
    }
    if (!config.apiKey) return true;
    const sent = api === "openai" ? req.headers.authorization : req.headers["x-api-key"];
    const expected = api === "openai" ? `Bearer ${config.apiKey}` : config.apiKey;
    if (sent === expected) return true;
    if (api === "openai") openaiError(res, 401, "Incorrect API key provided", { code: "invalid_api_key" });
    else anthropicError(res, 401, "authentication_error", "invalid x-api-key");
    return false;
  }

  async function handle(req, res) {
    const path = new URL(req.url, "http://127.0.0.1").pathname.replace(/^.*?(?=\/v1\/)/, "");
    const bytes = await readBody(req);
    seq += 1;
    const record = { seq, method: req.method, path, headers: { ...req.headers }, bodyText: null, body: null, multipart: null };
    records.push(record);
    const contentType = req.headers["content-type"] ?? "";
    if (contentType.startsWith("multipart/form-data")) {
      try {
        record.multipart = await parseMultipart(contentType, bytes);
      } catch (error) {
        openaiError(res, 400, `could not parse the multipart body: ${error.message}`);
        return;
      }
    } else {
      record.bodyText = bytes.toString("utf8");
      try {
        record.body = record.bodyText === "" ? null : JSON.parse(record.bodyText);
      } catch {
        record.body = record.bodyText;
      }
    }

    let match;
    if (req.method === "POST" && path === "/v1/files") {
      if (!authorized(req, res, "openai")) return;
      const form = record.multipart;
      if (!form) return openaiError(res, 400, "the body must be multipart/form-data");
      if (form.purpose !== "batch") return openaiError(res, 400, `purpose must be "batch", got ${JSON.stringify(form.purpose)}`, { param: "purpose" });
      if (!form.file) return openaiError(res, 400, "a file part is required", { param: "file" });
      if (Buffer.byteLength(form.file.text) > config.limits.openai.maxBytes) {
        return openaiError(res, 400, `the file is larger than ${config.limits.openai.maxBytes} bytes`, { param: "file" });
      }
      return send(res, 200, storeFile(form.file.name, form.purpose, form.file.text));
    }
    if (req.method === "GET" && (match = path.match(/^\/v1\/files\/([^/]+)\/content$/))) {
      if (!authorized(req, res, "openai")) return;
      const file = files.get(decodeURIComponent(match[1]));
      if (!file) return openaiError(res, 404, `No such File object: ${match[1]}`);
      return send(res, 200, file.text, "application/octet-stream");
    }
    if (req.method === "POST" && path === "/v1/batches") {
      if (!authorized(req, res, "openai")) return;
      const body = record.body ?? {};
      if (body.completion_window !== "24h") return openaiError(res, 400, "completion_window must be 24h", { param: "completion_window" });
      if (body.endpoint !== "/v1/chat/completions") return openaiError(res, 400, `unsupported endpoint ${body.endpoint}`, { param: "endpoint" });
      if (!files.has(body.input_file_id)) return openaiError(res, 404, `No such File object: ${body.input_file_id}`, { param: "input_file_id" });
      if (body.metadata && Object.keys(body.metadata).length > 16) return openaiError(res, 400, "metadata has more than 16 keys", { param: "metadata" });
      const now = Math.floor(Date.now() / 1000);
      const object = {
        id: nextId("batch_"),
        object: "batch",
        endpoint: body.endpoint,
        errors: null,
        input_file_id: body.input_file_id,
        completion_window: "24h",
        status: "validating",
        output_file_id: null,
        error_file_id: null,
        created_at: now,
        in_progress_at: null,
        expires_at: now + 86_400,
        finalizing_at: null,
        completed_at: null,
        failed_at: null,
        expired_at: null,
        cancelling_at: null,
        cancelled_at: null,
        request_counts: { total: 0, completed: 0, failed: 0 },
        metadata: body.metadata ?? null,
      };
      const batch = newBatch("openai", object, []);
      processOpenai(batch).catch((error) => console.error(`batch-server: ${batch.id} failed: ${error.stack}`));
      return send(res, 200, object);
    }
    if (req.method === "POST" && path === "/v1/messages/batches") {
      if (!authorized(req, res, "anthropic")) return;
      const requests = record.body?.requests;
      if (!Array.isArray(requests) || requests.length === 0) return anthropicError(res, 400, "invalid_request_error", "requests: must be a non-empty array");
      if (requests.length > config.limits.anthropic.maxRequests) {
        return anthropicError(res, 400, "invalid_request_error", `requests: at most ${config.limits.anthropic.maxRequests} requests`);
      }
      if (bytes.length > config.limits.anthropic.maxBytes) return anthropicError(res, 413, "request_too_large", `the body is larger than ${config.limits.anthropic.maxBytes} bytes`);
      const seen = new Set();
      for (const [i, r] of requests.entries()) {
        if (typeof r.custom_id !== "string" || !CUSTOM_ID.test(r.custom_id)) {
          return anthropicError(res, 400, "invalid_request_error", `requests.${i}.custom_id: must match ^[a-zA-Z0-9_-]{1,64}$`);
        }
        if (seen.has(r.custom_id)) return anthropicError(res, 400, "invalid_request_error", `requests.${i}.custom_id: duplicate ${r.custom_id}`);
        seen.add(r.custom_id);
        const p = r.params;
        if (!p || typeof p.model !== "string") return anthropicError(res, 400, "invalid_request_error", `requests.${i}.params.model: Field required`);
        if (!Number.isInteger(p.max_tokens) || p.max_tokens < 1) return anthropicError(res, 400, "invalid_request_error", `requests.${i}.params.max_tokens: Field required`);
        if (!Array.isArray(p.messages) || p.messages.length === 0) return anthropicError(res, 400, "invalid_request_error", `requests.${i}.params.messages: Field required`);
        if (p.stream) return anthropicError(res, 400, "invalid_request_error", `requests.${i}.params.stream: streaming is not supported in batches`);
      }
      const now = Date.now();
      const object = {
        id: nextId("msgbatch_"),
        type: "message_batch",
        processing_status: "in_progress",
        request_counts: { processing: requests.length, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
        ended_at: null,
        created_at: iso(now),
        expires_at: iso(now + 86_400_000),
        cancel_initiated_at: null,
        archived_at: null,
        results_url: null,
      };
      const batch = newBatch("anthropic", object, requests);
      processAnthropic(batch).catch((error) => console.error(`batch-server: ${batch.id} failed: ${error.stack}`));
      return send(res, 200, object);
    }
    if ((match = path.match(/^\/v1\/(batches|messages\/batches)\/([^/]+)(\/cancel|\/results)?$/))) {
      const api = match[1] === "batches" ? "openai" : "anthropic";
      if (!authorized(req, res, api)) return;
      const batch = batches.get(decodeURIComponent(match[2]));
      if (!batch || batch.api !== api) {
        return api === "openai" ? openaiError(res, 404, `No batch found with id '${match[2]}'`) : anthropicError(res, 404, "not_found_error", `batch ${match[2]} not found`);
      }
      const action = match[3] ?? "";
      if (req.method === "GET" && action === "") return send(res, 200, batch.object);
      if (req.method === "POST" && action === "/cancel") {
        if (api === "openai") {
          if (["completed", "failed", "expired", "cancelled"].includes(batch.object.status)) {
            return openaiError(res, 400, `Cannot cancel a batch with status '${batch.object.status}'`);
          }
          batch.cancelRequested = true;
          if (batch.object.status !== "cancelling") Object.assign(batch.object, { status: "cancelling", cancelling_at: Math.floor(Date.now() / 1000) });
          return send(res, 200, batch.object);
        }
        if (batch.object.processing_status === "ended") return anthropicError(res, 400, "invalid_request_error", "the batch has already ended");
        batch.cancelRequested = true;
        Object.assign(batch.object, { processing_status: "canceling", cancel_initiated_at: iso(Date.now()) });
        return send(res, 200, batch.object);
      }
      if (req.method === "GET" && action === "/results" && api === "anthropic") {
        if (batch.object.processing_status !== "ended") return anthropicError(res, 400, "invalid_request_error", "results are not available until the batch has ended");
        return send(res, 200, batch.resultsText, "application/binary");
      }
    }
    send(res, 404, { error: { message: `not found: ${req.method} ${path}`, type: "not_found" } });
  }

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error(`batch-server: ${req.method} ${req.url} failed: ${error.stack}`);
      if (!res.headersSent) send(res, 500, { error: { message: error.message, type: "server_error" } });
    });
  });
  httpServer.keepAliveTimeout = 1_000;
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(0, HOST, resolve);
  });

  const server = {
    url: `http://${HOST}:${httpServer.address().port}`,
    upstream: ownUpstream,
    configure(changes) {
      config = { ...config, ...changes };
      return server;
    },
    reset() {
      config = { ...DEFAULTS, ...options };
      records = [];
      files.clear();
      batches.clear();
      ownUpstream?.reset();
      ownUpstream?.setDefault(null);
      return server;
    },
    requests() {
      return records.slice();
    },
    batches() {
      return [...batches.values()].map((b) => ({ id: b.id, api: b.api, object: b.object, lines: b.lines, inFlight: b.inFlight }));
    },
    /** Resolves once no batch has lines in flight or is still processing. */
    async settled({ timeoutMs = 10_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      const busy = () =>
        [...batches.values()].some((b) =>
          b.api === "openai" ? !["completed", "failed", "expired", "cancelled"].includes(b.object.status) : b.object.processing_status !== "ended",
        );
      while (busy()) {
        if (Date.now() > deadline) throw new Error("batch-server: batches still running after the timeout");
        await sleep(5);
      }
    },
    async close() {
      await new Promise((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections?.();
      });
      agent.destroy();
      await ownUpstream?.close();
    },
  };
  return server;
}
