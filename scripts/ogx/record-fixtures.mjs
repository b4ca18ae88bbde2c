// Records the result files that ogx writes for a small OpenAI batch and a small
// Anthropic message batch into tests/fixtures/batch/ogx-*.jsonl, for the parser
// tests in src/batch/tests.rs. ogx runs against a scripted server on 127.0.0.1
// that answers "42" and rejects prompts containing "reject" with HTTP 400.
//
// Usage: node scripts/ogx/record-fixtures.mjs

import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { openaiError, openaiOk, startScriptedServer } from "../../tests/support/scripted-server.mjs";
import { OGX_MODEL, startOgx } from "./index.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = path.join(root, "tests", "fixtures", "batch");

async function call(url, init = {}) {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method ?? "GET"} ${url} failed with ${response.status}: ${text}`);
  return text;
}

async function waitFor(url, done) {
  for (let i = 0; i < 300; i += 1) {
    const batch = JSON.parse(await call(url));
    if (done(batch)) return batch;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not end within 30 s`);
}

const upstream = await startScriptedServer();
upstream.setDefault((record) => {
  const prompt = record.body?.messages?.at(-1)?.content ?? "";
  return prompt.includes("reject") ? openaiError(400, "the upstream rejected this prompt") : openaiOk("42");
});
const ogx = await startOgx({ upstream: upstream.url });
try {
  const prompts = ["six times seven", "reject this one", "what is 40 plus 2"];
  const jsonl = prompts
    .map((content, i) => JSON.stringify({ custom_id: `sample-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: OGX_MODEL, messages: [{ role: "user", content }] } }))
    .join("\n");
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new Blob([jsonl], { type: "application/jsonl" }), "batch.jsonl");
  const file = JSON.parse(await call(`${ogx.baseURL}/files`, { method: "POST", body: form }));
  const created = JSON.parse(
    await call(`${ogx.baseURL}/batches`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" }),
    }),
  );
  const batch = await waitFor(`${ogx.baseURL}/batches/${created.id}`, (b) => ["completed", "failed", "expired", "cancelled"].includes(b.status));
  writeFileSync(path.join(out, "ogx-openai-output.jsonl"), await call(`${ogx.baseURL}/files/${batch.output_file_id}/content`));
  writeFileSync(path.join(out, "ogx-openai-errors.jsonl"), await call(`${ogx.baseURL}/files/${batch.error_file_id}/content`));

  const requests = prompts.map((content, i) => ({ custom_id: `sample-${i}`, params: { model: OGX_MODEL, max_tokens: 16, messages: [{ role: "user", content }] } }));
  const message = JSON.parse(
    await call(`${ogx.baseURL}/messages/batches`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ requests }),
    }),
  );
  await waitFor(`${ogx.baseURL}/messages/batches/${message.id}`, (b) => b.processing_status === "ended");
  writeFileSync(path.join(out, "ogx-anthropic-results.jsonl"), await call(`${ogx.baseURL}/messages/batches/${message.id}/results`));
  console.log(`recorded ogx files in ${out}`);
} finally {
  await ogx.stop();
  await upstream.close();
}
