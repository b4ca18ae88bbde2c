// Checks the scripted provider server with real fetch calls over 127.0.0.1.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { clearGuardViolations, guardViolations, installLoopbackGuard } from "../support/loopback-guard.mjs";
import {
  anthropicError,
  anthropicOk,
  anthropicStream,
  cutAt,
  cutEvery,
  html502,
  openaiError,
  openaiOk,
  openaiStream,
  parseSse,
  startScriptedServer,
} from "../support/scripted-server.mjs";

const SERVER_SCRIPT = fileURLToPath(new URL("../support/scripted-server.mjs", import.meta.url));

const REQUIRED_EXPOSED_HEADERS = [
  "retry-after",
  "retry-after-ms",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
  "anthropic-ratelimit-requests-remaining",
  "anthropic-ratelimit-requests-reset",
  "anthropic-ratelimit-tokens-remaining",
  "anthropic-ratelimit-tokens-reset",
  "x-request-id",
];

let server;

function postChat(body, init = {}) {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
}

function postMessages(body, init = {}) {
  return fetch(`${server.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "test-key" },
    body: JSON.stringify(body),
    ...init,
  });
}

function chatBody(prompt) {
  return { model: "m", messages: [{ role: "user", content: prompt }] };
}

/** Reads a response body and returns each read's bytes with its arrival time. */
async function readPieces(response) {
  const reader = response.body.getReader();
  const pieces = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return pieces;
    pieces.push({ bytes: Buffer.from(value), at: performance.now() });
  }
}

function exposedHeaders(response) {
  return response.headers
    .get("access-control-expose-headers")
    .split(",")
    .map((name) => name.trim().toLowerCase());
}

/** Sends a GET with a raw request target that fetch would normalize. */
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path: target, method: "GET" }, (response) => {
      const parts = [];
      response.on("data", (part) => parts.push(part));
      response.on("end", () => resolve({ status: response.statusCode, body: Buffer.concat(parts).toString("utf8") }));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("scripted server", () => {
  beforeEach(async () => {
    server = await startScriptedServer();
  });

  afterEach(async () => {
    await server.close();
  });

  describe("routes", () => {
    test("listens on loopback with a port", () => {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(server.port > 0);
      assert.equal(server.url, `http://127.0.0.1:${server.port}`);
      assert.equal(server.httpServer.keepAliveTimeout, 1_000);
    });

    test("health returns ok and makes no record", async () => {
      const response = await fetch(`${server.url}/health`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { status: "ok" });
      assert.equal(server.requests().length, 0);
      assert.equal(server.stats().count, 0);
    });

    test("unknown path returns 404 JSON with CORS", async () => {
      const response = await fetch(`${server.url}/nope`, { headers: { origin: "http://127.0.0.1:9" } });
      assert.equal(response.status, 404);
      assert.match(response.headers.get("content-type"), /application\/json/);
      assert.equal(response.headers.get("access-control-allow-origin"), "http://127.0.0.1:9");
      const body = await response.json();
      assert.match(body.error.message, /not found/);
    });

    test("default action is shaped by route", async () => {
      const openai = await (await postChat(chatBody("hi"))).json();
      assert.equal(openai.object, "chat.completion");
      assert.equal(openai.choices[0].message.content, "ok");
      const anthropic = await (await postMessages(chatBody("hi"))).json();
      assert.equal(anthropic.type, "message");
      assert.deepEqual(anthropic.content, [{ type: "text", text: "ok" }]);
    });

    test("path suffixes select the API", async () => {
      const openai = await fetch(`${server.url}/proxy/openai/v1/chat/completions`, { method: "POST", body: "{}" });
      assert.equal((await openai.json()).object, "chat.completion");
      const anthropic = await fetch(`${server.url}/anthropic/v1/messages`, { method: "POST", body: "{}" });
      assert.equal((await anthropic.json()).type, "message");
      assert.deepEqual(
        server.requests().map((record) => record.path),
        ["/proxy/openai/v1/chat/completions", "/anthropic/v1/messages"],
      );
    });

    test("GET on API path is ignored", async () => {
      const response = await fetch(`${server.url}/v1/chat/completions`);
      assert.equal(response.status, 404);
      assert.equal(server.stats().count, 0);
    });
  });

  describe("records", () => {
    test("record holds request fields and times", async () => {
      await postMessages({ model: "m", messages: [{ role: "user", content: "section-1" }] });
      const [record] = server.requests();
      assert.equal(record.seq, 1);
      assert.equal(record.method, "POST");
      assert.equal(record.path, "/v1/messages");
      assert.equal(record.headers["x-api-key"], "test-key");
      assert.equal(record.headers["content-type"], "application/json");
      assert.equal(record.body.messages[0].content, "section-1");
      assert.equal(record.bodyText, JSON.stringify({ model: "m", messages: [{ role: "user", content: "section-1" }] }));
      assert.equal(record.outcome, "completed");
      assert.equal(record.ruleIndex, null);
      assert.equal(record.clientClosedAt, null);
      assert.equal(record.inFlightAtArrival, 1);
      assert.ok(record.receivedAt >= 0);
      assert.ok(record.respondedAt >= record.receivedAt);
      assert.ok(record.finishedAt >= record.respondedAt);
    });

    test("non-JSON body is kept as a string", async () => {
      await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: "not json {" });
      const [record] = server.requests();
      assert.equal(record.body, "not json {");
      assert.equal(record.bodyText, "not json {");
    });

    test("records keep arrival order", async () => {
      for (const prompt of ["a", "b", "c"]) await postChat(chatBody(prompt));
      assert.deepEqual(
        server.requests().map((record) => [record.seq, record.body.messages[0].content]),
        [
          [1, "a"],
          [2, "b"],
          [3, "c"],
        ],
      );
    });

    test("reset clears rules, records and stats", async () => {
      server.setDefault(openaiOk("kept"));
      server.script({ respond: openaiOk("rule") });
      await postChat(chatBody("x"));
      server.reset();
      assert.deepEqual(server.requests(), []);
      assert.equal(server.stats().count, 0);
      assert.equal(server.stats().maxInFlight, 0);
      const body = await (await postChat(chatBody("y"))).json();
      assert.equal(body.choices[0].message.content, "kept");
      assert.equal(server.requests()[0].seq, 1);
    });
  });

  describe("rules", () => {
    test("first matching rule wins", async () => {
      server.script([
        { match: { contains: "section-2" }, respond: openaiOk("two") },
        { match: { contains: "section" }, respond: openaiOk("any") },
      ]);
      const second = await (await postChat(chatBody("section-2"))).json();
      const first = await (await postChat(chatBody("section-1"))).json();
      const other = await (await postChat(chatBody("other"))).json();
      assert.equal(second.choices[0].message.content, "two");
      assert.equal(first.choices[0].message.content, "any");
      assert.equal(other.choices[0].message.content, "ok");
      assert.deepEqual(
        server.requests().map((record) => record.ruleIndex),
        [0, 1, null],
      );
    });

    test("times limits a rule", async () => {
      server.script([{ times: 2, respond: openaiError(503, "busy") }]);
      const statuses = [];
      for (let i = 0; i < 4; i += 1) statuses.push((await postChat(chatBody("x"))).status);
      assert.deepEqual(statuses, [503, 503, 200, 200]);
    });

    test("action array is used in turn", async () => {
      server.script({ respond: [openaiError(429, "slow down"), openaiError(500, "boom"), openaiOk("done")] });
      const statuses = [];
      for (let i = 0; i < 5; i += 1) statuses.push((await postChat(chatBody("x"))).status);
      assert.deepEqual(statuses, [429, 500, 200, 200, 200]);
    });

    test("nth, path and combined matches", async () => {
      server.script([
        { match: { nth: 2 }, respond: openaiOk("second") },
        { match: { path: "/v1/messages", contains: "vote" }, respond: anthropicOk("anthropic-vote") },
        { match: { path: "/v1/messages" }, respond: anthropicOk("anthropic") },
      ]);
      const texts = [];
      texts.push((await (await postChat(chatBody("vote"))).json()).choices[0].message.content);
      texts.push((await (await postChat(chatBody("vote"))).json()).choices[0].message.content);
      texts.push((await (await postMessages(chatBody("vote"))).json()).content[0].text);
      texts.push((await (await postMessages(chatBody("plain"))).json()).content[0].text);
      assert.deepEqual(texts, ["ok", "second", "anthropic-vote", "anthropic"]);
    });

    test("function match and function respond", async () => {
      const seen = [];
      server.script({
        match: (record) => record.body.temperature === 0,
        respond: (record, ctx) => {
          seen.push({ seq: record.seq, index: ctx.index, inFlight: ctx.inFlight, sameServer: ctx.server === server });
          return openaiOk(`call-${ctx.index}`);
        },
      });
      const a = await (await postChat({ ...chatBody("x"), temperature: 0 })).json();
      await postChat({ ...chatBody("x"), temperature: 1 });
      const b = await (await postChat({ ...chatBody("x"), temperature: 0 })).json();
      assert.equal(a.choices[0].message.content, "call-0");
      assert.equal(b.choices[0].message.content, "call-1");
      assert.deepEqual(seen, [
        { seq: 1, index: 0, inFlight: 1, sameServer: true },
        { seq: 3, index: 1, inFlight: 1, sameServer: true },
      ]);
    });

    test("async respond function is awaited", async () => {
      server.script({
        respond: async () => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return anthropicOk("later");
        },
      });
      const body = await (await postMessages(chatBody("x"))).json();
      assert.equal(body.content[0].text, "later");
    });

    test("throwing respond returns 500", async () => {
      server.script({
        respond: () => {
          throw new Error("script bug");
        },
      });
      const response = await postChat(chatBody("x"));
      assert.equal(response.status, 500);
      assert.match((await response.json()).error.message, /script bug/);
      assert.equal(server.requests()[0].error, "script bug");
    });

    test("setDefault accepts a function", async () => {
      server.setDefault((record, ctx) => openaiOk(`default-${ctx.index}-${record.seq}`));
      const a = await (await postChat(chatBody("x"))).json();
      const b = await (await postChat(chatBody("x"))).json();
      assert.equal(a.choices[0].message.content, "default-0-1");
      assert.equal(b.choices[0].message.content, "default-1-2");
    });

    test("invalid rules are rejected", () => {
      assert.throws(() => server.script({ match: { prompt: "x" }, respond: openaiOk("x") }), /match\.prompt/);
      assert.throws(() => server.script({ respond: { status: 99 } }), /status/);
      assert.throws(() => server.script({ respond: { chunks: [42] } }), /chunks\[0\]/);
      assert.throws(() => server.script({ match: { nth: 0 }, respond: openaiOk("x") }), /nth/);
      assert.throws(() => server.script({ times: 1 }), /respond is missing/);
      assert.throws(() => server.script({ respond: [] }), /empty array/);
    });
  });

  describe("actions", () => {
    test("status and headers are sent", async () => {
      server.script({
        respond: openaiError(429, "Rate limit reached", { headers: { "Retry-After": "2", "x-request-id": "req-1" } }),
      });
      const response = await postChat(chatBody("x"));
      assert.equal(response.status, 429);
      assert.equal(response.headers.get("retry-after"), "2");
      assert.equal(response.headers.get("x-request-id"), "req-1");
      const body = await response.json();
      assert.deepEqual(body, {
        error: { message: "Rate limit reached", type: "requests", param: null, code: "rate_limit_exceeded" },
      });
    });

    test("string body is sent as is", async () => {
      server.script({ respond: { status: 200, body: "plain text" } });
      const response = await postChat(chatBody("x"));
      assert.equal(await response.text(), "plain text");
      assert.equal(response.headers.get("content-type"), null);
    });

    test("object body sent as JSON", async () => {
      server.script([
        { times: 1, respond: { body: [1, 2] } },
        { times: 1, respond: { body: { a: 1 }, headers: { "Content-Type": "application/vnd.test+json" } } },
      ]);
      const first = await postChat(chatBody("x"));
      assert.equal(first.headers.get("content-type"), "application/json");
      assert.deepEqual(await first.json(), [1, 2]);
      const second = await postChat(chatBody("x"));
      assert.equal(second.headers.get("content-type"), "application/vnd.test+json");
      assert.deepEqual(await second.json(), { a: 1 });
    });

    test("delayMs delays the headers", async () => {
      server.script({ respond: openaiOk("slow", { delayMs: 150 }) });
      const started = performance.now();
      const response = await postChat(chatBody("x"));
      const elapsed = performance.now() - started;
      assert.equal(response.status, 200);
      assert.ok(elapsed >= 140, `headers after ${Math.round(elapsed)} ms`);
      const [record] = server.requests();
      assert.ok(record.respondedAt - record.receivedAt >= 140);
    });

    test("chunked stream arrives in pieces", async () => {
      server.script({ respond: { chunks: ["one ", { data: "two ", delayMs: 80 }, "three"], chunkDelayMs: 80 } });
      const response = await postChat(chatBody("x"));
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const pieces = await readPieces(response);
      assert.equal(Buffer.concat(pieces.map((piece) => piece.bytes)).toString("utf8"), "one two three");
      assert.equal(pieces.length, 3);
      assert.ok(pieces[2].at - pieces[0].at >= 140, `spread ${Math.round(pieces[2].at - pieces[0].at)} ms`);
    });

    test("byte chunks split a character", async () => {
      const euro = Buffer.from("€", "utf8");
      server.script({
        respond: {
          headers: { "content-type": "text/plain; charset=utf-8" },
          chunks: [{ bytes: [...euro.subarray(0, 1)] }, { base64: euro.subarray(1).toString("base64"), delayMs: 30 }],
        },
      });
      const response = await postChat(chatBody("x"));
      assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
      const pieces = await readPieces(response);
      assert.equal(pieces.length, 2);
      assert.deepEqual(pieces[0].bytes, euro.subarray(0, 1));
      assert.equal(Buffer.concat(pieces.map((piece) => piece.bytes)).toString("utf8"), "€");
    });

    test("stall before headers, client abort recorded", async () => {
      server.script({ respond: { stall: "before-headers" } });
      const controller = new AbortController();
      const pending = postChat(chatBody("x"), { signal: controller.signal });
      await server.waitFor((s) => s.requests()[0]?.outcome === "stalled");
      assert.equal(server.stats().inFlight, 1);
      const abortedAt = server.now();
      controller.abort();
      await assert.rejects(pending, { name: "AbortError" });
      const record = await server.waitFor((s) => s.requests()[0].clientClosedAt !== null && s.requests()[0]);
      assert.ok(record.clientClosedAt - abortedAt < 200, `closed ${record.clientClosedAt - abortedAt} ms after abort`);
      assert.equal(record.outcome, "client-closed");
      assert.equal(record.respondedAt, null);
      assert.equal(record.finishedAt, null);
      assert.equal(server.stats().inFlight, 0);
      assert.equal(server.stats().clientCloses, 1);
    });

    test("stall mid-stream, client abort recorded", async () => {
      const action = openaiStream("Hello there");
      action.chunks = action.chunks.slice(0, 2);
      action.then = "stall";
      server.script({ respond: action });
      const controller = new AbortController();
      const response = await postChat(chatBody("x"), { signal: controller.signal });
      const reader = response.body.getReader();
      const first = await reader.read();
      assert.match(Buffer.from(first.value).toString("utf8"), /^data: /);
      await server.waitFor((s) => s.requests()[0].outcome === "stalled");
      const abortedAt = server.now();
      controller.abort();
      await assert.rejects(reader.read(), { name: "AbortError" });
      const record = await server.waitFor((s) => s.requests()[0].clientClosedAt !== null && s.requests()[0]);
      assert.ok(record.clientClosedAt - abortedAt < 200, `closed ${record.clientClosedAt - abortedAt} ms after abort`);
      assert.equal(record.outcome, "client-closed");
      assert.notEqual(record.respondedAt, null);
    });

    test("abort during delay is recorded", async () => {
      server.script({ respond: openaiOk("late", { delayMs: 2_000 }) });
      const controller = new AbortController();
      const pending = postChat(chatBody("x"), { signal: controller.signal });
      await server.waitFor((s) => s.stats().inFlight === 1);
      controller.abort();
      await assert.rejects(pending, { name: "AbortError" });
      const record = await server.waitFor((s) => s.requests()[0].clientClosedAt !== null && s.requests()[0]);
      assert.equal(record.outcome, "client-closed");
    });

    test("reset makes fetch reject", async () => {
      server.script({ respond: { reset: true } });
      await assert.rejects(postChat(chatBody("x")), TypeError);
      const record = await server.waitFor((s) => s.requests()[0].closedAt !== null && s.requests()[0]);
      assert.equal(record.outcome, "reset");
      assert.equal(record.clientClosedAt, null);
      assert.equal(server.stats().inFlight, 0);
    });

    test("reset mid-stream breaks the body", async () => {
      const action = openaiStream("Hello there");
      action.chunks = action.chunks.slice(0, 2);
      action.then = "reset";
      server.script({ respond: action });
      const response = await postChat(chatBody("x"));
      assert.equal(response.status, 200);
      await assert.rejects(response.text(), TypeError);
      assert.equal(server.requests()[0].outcome, "reset");
    });

    test("in-flight max with concurrent requests", async () => {
      server.script({ respond: openaiOk("x", { delayMs: 150 }) });
      const responses = await Promise.all([1, 2, 3, 4, 5].map((n) => postChat(chatBody(`c${n}`))));
      for (const response of responses) assert.equal(response.status, 200);
      await Promise.all(responses.map((response) => response.arrayBuffer()));
      const stats = server.stats();
      assert.equal(stats.count, 5);
      assert.equal(stats.maxInFlight, 5);
      assert.equal(stats.inFlight, 0);
      assert.ok(stats.maxOpenConnections >= 5);
      assert.deepEqual(
        server
          .requests()
          .map((record) => record.inFlightAtArrival)
          .sort(),
        [1, 2, 3, 4, 5],
      );
    });

    test("ctx.inFlight drives a concurrency cap", async () => {
      server.script({
        respond: (_record, ctx) =>
          ctx.inFlight > 2
            ? anthropicError(429, "rate_limit_error", "Number of concurrent connections has exceeded your rate limit.", {
                headers: { "retry-after": "1" },
              })
            : anthropicOk("fine", { delayMs: 150 }),
      });
      const responses = await Promise.all([1, 2, 3, 4].map((n) => postMessages(chatBody(`s${n}`))));
      const statuses = responses.map((response) => response.status).sort();
      assert.deepEqual(statuses, [200, 200, 429, 429]);
      const limited = responses.find((response) => response.status === 429);
      assert.equal(limited.headers.get("retry-after"), "1");
      assert.deepEqual(await limited.json(), {
        type: "error",
        error: { type: "rate_limit_error", message: "Number of concurrent connections has exceeded your rate limit." },
      });
    });
  });

  describe("CORS", () => {
    test("preflight returns 204 and is not recorded", async () => {
      const response = await fetch(`${server.url}/v1/messages`, {
        method: "OPTIONS",
        headers: {
          origin: "http://127.0.0.1:5173",
          "access-control-request-method": "POST",
          "access-control-request-headers": "x-api-key, anthropic-version, content-type",
        },
      });
      assert.equal(response.status, 204);
      assert.equal(response.headers.get("access-control-allow-origin"), "http://127.0.0.1:5173");
      const allowHeaders = response.headers.get("access-control-allow-headers");
      assert.match(allowHeaders, /^\*, /);
      assert.match(allowHeaders, /x-api-key, anthropic-version, content-type/);
      assert.equal(response.headers.get("access-control-allow-methods"), "GET, POST, OPTIONS");
      assert.equal(server.requests().length, 0);
      assert.equal(server.stats().count, 0);
    });

    test("responses expose rate-limit headers", async () => {
      server.script({ respond: openaiError(429, "slow", { headers: { "x-custom-limit": "7" } }) });
      const response = await postChat(chatBody("x"));
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      const exposed = exposedHeaders(response);
      for (const name of REQUIRED_EXPOSED_HEADERS) assert.ok(exposed.includes(name), `${name} is not exposed`);
      assert.ok(exposed.includes("x-custom-limit"));
    });

    test("error and stream responses carry CORS", async () => {
      server.script([
        { times: 1, respond: html502() },
        { times: 1, respond: anthropicStream("hi") },
      ]);
      const origin = { origin: "http://localhost:8000" };
      const bad = await postChat(chatBody("x"), { headers: origin });
      assert.equal(bad.headers.get("access-control-allow-origin"), "http://localhost:8000");
      await bad.text();
      const streamed = await postChat(chatBody("x"), { headers: origin });
      assert.equal(streamed.headers.get("access-control-allow-origin"), "http://localhost:8000");
      assert.ok(exposedHeaders(streamed).includes("retry-after"));
      await streamed.text();
    });
  });

  describe("control API", () => {
    test("script, requests, stats and reset over HTTP", async () => {
      const scripted = await fetch(`${server.url}/__script`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          rules: [
            { match: { contains: "section-2" }, respond: [openaiError(503, "busy"), openaiOk("second")] },
            { match: { nth: 1 }, respond: openaiOk("first") },
          ],
        }),
      });
      assert.equal(scripted.status, 200);
      assert.deepEqual(await scripted.json(), { ok: true, rules: 2 });

      const first = await (await postChat(chatBody("section-1"))).json();
      const busy = await postChat(chatBody("section-2"));
      const second = await (await postChat(chatBody("section-2"))).json();
      assert.equal(first.choices[0].message.content, "first");
      assert.equal(busy.status, 503);
      assert.equal(second.choices[0].message.content, "second");

      const records = await (await fetch(`${server.url}/__requests`)).json();
      assert.deepEqual(
        records.map((record) => [record.seq, record.ruleIndex, record.outcome]),
        [
          [1, 1, "completed"],
          [2, 0, "completed"],
          [3, 0, "completed"],
        ],
      );
      const stats = await (await fetch(`${server.url}/__stats`)).json();
      assert.equal(stats.count, 3);
      assert.equal(stats.inFlight, 0);

      const reset = await fetch(`${server.url}/__reset`, { method: "POST" });
      assert.equal(reset.status, 200);
      assert.deepEqual(await (await fetch(`${server.url}/__requests`)).json(), []);
      const after = await (await postChat(chatBody("section-2"))).json();
      assert.equal(after.choices[0].message.content, "ok");
    });

    test("control API sets the default action", async () => {
      await fetch(`${server.url}/__script`, {
        method: "POST",
        body: JSON.stringify({ default: anthropicOk("from-default") }),
      });
      const body = await (await postMessages(chatBody("x"))).json();
      assert.equal(body.content[0].text, "from-default");
    });

    test("invalid script is rejected with 400", async () => {
      const response = await fetch(`${server.url}/__script`, {
        method: "POST",
        body: JSON.stringify({ rules: [{ match: { header: "x" }, respond: openaiOk("x") }] }),
      });
      assert.equal(response.status, 400);
      assert.match((await response.json()).error.message, /match\.header/);
      const notJson = await fetch(`${server.url}/__script`, { method: "POST", body: "{" });
      assert.equal(notJson.status, 400);
      assert.equal(server.stats().count, 0);
    });
  });

  describe("waitFor", () => {
    test("resolves with the predicate value", async () => {
      setTimeout(() => postChat(chatBody("x")), 20);
      const record = await server.waitFor((s) => s.requests()[0]);
      assert.equal(record.seq, 1);
    });

    test("rejects on timeout with a clear message", async () => {
      await assert.rejects(server.waitFor((s) => s.stats().count === 99, { timeoutMs: 50 }), (error) => {
        assert.match(error.message, /waitFor timed out after 50 ms/);
        assert.match(error.message, /count === 99/);
        assert.match(error.message, /"count":0/);
        return true;
      });
    });
  });

  test("close ends a stalled request", async () => {
    server.script({ respond: { stall: "before-headers" } });
    // The rejection is caught at once because close() settles it before the assert runs.
    const failure = postChat(chatBody("x")).then(
      () => null,
      (error) => error,
    );
    await server.waitFor((s) => s.requests()[0]?.outcome === "stalled");
    const started = performance.now();
    await server.close();
    assert.ok(performance.now() - started < 1_000);
    assert.ok((await failure) instanceof TypeError);
    assert.equal(server.requests()[0].outcome, "stalled");
    assert.equal(server.requests()[0].clientClosedAt, null);
    assert.equal(server.stats().openConnections, 0);
  });
});

describe("static files", () => {
  let root;
  let pkgDir;
  let staticServer;
  const wasmBytes = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

  before(async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), "scripted-server-"));
    root = path.join(base, "www");
    pkgDir = path.join(base, "pkg");
    await mkdir(path.join(root, "sub"), { recursive: true });
    await mkdir(pkgDir, { recursive: true });
    await writeFile(path.join(base, "secret.txt"), "outside");
    await writeFile(path.join(root, "index.html"), "<!doctype html><title>t</title>");
    await writeFile(path.join(root, "app.js"), "export const x = 1;");
    await writeFile(path.join(root, "style.css"), "body {}");
    await writeFile(path.join(root, "sub", "data.json"), '{"a":1}');
    await writeFile(path.join(pkgDir, "module.wasm"), wasmBytes);
    await writeFile(path.join(pkgDir, "entry.mjs"), "export default 1;");
    staticServer = await startScriptedServer({ staticRoot: root, staticRoutes: { "/pkg/": pkgDir } });
  });

  after(async () => {
    await staticServer.close();
    await rm(path.dirname(root), { recursive: true, force: true });
  });

  test("content types by extension", async () => {
    const cases = [
      ["/", "text/html; charset=utf-8"],
      ["/index.html", "text/html; charset=utf-8"],
      ["/app.js", "text/javascript; charset=utf-8"],
      ["/style.css", "text/css; charset=utf-8"],
      ["/sub/data.json", "application/json"],
      ["/pkg/module.wasm", "application/wasm"],
      ["/pkg/entry.mjs", "text/javascript; charset=utf-8"],
    ];
    for (const [urlPath, contentType] of cases) {
      const response = await fetch(`${staticServer.url}${urlPath}`);
      assert.equal(response.status, 200, urlPath);
      assert.equal(response.headers.get("content-type"), contentType, urlPath);
      assert.equal(response.headers.get("access-control-allow-origin"), "*", urlPath);
      await response.arrayBuffer();
    }
  });

  test("wasm compiles through compileStreaming", async () => {
    const module = await WebAssembly.compileStreaming(fetch(`${staticServer.url}/pkg/module.wasm`));
    assert.ok(module instanceof WebAssembly.Module);
    const bytes = Buffer.from(await (await fetch(`${staticServer.url}/pkg/module.wasm`)).arrayBuffer());
    assert.deepEqual(bytes, wasmBytes);
  });

  test("directory traversal is blocked", async () => {
    for (const target of ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt", "/pkg/..%2f..%2fsecret.txt"]) {
      const response = await rawGet(staticServer.port, target);
      assert.equal(response.status, 404, target);
      assert.doesNotMatch(response.body, /outside/, target);
    }
  });

  test("missing file returns 404", async () => {
    const missing = await fetch(`${staticServer.url}/nope.js`);
    assert.equal(missing.status, 404);
    const api = await fetch(`${staticServer.url}/v1/chat/completions`, { method: "POST", body: "{}" });
    assert.equal((await api.json()).object, "chat.completion");
  });
});

describe("helpers", () => {
  test("openaiOk body shape", () => {
    const action = openaiOk("The answer is 42", { finishReason: "length", headers: { "x-request-id": "r" } });
    assert.equal(action.status, 200);
    assert.equal(action.headers["x-request-id"], "r");
    assert.equal(action.body.object, "chat.completion");
    assert.equal(action.body.model, "scripted");
    assert.deepEqual(action.body.choices[0].message, { role: "assistant", content: "The answer is 42" });
    assert.equal(action.body.choices[0].finish_reason, "length");
    assert.deepEqual(action.body.usage, { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 });
  });

  test("openaiOk with null content", () => {
    const action = openaiOk(null, { finishReason: "content_filter" });
    assert.equal(action.body.choices[0].message.content, null);
    assert.equal(action.body.choices[0].finish_reason, "content_filter");
    assert.equal(action.body.usage.completion_tokens, 0);
  });

  test("anthropicOk body shape", () => {
    const action = anthropicOk("42", { usage: { input_tokens: 5, output_tokens: 1 } });
    assert.equal(action.body.type, "message");
    assert.equal(action.body.role, "assistant");
    assert.deepEqual(action.body.content, [{ type: "text", text: "42" }]);
    assert.equal(action.body.stop_reason, "end_turn");
    assert.deepEqual(action.body.usage, { input_tokens: 5, output_tokens: 1 });
    assert.deepEqual(anthropicOk("").body.content, []);
    assert.deepEqual(anthropicOk(null).body.content, []);
  });

  test("error helpers", () => {
    assert.deepEqual(openaiError(400, "bad param", { type: "invalid_request_error" }), {
      status: 400,
      headers: {},
      body: { error: { message: "bad param", type: "invalid_request_error", param: null, code: null } },
    });
    assert.equal(openaiError(500, "x").body.error.type, "server_error");
    assert.deepEqual(anthropicError(529, "overloaded_error", "Overloaded").body, {
      type: "error",
      error: { type: "overloaded_error", message: "Overloaded" },
    });
    const page = html502();
    assert.equal(page.status, 502);
    assert.equal(page.headers["content-type"], "text/html");
    assert.match(page.body, /<title>502 Bad Gateway<\/title>/);
    assert.match(page.body, /cloudflare/);
  });

  test("openaiStream events", () => {
    const action = openaiStream("Hello big world", { usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 } });
    assert.equal(action.headers["content-type"], "text/event-stream; charset=utf-8");
    assert.equal(action.then, "end");
    const events = parseSse(action.chunks.join(""));
    assert.equal(events.length, action.chunks.length);
    assert.equal(events.at(-1).data, "[DONE]");
    const chunks = events.slice(0, -1).map((event) => event.data);
    for (const chunk of chunks) assert.equal(chunk.object, "chat.completion.chunk");
    assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
    const text = chunks
      .flatMap((chunk) => chunk.choices)
      .map((choice) => choice.delta.content ?? "")
      .join("");
    assert.equal(text, "Hello big world");
    assert.equal(chunks.at(-2).choices[0].finish_reason, "stop");
    assert.deepEqual(chunks.at(-2).choices[0].delta, {});
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });

  test("openaiStream options", () => {
    const action = openaiStream("abcdef", { pieces: 3, includeUsage: false, firstChunkEmptyChoices: true, finishReason: "length" });
    const chunks = parseSse(action.chunks.join(""))
      .slice(0, -1)
      .map((event) => event.data);
    assert.deepEqual(chunks[0].choices, []);
    assert.ok(Array.isArray(chunks[0].prompt_filter_results));
    const deltas = chunks.slice(2, -1).map((chunk) => chunk.choices[0].delta.content);
    assert.deepEqual(deltas, ["ab", "cd", "ef"]);
    assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
    assert.ok(chunks.every((chunk) => chunk.usage === undefined));
    const explicit = openaiStream(null, { pieces: ["4", "2"] });
    const explicitText = parseSse(explicit.chunks.join(""))
      .slice(0, -1)
      .flatMap((event) => event.data.choices)
      .map((choice) => choice.delta.content ?? "")
      .join("");
    assert.equal(explicitText, "42");
  });

  test("anthropicStream events", () => {
    const action = anthropicStream("Hello world", { stopReason: "max_tokens" });
    const events = parseSse(action.chunks.join(""));
    assert.deepEqual(
      events.map((event) => event.event),
      [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ],
    );
    for (const { event, data } of events) assert.equal(data.type, event);
    assert.equal(events[0].data.message.role, "assistant");
    assert.deepEqual(events[0].data.message.content, []);
    assert.equal(events[1].data.content_block.type, "text");
    const text = events
      .filter((event) => event.event === "content_block_delta")
      .map((event) => {
        assert.equal(event.data.delta.type, "text_delta");
        return event.data.delta.text;
      })
      .join("");
    assert.equal(text, "Hello world");
    assert.equal(events[6].data.delta.stop_reason, "max_tokens");
    assert.equal(events[6].data.usage.output_tokens, 2);
  });

  test("anthropicStream errorAfter", () => {
    const action = anthropicStream("a b c d", { errorAfter: 2 });
    const events = parseSse(action.chunks.join(""));
    assert.deepEqual(
      events.map((event) => event.event),
      ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"],
    );
    assert.deepEqual(events.at(-1).data, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    assert.equal(action.chunks.at(-1), 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n');
  });

  test("cutEvery keeps bytes and splits characters", () => {
    const action = openaiStream("naïve €100");
    const whole = Buffer.from(action.chunks.join(""), "utf8");
    const cut = cutEvery(action, 7);
    const pieces = cut.chunks.map((chunk) => Buffer.from(chunk.base64, "base64"));
    assert.deepEqual(Buffer.concat(pieces), whole);
    assert.ok(pieces.every((piece) => piece.length <= 7));
    assert.equal(pieces.length, Math.ceil(whole.length / 7));
    assert.equal(cut.headers["content-type"], action.headers["content-type"]);
    assert.equal(action.chunks.length > 0 && typeof action.chunks[0], "string", "the input is not changed");
  });

  test("cutAt cuts at offsets", () => {
    const cut = cutAt(openaiOk("x"), [1, 5, 5, 3]);
    const pieces = cut.chunks.map((chunk) => Buffer.from(chunk.base64, "base64"));
    assert.deepEqual(
      pieces.map((piece) => piece.length),
      [1, 2, 2, Buffer.byteLength(JSON.stringify(openaiOk("x").body)) - 5],
    );
    assert.equal(cut.headers["content-type"], "application/json");
    assert.equal(cut.body, undefined);
  });

  describe("over HTTP", () => {
    beforeEach(async () => {
      server = await startScriptedServer();
    });

    afterEach(async () => {
      await server.close();
    });

    test("stream cut mid-character arrives intact", async () => {
      const action = anthropicStream("héllo wörld €", { chunkDelayMs: 5 });
      const whole = Buffer.from(action.chunks.join(""), "utf8");
      const euroOffset = whole.indexOf(Buffer.from("€")) + 1;
      server.script({ respond: cutAt(action, [euroOffset]) });
      const response = await postMessages(chatBody("x"));
      const pieces = await readPieces(response);
      assert.equal(pieces.length, 2);
      assert.equal(pieces[0].bytes.length, euroOffset);
      assert.deepEqual(Buffer.concat(pieces.map((piece) => piece.bytes)), whole);
    });

    test("openaiStream served over HTTP parses", async () => {
      server.script({ respond: openaiStream("4", { firstChunkEmptyChoices: true }) });
      const response = await postChat(chatBody("x"));
      assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const events = parseSse(await response.text());
      assert.equal(events.at(-1).data, "[DONE]");
      assert.deepEqual(events[0].data.choices, []);
    });
  });
});

describe("CLI", () => {
  test("prints READY and stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [SERVER_SCRIPT, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let output = "";
      child.stdout.setEncoding("utf8");
      const line = await new Promise((resolve, reject) => {
        child.stdout.on("data", (text) => {
          output += text;
          if (output.includes("\n")) resolve(output.split("\n")[0]);
        });
        child.once("exit", (code) => reject(new Error(`exited with ${code} before READY`)));
      });
      const match = /^READY (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      assert.ok(match, `unexpected first line: ${line}`);
      const health = await fetch(`${match[1]}/health`);
      assert.deepEqual(await health.json(), { status: "ok" });
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = await exited;
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});

describe("loopback guard", () => {
  test("rejects non-loopback hosts and records them", async () => {
    clearGuardViolations();
    const before = globalThis.fetch;
    const uninstall = installLoopbackGuard();
    const local = await startScriptedServer();
    try {
      await assert.rejects(fetch("http://203.0.113.7/v1/chat/completions"), {
        message: "test tried to reach a non-loopback host: 203.0.113.7",
      });
      await assert.rejects(fetch(new URL("https://api.example.invalid/v1/messages")), {
        message: "test tried to reach a non-loopback host: api.example.invalid",
      });
      const health = await fetch(`${local.url}/health`);
      assert.equal(health.status, 200);
      const localhostHealth = await fetch(`http://localhost:${local.port}/health`).catch(() => null);
      assert.ok(localhostHealth === null || localhostHealth.status === 200);
      assert.deepEqual(
        guardViolations().map((violation) => violation.host),
        ["203.0.113.7", "api.example.invalid"],
      );
    } finally {
      uninstall();
      // The violations above were made on purpose: forget them, so a process-wide
      // guard (scripts/test.sh installs one) does not count them at exit.
      clearGuardViolations();
      await local.close();
    }
    assert.equal(globalThis.fetch, before);
  });
});
