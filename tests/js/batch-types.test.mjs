// The batch declarations of index.d.ts compile against typical calls and reject
// invalid ones: each `@ts-expect-error` below must meet an error. The source is
// written to target/batch-types/ (ignored by git) and checked with the project's tsc.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = path.join(root, "target", "batch-types");

const source = `
import {anthropic, batchLimits, openai, resumeBatch, section, vote, type BatchEvent, type BatchHandle, type RunEvent} from 'parallel-task-executor';

const gpt = openai({baseURL: 'http://127.0.0.1:1/v1', model: 'm'});
const claude = anthropic({model: 'c', apiKey: 'k', maxTokens: 10});

const voted = await vote({provider: gpt, prompt: 'q', voters: 3, batch: true});
const handle: BatchHandle | undefined = voted.batch;
const unmatched: string | null | undefined = voted.batch?.unmatched[0]?.customId;
const sectioned = await section({
	provider: claude,
	subtasks: [{id: 'a', prompt: 'A'}],
	batch: {pollIntervalMs: 1000, maxPollIntervalMs: 60_000, split: false, metadata: {job: 'x'}, maxRequestsPerBatch: 100, cancelWaitMs: 0},
	onEvent(event: RunEvent) {
		if (event.type === 'batch-submitted' || event.type === 'batch-progress' || event.type === 'batch-ended') {
			const batchEvent = event as BatchEvent;
			void batchEvent.batchId;
		}
	},
});
const phases: number[] | undefined = sectioned.batch?.batches.map(b => b.phase);
const again = await resumeBatch({kind: 'section', batches: []}, {provider: claude, subtasks: [{id: 'a', prompt: 'A'}]});
const output: unknown = again.output;
const winner: string | null = (await resumeBatch({kind: 'vote', batches: []}, {provider: gpt, prompt: 'q', voters: 2})).winner;
const limit: number = batchLimits().openai.maxRequests;

// @ts-expect-error batch is a boolean or settings
await vote({provider: gpt, prompt: 'q', voters: 3, batch: 'yes'});
// @ts-expect-error an unknown batch setting
await vote({provider: gpt, prompt: 'q', voters: 3, batch: {pollInterval: 5}});
// @ts-expect-error metadata values are strings
await vote({provider: gpt, prompt: 'q', voters: 3, batch: {metadata: {n: 1}}});
// @ts-expect-error a handle's provider is openai or anthropic
await resumeBatch({kind: 'vote', batches: [{provider: 'custom', id: 'b', phase: 0, customIds: []}]}, {provider: gpt, prompt: 'q', voters: 2});
// @ts-expect-error a handle needs its batches
await resumeBatch({kind: 'vote'}, {provider: gpt, prompt: 'q', voters: 2});

void [handle, unmatched, phases, output, winner, limit];
`;

test("batch declarations compile and reject invalid calls", async () => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "batch.test-d.ts"), source);
  writeFileSync(
    path.join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, lib: ["ES2022", "DOM"], types: [] },
      files: ["batch.test-d.ts"],
    }),
  );
  const result = await promisify(execFile)(path.join(root, "node_modules", ".bin", "tsc"), ["-p", dir], { cwd: root }).catch((error) => error);
  assert.equal(result.code ?? 0, 0, `tsc reported:\n${result.stdout}${result.stderr}`);
});
