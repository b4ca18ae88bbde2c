// Starts and stops ogx (the OpenAI-compatible server that was Llama Stack) as a
// local peer of the OpenAI Batch API and Anthropic Message Batches, with its
// inference pointed at an OpenAI-compatible chat server on 127.0.0.1 (the scripted
// server in tests). ogx serves /v1/files, /v1/batches and /v1/messages/batches;
// each batch line goes to the upstream's /v1/chat/completions (the `remote::openai`
// provider translates Anthropic requests to that API).
//
// startOgx() runs install.sh first (idempotent, under a second once installed).
// When no Python 3.12 or later can be found, it rejects with an error whose code
// is "OGX_UNAVAILABLE", so tests can skip with the reason instead of failing.
//
// The model is registered as "stub-model" of the provider "stub", so requests name
// it "stub/stub-model" (ogx's batch validation looks the name up in its registry).
// The upstream gets the model name "stub".
//
// Cleanup: a process "exit" hook kills every ogx server that was started and not
// yet stopped, and stop() removes its state directory.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_ROOT = path.resolve(SCRIPT_DIR, "..", "..");
const HEALTH_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 4_000;

/** The model name that requests to ogx use. */
export const OGX_MODEL = "stub/stub-model";

const running = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // The child has already exited.
      }
    }
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Runs install.sh; rejects with code OGX_UNAVAILABLE when no Python 3.12 exists. */
function install(root, log) {
  const script = path.join(root, "scripts", "ogx", "install.sh");
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk) => {
      const text = chunk.toString("utf8");
      output += text;
      for (const line of text.split("\n")) if (line.trim() !== "") log(line);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("error", (error) => reject(new Error(`failed to run ${script}: ${error.message}`)));
    child.once("close", (code) => {
      if (code === 0) {
        resolve();
        return;
      }
      const error = new Error(`${script} exited with status ${code}: ${output.trim()}`);
      if (code === 2) error.code = "OGX_UNAVAILABLE";
      reject(error);
    });
  });
}

function config({ upstream, port, state, concurrency }) {
  // Indented YAML: ogx reads ${env.X} itself, but plain paths are simpler here.
  return `version: 2
distro_name: ptx-batch-tests
apis: [batches, files, inference, messages, models]
providers:
  inference:
  - provider_id: stub
    provider_type: remote::openai
    config: {base_url: "${upstream}/v1", api_key: not-a-key}
  files:
  - provider_id: localfs
    provider_type: inline::localfs
    config:
      storage_dir: ${state}/files
      metadata_store: {table_name: files_metadata, backend: sql_default}
  messages:
  - provider_id: builtin
    provider_type: inline::builtin
    config: {kvstore: {namespace: message_batches, backend: kv_default}, max_concurrent_requests_per_batch: ${concurrency}}
  batches:
  - provider_id: reference
    provider_type: inline::reference
    config: {sqlstore: {table_name: batches, backend: sql_default}, max_concurrent_batches: 1, max_concurrent_requests_per_batch: ${concurrency}}
storage:
  backends:
    kv_default: {type: kv_sqlite, db_path: "${state}/kvstore.db"}
    sql_default: {type: sql_sqlite, db_path: "${state}/sql_store.db"}
  stores:
    metadata: {namespace: registry, backend: kv_default}
    inference: {table_name: inference_store, backend: sql_default}
    conversations: {table_name: openai_conversations, backend: sql_default}
    prompts: {table_name: prompts, backend: sql_default}
registered_resources:
  models:
  - {model_id: stub-model, provider_id: stub, provider_model_id: stub, model_type: llm, metadata: {}}
server: {host: 127.0.0.1, port: ${port}}
`;
}

/**
 * Installs (if needed) and starts ogx on 127.0.0.1.
 *
 * @param {object} options
 * @param {string} options.upstream base URL (without /v1) of the chat server ogx calls
 * @param {number} [options.concurrency=4] requests of one batch run at once
 * @param {string} [options.root] repository root
 * @param {(line: string) => void} [options.log] receives install and server lines
 * @returns {Promise<{ url: string, baseURL: string, model: string, stop: () => Promise<void> }>}
 */
export async function startOgx({ upstream, concurrency = 4, root = DEFAULT_ROOT, log = () => {} }) {
  if (!/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(upstream ?? "")) {
    throw new TypeError(`startOgx: upstream must be an http://127.0.0.1:PORT URL, got ${upstream}`);
  }
  await install(root, log);
  const port = await freePort();
  const state = mkdtempSync(path.join(os.tmpdir(), "ptx-ogx-"));
  const file = path.join(state, "config.yaml");
  writeFileSync(file, config({ upstream, port, state, concurrency }));
  const ogx = path.join(root, "target", "ogx", "venv", "bin", "ogx");
  const env = {
    ...process.env,
    OTEL_SDK_DISABLED: "true",
    OGX_DISABLE_TELEMETRY: "true",
    NO_PROXY: "127.0.0.1,localhost",
  };
  const child = spawn(ogx, ["run", file, "--insecure"], { cwd: state, env, stdio: ["ignore", "pipe", "pipe"] });
  installExitHook();
  running.add(child);
  let output = "";
  const collect = (chunk) => {
    const text = chunk.toString("utf8");
    output = (output + text).slice(-OUTPUT_TAIL_CHARS);
    for (const line of text.split("\n")) if (line.trim() !== "") log(line);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  child.once("exit", () => running.delete(child));

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(state, { recursive: true, force: true });
  };

  const deadline = performance.now() + HEALTH_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`ogx exited with status ${child.exitCode} before responding:\n${output}`);
    }
    try {
      const response = await fetch(`${url}/v1/health`);
      if (response.ok) return { url, baseURL: `${url}/v1`, model: OGX_MODEL, stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`ogx did not respond to /v1/health within ${HEALTH_TIMEOUT_MS} ms:\n${output}`);
}
