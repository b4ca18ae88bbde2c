// A panic in the core must not hang anything. The package is built with
// panic=unwind, so a panic rejects the call that hit it with INTERNAL_ERROR, aborts
// that call's requests, and leaves other pending calls and later calls working.
//
// The panic comes from a separate test build with the `panic-probe` cargo feature
// (scripts/build.sh --panic-probe, cached in target/panic-probe/pkg and rebuilt when
// the sources are newer). Its hidden export armPanicProbe(ms) makes the next run
// panic ms after it starts, and the next aggregate panic at once. The last test
// checks that the shipped package has no such export.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { launchChromium } from "../support/chromium.mjs";
import { installProcessGuard, assertInvariants } from "../support/invariants.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { startWorker } from "../support/workerd.mjs";
import { openaiOk, startScriptedServer } from "../support/scripted-server.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PROBE_PKG = path.join(ROOT, "target/panic-probe/pkg");
const PROBE_WASM = path.join(PROBE_PKG, "wasm/parallel_task_executor_bg.wasm");

/** Returns the newest modification time of the files a build depends on. */
function newestSource() {
  const times = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else times.push(statSync(full).mtimeMs);
    }
  };
  walk(path.join(ROOT, "src"));
  for (const file of ["Cargo.toml", "Cargo.lock", "scripts/build.sh"]) {
    times.push(statSync(path.join(ROOT, file)).mtimeMs);
  }
  for (const file of readdirSync(path.join(ROOT, "pkg"))) {
    if (file.endsWith(".js")) times.push(statSync(path.join(ROOT, "pkg", file)).mtimeMs);
  }
  return Math.max(...times);
}

function ensureProbeBuild() {
  let built = 0;
  try {
    built = statSync(PROBE_WASM).mtimeMs;
  } catch {
    // Not built yet.
  }
  if (built < newestSource()) {
    execFileSync(path.join(ROOT, "scripts/build.sh"), ["--panic-probe"], { stdio: "inherit", timeout: 15 * 60_000 });
  }
}

let probe;
let glue;
let server;
let provider;
let guard;
let uninstallLoopback;

before(async () => {
  ensureProbeBuild();
  probe = await import(pathToFileURL(path.join(PROBE_PKG, "node.js")).href);
  // The same module instance that the probe package's core.js uses.
  glue = await import(pathToFileURL(path.join(PROBE_PKG, "wasm/parallel_task_executor.js")).href);
  uninstallLoopback = installLoopbackGuard();
  server = await startScriptedServer();
  provider = probe.openai({ baseURL: `${server.url}/v1`, model: "scripted" });
});

after(async () => {
  await server?.close();
  uninstallLoopback?.();
});

beforeEach(async () => {
  await server.waitFor(() => server.stats().inFlight === 0);
  server.reset();
  server.setDefault(null);
  guard = installProcessGuard();
});

afterEach(async () => {
  await guard.assertClean();
  guard.uninstall();
});

function subtasks(prefix, count) {
  return Array.from({ length: count }, (_, k) => ({ id: `${prefix}${k}`, prompt: `${prefix} part ${k}` }));
}

function settle(promise) {
  return promise.then(
    (value) => ({ value, at: server.now() }),
    (error) => ({ error, at: server.now() }),
  );
}

test("panic in a run rejects it and spares the others", async () => {
  // Runs A and B get replies after 300 ms, and the panicking run's requests would take 5 s.
  server.setDefault((record) => {
    const prompt = record.body.messages.at(-1).content;
    return openaiOk(`done: ${prompt}`, { delayMs: prompt.startsWith("p ") ? 5_000 : 300 });
  });
  const optionsA = { provider, subtasks: subtasks("a", 3), concurrency: 3 };
  const optionsB = { provider, subtasks: subtasks("b", 3), concurrency: 3 };
  const optionsP = { provider, subtasks: subtasks("p", 3), concurrency: 3 };
  const runA = settle(probe.section(optionsA));
  const runB = settle(probe.section(optionsB));
  glue.armPanicProbe(100);
  const runP = settle(probe.section(optionsP));

  const panicked = await runP;
  assert.ok(panicked.error, "the panicking run rejects");
  assert.equal(panicked.error.code, "INTERNAL_ERROR");
  assert.ok(panicked.error instanceof Error);
  assert.match(panicked.error.message, /panic probe/);
  assert.match(panicked.error.message, /bug/);
  assert.equal(panicked.error.cause?.name, "PanicError");

  // The panicking run's requests were aborted when its future was dropped.
  const own = server.requests().filter((record) => record.body.messages.at(-1).content.startsWith("p "));
  assert.equal(own.length, 3);
  await server.waitFor(() => own.every((record) => record.closedAt !== null), { timeoutMs: 1_000 });
  for (const record of own) {
    assert.equal(record.outcome, "client-closed", `request ${record.seq}`);
    assert.ok(record.clientClosedAt - panicked.at <= 200, `request ${record.seq} closed ${record.clientClosedAt - panicked.at} ms late`);
  }

  for (const [run, options] of [[await runA, optionsA], [await runB, optionsB]]) {
    assert.equal(run.error, undefined, run.error?.message);
    assert.deepEqual(run.value.results.map((result) => result.status), ["ok", "ok", "ok"]);
    // Three runs of concurrency 3 shared the server.
    await assertInvariants({ outcome: run.value, options, server, settledAt: run.at, concurrency: 9 });
  }

  // The module still works: a new run after the panic.
  const next = await probe.complete({ provider, prompt: "after the panic" });
  assert.equal(next.text, "done: after the panic");
});

test("panic in a synchronous export throws and the next call works", () => {
  glue.armPanicProbe(0);
  assert.throws(
    () => probe.aggregate(["42", "42"], { extract: "number" }),
    (error) => error.code === "INTERNAL_ERROR" && error.cause?.name === "PanicError" && /panic probe/.test(error.message),
  );
  assert.equal(probe.aggregate(["42", "42.0", "41"], { extract: "number" }).winner, "42");
});

test("providers made before a panic keep working", async () => {
  glue.armPanicProbe(0);
  const failed = await settle(probe.complete({ provider, prompt: "panics" }));
  assert.equal(failed.error?.code, "INTERNAL_ERROR");
  const vote = await probe.vote({ provider, prompt: "after", voters: 3, extract: "text" });
  assert.equal(vote.winner, "ok");
  assert.equal(vote.samples.length, 3);
});

/** A reply after 2 s for "panics", 300 ms for "slow other", else at once. */
function delayedByPrompt(record) {
  const prompt = record.body.messages.at(-1).content;
  const delayMs = { panics: 2_000, "slow other": 300 }[prompt] ?? 0;
  return openaiOk(`done: ${prompt}`, { delayMs });
}

// The same steps in each runtime: a slow call in flight, a call that panics, then a
// call after the panic.
const WORKER_SOURCE = `
import { complete, openai } from "./pkg/workerd.js";
import { armPanicProbe } from "./pkg/wasm/parallel_task_executor.js";

const provider = openai({ baseURL: __API_BASE__, model: "scripted" });

export default {
  async fetch() {
    const other = complete({ provider, prompt: "slow other" });
    armPanicProbe(50);
    let panicked;
    try {
      await complete({ provider, prompt: "panics" });
      panicked = { resolved: true };
    } catch (error) {
      panicked = { code: error.code, cause: error.cause?.name ?? null, message: error.message };
    }
    const after = await complete({ provider, prompt: "after" });
    return Response.json({ panicked, other: (await other).text, after: after.text });
  },
};
`;

function assertPanicOutcome(outcome) {
  assert.equal(outcome.panicked.code, "INTERNAL_ERROR", JSON.stringify(outcome.panicked));
  assert.equal(outcome.panicked.cause, "PanicError");
  assert.match(outcome.panicked.message, /panic probe/);
  assert.equal(outcome.other, "done: slow other");
  assert.equal(outcome.after, "done: after");
}

test("panic settles calls in workerd", async (t) => {
  server.setDefault(delayedByPrompt);
  const entry = path.join(ROOT, "target/panic-probe/panic-worker.js");
  writeFileSync(entry, WORKER_SOURCE);
  const worker = await startWorker(entry, { define: { __API_BASE__: `${server.url}/v1` } });
  t.after(() => worker.dispose());
  const response = await worker.dispatchFetch("/");
  assertPanicOutcome(await response.json());
  assert.deepEqual(worker.errorLines(), []);
  const panicking = server.requests().find((record) => record.body.messages.at(-1).content === "panics");
  await server.waitFor(() => panicking.closedAt !== null, { timeoutMs: 1_000 });
  assert.equal(panicking.outcome, "client-closed");
});

test("panic settles calls in Chromium", async (t) => {
  const site = await startScriptedServer({ staticRoutes: { "/pkg": PROBE_PKG } });
  t.after(() => site.close());
  site.setDefault(delayedByPrompt);
  const browser = await launchChromium();
  t.after(() => browser.close());
  await browser.page.goto(`${site.url}/pkg/package.json`);
  const outcome = await browser.page.evaluate(async (baseURL) => {
    const { complete, openai } = await import("/pkg/browser.js");
    const { armPanicProbe } = await import("/pkg/wasm/parallel_task_executor.js");
    const provider = openai({ baseURL, model: "scripted" });
    const other = complete({ provider, prompt: "slow other" });
    armPanicProbe(50);
    let panicked;
    try {
      await complete({ provider, prompt: "panics" });
      panicked = { resolved: true };
    } catch (error) {
      panicked = { code: error.code, cause: error.cause?.name ?? null, message: error.message };
    }
    const after = await complete({ provider, prompt: "after" });
    return { panicked, other: (await other).text, after: after.text };
  }, `${site.url}/v1`);
  assertPanicOutcome(outcome);
  // The page is a JSON file, so Chromium's request for /favicon.ico gets a 404.
  assert.deepEqual(browser.errors.filter((error) => !error.url?.endsWith("/favicon.ico")), []);
});

test("shipped package unwinds and has no probe", async () => {
  const glueText = readFileSync(path.join(ROOT, "pkg/wasm/parallel_task_executor.js"), "utf8");
  assert.doesNotMatch(glueText, /panicprobe/i);
  assert.match(glueText, /class PanicError/, "the shipped glue comes from a panic=unwind build");
  const module = new WebAssembly.Module(readFileSync(path.join(ROOT, "pkg/wasm/parallel_task_executor_bg.wasm")));
  const names = WebAssembly.Module.exports(module).map((entry) => entry.name);
  assert.ok(names.length > 0);
  assert.deepEqual(names.filter((name) => /probe/i.test(name)), []);
  const probeNames = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(PROBE_WASM))).map((entry) => entry.name);
  assert.ok(probeNames.some((name) => /probe/i.test(name)), "the probe build has the probe export, so the check above can fail");
});
