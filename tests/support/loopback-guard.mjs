// Keeps tests on the loopback interface: while the guard is installed, a
// globalThis.fetch call to an http: or https: URL whose host is not
// 127.0.0.1, localhost or [::1] rejects and is recorded. Other schemes
// (data:, blob:) pass through because they open no connection.
// Only fetch is wrapped; node:http and node:net calls are not checked.

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

const violations = [];

function requestUrl(input) {
  if (typeof input === "string") return input;
  if (input instanceof URL) return input.href;
  if (input && typeof input.url === "string") return input.url;
  return String(input);
}

/**
 * Wraps globalThis.fetch so that requests to non-loopback hosts reject with
 * `Error("test tried to reach a non-loopback host: <host>")`.
 * Returns a function that restores the fetch that was installed before.
 */
export function installLoopbackGuard() {
  const originalFetch = globalThis.fetch;
  if (typeof originalFetch !== "function") {
    throw new Error("installLoopbackGuard: globalThis.fetch is not a function");
  }

  function guardedFetch(input, init) {
    const href = requestUrl(input);
    let url;
    try {
      url = new URL(href, globalThis.location?.href);
    } catch {
      // An invalid URL gets the runtime's own TypeError.
      return originalFetch.call(this, input, init);
    }
    if ((url.protocol === "http:" || url.protocol === "https:") && !LOOPBACK_HOSTS.has(url.hostname)) {
      violations.push({ host: url.hostname, url: url.href, at: Date.now() });
      return Promise.reject(new Error(`test tried to reach a non-loopback host: ${url.hostname}`));
    }
    return originalFetch.call(this, input, init);
  }

  globalThis.fetch = guardedFetch;
  let installed = true;
  return function uninstallLoopbackGuard() {
    if (!installed) return;
    installed = false;
    if (globalThis.fetch === guardedFetch) globalThis.fetch = originalFetch;
  };
}

/** Returns the rejected requests, oldest first, as `{ host, url, at }` records. */
export function guardViolations() {
  return violations.slice();
}

/** Forgets the recorded violations. */
export function clearGuardViolations() {
  violations.length = 0;
}
