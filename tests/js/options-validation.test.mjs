// Bad options from JavaScript: every entry point rejects them before any request,
// with INVALID_OPTIONS (or the dependency codes), the JS class that convention asks
// for (TypeError for a wrong type or an unknown key, RangeError for a value out of
// range), and a message that starts with the option's path and names the value
// expected.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { aggregate, anthropic, complete, createLimiter, custom, openai, section, vote } from "parallel-task-executor";
import { installProcessGuard } from "../support/invariants.mjs";
import { installLoopbackGuard } from "../support/loopback-guard.mjs";
import { startScriptedServer } from "../support/scripted-server.mjs";

let server;
let provider;
let baseURL;
let guard;
let uninstallLoopback;

before(async () => {
  uninstallLoopback = installLoopbackGuard();
  server = await startScriptedServer();
  baseURL = `${server.url}/v1`;
  provider = openai({ baseURL, model: "scripted" });
  guard = installProcessGuard();
});

after(async () => {
  await guard.assertClean();
  guard.uninstall();
  await server.close();
  uninstallLoopback();
});

beforeEach(() => {
  server.reset();
  server.setDefault(null);
});

class Settings {
  constructor() {
    this.prompt = "hi";
  }
}

const TYPE = "TypeError";
const RANGE = "RangeError";

/**
 * Each case: a name, a call returning a promise or a value (or throwing), and what the
 * error must be: its class, code (INVALID_OPTIONS unless given), the path the message
 * starts with, and a pattern for the expected value the message names.
 */
function cases() {
  const p = provider;
  const task = { provider: p, prompt: "task" };
  const one = [{ id: "a", prompt: "A" }];
  const score = (criteria, passScore = 50) => ({ score: { criteria, passScore } });
  return [
    // complete and the run options every run shares
    ["complete without options", () => complete(), TYPE, "options", /expected an object/],
    ["complete with a class instance", () => complete(new Settings()), TYPE, "options", /instance of Settings/],
    ["complete without a prompt", () => complete({ provider: p }), TYPE, "prompt", /prompt.*messages/],
    ["complete with an empty prompt", () => complete({ provider: p, prompt: "" }), RANGE, "prompt", /non-empty string/],
    ["complete with a blank prompt", () => complete({ provider: p, prompt: "   " }), RANGE, "prompt", /non-empty string/],
    ["complete with a numeric prompt", () => complete({ provider: p, prompt: 42 }), TYPE, "prompt", /expected a string/],
    ["complete without a provider", () => complete({ prompt: "x" }), TYPE, "provider", /provider/],
    ["complete with a plain-object provider", () => complete({ provider: { baseURL }, prompt: "x" }), TYPE, "provider", /openai\(\)/],
    ["complete with a Date provider", () => complete({ provider: new Date(), prompt: "x" }), TYPE, "provider", /openai\(\)/],
    ["zero concurrency", () => complete({ ...task, concurrency: 0 }), RANGE, "concurrency", /integer from 1/],
    ["negative concurrency", () => complete({ ...task, concurrency: -3 }), RANGE, "concurrency", /integer from 1/],
    ["fractional concurrency", () => complete({ ...task, concurrency: 1.5 }), TYPE, "concurrency", /integer/],
    ["NaN concurrency", () => complete({ ...task, concurrency: Number.NaN }), TYPE, "concurrency", /NaN.*finite number/],
    ["Infinity concurrency", () => complete({ ...task, concurrency: Number.POSITIVE_INFINITY }), TYPE, "concurrency", /Infinity/],
    ["BigInt concurrency", () => complete({ ...task, concurrency: 3n }), TYPE, "concurrency", /BigInt 3n/],
    ["string concurrency", () => complete({ ...task, concurrency: "3" }), TYPE, "concurrency", /expected a number/],
    ["negative maxRetries", () => complete({ ...task, maxRetries: -1 }), RANGE, "maxRetries", /integer from 0/],
    ["zero maxRequests", () => complete({ ...task, maxRequests: 0 }), RANGE, "maxRequests", /integer from 1/],
    ["negative timeoutMs", () => complete({ ...task, timeoutMs: -5 }), RANGE, "timeoutMs", /from/],
    ["zero deadlineMs", () => complete({ ...task, deadlineMs: 0 }), RANGE, "deadlineMs", /from/],
    ["negative retry delay", () => complete({ ...task, retry: { baseDelayMs: -1 } }), RANGE, "retry.baseDelayMs", /from 0/],
    ["unknown retry key", () => complete({ ...task, retry: { base: 5 } }), TYPE, "retry.base", /unknown option/],
    ["zero token budget", () => complete({ ...task, budget: { tokens: 0 } }), RANGE, "budget.tokens", /from 1/],
    ["negative cost budget", () => complete({ ...task, budget: { costUsd: -1 } }), RANGE, "budget.costUsd", /from 0/],
    ["string signal", () => complete({ ...task, signal: "stop" }), TYPE, "signal", /AbortSignal/],
    ["numeric onEvent", () => complete({ ...task, onEvent: 5 }), TYPE, "onEvent", /function/],
    ["string limiter", () => complete({ ...task, limiter: "shared" }), TYPE, "limiter", /createLimiter/],
    ["snake-case key", () => complete({ ...task, max_tokens: 5 }), TYPE, "max_tokens", /`maxTokens` is a provider option/],
    ["misspelled key", () => complete({ ...task, concurency: 2 }), TYPE, "concurency", /did you mean `concurrency`\?/],
    ["unrelated key", () => complete({ ...task, zzz: 1 }), TYPE, "zzz", /allowed options are/],
    ["system role message", () => complete({ provider: p, messages: [{ role: "system", content: "x" }] }), TYPE, "messages[0].role", /`system` option/],
    ["assistant-last messages", () => complete({ provider: p, messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }] }), TYPE, "messages[1]", /role "user"/],
    ["empty messages", () => complete({ provider: p, messages: [] }), RANGE, "messages", /at least one/],

    // section
    ["section without subtasks", () => section({ provider: p }), TYPE, "subtasks", /array/],
    ["section with empty subtasks", () => section({ provider: p, subtasks: [] }), RANGE, "subtasks", /at least one/],
    ["subtasks as an object", () => section({ provider: p, subtasks: { a: "x" } }), TYPE, "subtasks", /array/],
    ["subtask without an id", () => section({ provider: p, subtasks: [{ prompt: "x" }] }), TYPE, "subtasks[0].id", /is required/],
    ["subtask with a spaced id", () => section({ provider: p, subtasks: [{ id: "a b", prompt: "x" }] }), TYPE, "subtasks[0].id", /letters, digits, `_` and `-`/],
    ["subtask with an empty prompt", () => section({ provider: p, subtasks: [{ id: "a", prompt: "" }] }), RANGE, "subtasks[0].prompt", /non-empty string/],
    ["duplicate subtask ids", () => section({ provider: p, subtasks: [...one, { id: "a", prompt: "B" }] }), TYPE, "subtasks[1].id", /"a"/],
    ["unknown subtask key", () => section({ provider: p, subtasks: [{ id: "a", prompt: "x", depends: ["b"] }] }), TYPE, "subtasks[0].depends", /did you mean `dependsOn`\?/],
    ["unknown dependency", () => section({ provider: p, subtasks: [{ id: "a", prompt: "x", dependsOn: ["zz"] }] }), Error, "subtasks[0].dependsOn[0]", /no subtask has that id/, "UNKNOWN_DEPENDENCY"],
    ["unknown placeholder", () => section({ provider: p, subtasks: [{ id: "a", prompt: "uses {{zz}}" }] }), Error, "subtasks[0].prompt", /"zz", but no subtask has that id/, "UNKNOWN_DEPENDENCY"],
    ["dependency cycle", () => section({ provider: p, subtasks: [{ id: "a", prompt: "{{b}}" }, { id: "b", prompt: "{{a}}" }] }), Error, "subtasks", /a.*b|b.*a/, "DEPENDENCY_CYCLE"],
    ["unknown merge", () => section({ provider: p, subtasks: one, merge: "concat" }), TYPE, "merge", /"ordered", "keyed", "json"/],
    ["unknown conflict policy", () => section({ provider: p, subtasks: one, merge: "json", conflicts: "newest" }), TYPE, "conflicts", /"collect", "first", "last" or "error"/],
    ["unknown failure policy", () => section({ provider: p, subtasks: one, failure: "ignore" }), TYPE, "failure", /"fail-fast", "settle" or \{ minSuccesses \}/],
    ["zero minSuccesses", () => section({ provider: p, subtasks: one, failure: { minSuccesses: 0 } }), RANGE, "failure.minSuccesses", /pass at least 1/],
    ["minSuccesses above the count", () => section({ provider: p, subtasks: one, failure: { minSuccesses: 2 } }), RANGE, "failure.minSuccesses", /only 1 subtasks.*lower it/],
    ["synthesize without a prompt", () => section({ provider: p, subtasks: one, merge: { synthesize: {} } }), TYPE, "merge.synthesize.prompt", /is required/],

    // vote
    ["zero voters", () => vote({ ...task, voters: 0 }), RANGE, "voters", /integer from 1/],
    ["negative voters", () => vote({ ...task, voters: -2 }), RANGE, "voters", /integer from 1/],
    ["fractional voters", () => vote({ ...task, voters: 2.5 }), TYPE, "voters", /integer/],
    ["NaN voters", () => vote({ ...task, voters: Number.NaN }), TYPE, "voters", /NaN/],
    ["BigInt voters", () => vote({ ...task, voters: 5n }), TYPE, "voters", /BigInt 5n/],
    ["empty voter list", () => vote({ ...task, voters: [] }), RANGE, "voters", /at least one/],
    ["negative voter weight", () => vote({ ...task, voters: [{ weight: -1 }] }), RANGE, "voters[0].weight", /from 0/],
    ["unknown voter key", () => vote({ ...task, voters: [{ nmae: "a" }] }), TYPE, "voters[0].nmae", /did you mean `name`\?/],
    ["vote without a prompt", () => vote({ provider: p, voters: 3 }), TYPE, "prompt", /prompt/],
    ["vote with an empty prompt", () => vote({ provider: p, prompt: "", voters: 3 }), RANGE, "prompt", /non-empty string/],
    ["unknown rule name", () => vote({ ...task, voters: 3, rule: "supermajority" }), TYPE, "rule", /"plurality", "majority"/],
    ["unknown rule key", () => vote({ ...task, voters: 3, rule: { aheadOf: 2 } }), TYPE, "rule", /\{ aheadBy \}/],
    ["zero aheadBy", () => vote({ ...task, voters: 3, rule: { aheadBy: 0 } }), RANGE, "rule.aheadBy", /from 1/],
    ["null aheadBy", () => vote({ ...task, voters: 3, rule: { aheadBy: null } }), TYPE, "rule.aheadBy", /is required/],
    ["null firstTo", () => vote({ ...task, voters: 3, rule: { firstTo: null } }), TYPE, "rule.firstTo", /is required/],
    ["null score", () => vote({ ...task, voters: 3, rule: { score: null } }), TYPE, "rule.score", /criteria, passScore/],
    ["unreachable atLeast", () => vote({ ...task, voters: 3, rule: { atLeast: 4 } }), RANGE, "rule.atLeast", /never be reached/],
    ["negative criterion weight", () => vote({ ...task, voters: 3, rule: score([{ name: "a", weight: -1 }]) }), RANGE, "rule.score.criteria[0].weight", /from 0/],
    ["all-zero criterion weights", () => vote({ ...task, voters: 3, rule: score([{ name: "a", weight: 0 }, { name: "b", weight: 0 }]) }), RANGE, "rule.score.criteria", /positive weight/],
    ["passScore above 100", () => vote({ ...task, voters: 3, rule: score([{ name: "a", weight: 1 }], 101) }), RANGE, "rule.score.passScore", /from 0 to 100/],
    ["negative passScore", () => vote({ ...task, voters: 3, rule: score([{ name: "a", weight: 1 }], -1) }), RANGE, "rule.score.passScore", /from 0 to 100/],
    ["NaN passScore", () => vote({ ...task, voters: 3, rule: score([{ name: "a", weight: 1 }], Number.NaN) }), TYPE, "rule.score.passScore", /NaN/],
    ["unknown extractor", () => vote({ ...task, voters: 3, extract: "digits" }), TYPE, "extract", /"text", "number", "choice"/],
    ["invalid regex", () => vote({ ...task, voters: 3, extract: { regex: "(" } }), TYPE, "extract.regex", /regular expression/],
    ["invalid JSONPath", () => vote({ ...task, voters: 3, extract: { jsonPath: "a.b" } }), TYPE, "extract.jsonPath", /\$\.a\.b\[0\]/],
    ["maxSamples below voters", () => vote({ ...task, voters: 3, rule: { aheadBy: 2 }, maxSamples: 2 }), RANGE, "maxSamples", /below the 3 samples/],
    ["maxSamples on a fixed rule", () => vote({ ...task, voters: 3, maxSamples: 5 }), RANGE, "maxSamples", /adaptive rules/],
    ["unknown tie policy", () => vote({ ...task, voters: 3, tie: "random" }), TYPE, "tie", /"none", "first" or "error"/],
    ["similarity above 1", () => vote({ ...task, voters: 3, similarity: 2 }), RANGE, "similarity", /from 0 to 1/],
    ["choices without choice extraction", () => vote({ ...task, voters: 3, choices: ["A", "B"] }), TYPE, "choices", /extract: "choice"/],
    ["zero maxOutputTokens", () => vote({ ...task, voters: 3, redFlags: { maxOutputTokens: 0 } }), RANGE, "redFlags.maxOutputTokens", /from 1/],
    ["judge without a score rule", () => vote({ ...task, voters: 3, judge: p }), TYPE, "judge", /score/],

    // aggregate (synchronous: it throws)
    ["aggregate of a string", () => aggregate("42"), TYPE, "answers", /array/],
    ["aggregate of BigInts", () => aggregate([42n]), TYPE, "answers[0]", /BigInt/],
    ["aggregate with a Map", () => aggregate([new Map()]), TYPE, "answers[0]", /Map/],
    ["aggregate answer and text", () => aggregate([{ answer: "a", text: "b" }]), TYPE, "answers[0]", /either `answer`.*or `text`/],
    ["aggregate negative weight", () => aggregate([{ answer: "a", weight: -1 }]), RANGE, "answers[0].weight", /from 0/],
    ["aggregate unknown option", () => aggregate(["a"], { max_samples: 2 }), TYPE, "max_samples", /allowed options|did you mean/],
    ["aggregate unknown rule", () => aggregate(["a"], { rule: "best" }), TYPE, "rule", /"plurality"/],
    ["aggregate zero atLeast", () => aggregate(["a"], { rule: { atLeast: 0 } }), RANGE, "rule.atLeast", /from 1/],
    ["aggregate all-zero weights", () => aggregate(["a"], { rule: score([{ name: "a", weight: 0 }]) }), RANGE, "rule.score.criteria", /positive weight/],
    ["aggregate options as an array", () => aggregate(["a"], ["number"]), TYPE, "options", /expected an object/],

    // provider constructors and createLimiter (synchronous: they throw)
    ["openai without options", () => openai(), TYPE, "openai.model", /is required/],
    ["openai with a class instance", () => openai(new Settings()), TYPE, "openai", /instance of Settings/],
    ["openai with a non-http baseURL", () => openai({ model: "m", baseURL: "ftp://x" }), TYPE, "openai.baseURL", /http\(s\) URL/],
    ["openai temperature above 2", () => openai({ model: "m", baseURL, temperature: 3 }), RANGE, "openai.temperature", /from 0 to 2/],
    ["openai NaN topP", () => openai({ model: "m", baseURL, topP: Number.NaN }), TYPE, "openai.topP", /NaN/],
    ["openai zero maxTokens", () => openai({ model: "m", baseURL, maxTokens: 0 }), RANGE, "openai.maxTokens", /from 1/],
    ["openai BigInt seed", () => openai({ model: "m", baseURL, seed: 2n ** 60n }), TYPE, "openai.seed", /BigInt/],
    ["openai snake-case key", () => openai({ model: "m", baseURL, max_tokens: 5 }), TYPE, "openai.max_tokens", /did you mean `maxTokens`\?/],
    ["openai numeric header", () => openai({ model: "m", baseURL, headers: { "x-id": 1 } }), TYPE, "openai.headers.x-id", /expected a string/],
    ["openai string fetch", () => openai({ model: "m", baseURL, fetch: "fetch" }), TYPE, "openai.fetch", /function/],
    ["openai negative price", () => openai({ model: "m", baseURL, prices: { input: -1, output: 1 } }), RANGE, "openai.prices.input", /from 0/],
    ["anthropic without apiKey", () => anthropic({ model: "m", maxTokens: 10 }), TYPE, "anthropic.apiKey", /is required/],
    ["anthropic without maxTokens", () => anthropic({ apiKey: "k", model: "m" }), TYPE, "anthropic.maxTokens", /is required/],
    ["custom without a function", () => custom("nope"), TYPE, "custom", /expected a function/],
    ["custom negative temperature", () => custom(() => ({ text: "x" }), { temperature: -1 }), RANGE, "custom.temperature", /from 0/],
    ["createLimiter of zero", () => createLimiter(0), RANGE, "createLimiter(concurrency)", /integer from 1/],
    ["createLimiter of NaN", () => createLimiter(Number.NaN), TYPE, "createLimiter(concurrency)", /positive integer, got NaN/],
    ["createLimiter of a BigInt", () => createLimiter(2n), TYPE, "createLimiter(concurrency)", /got a BigInt/],
    ["createLimiter of a string", () => createLimiter("2"), TYPE, "createLimiter(concurrency)", /positive integer/],
  ];
}

async function outcomeOf(call) {
  try {
    const value = await call();
    return { value };
  } catch (error) {
    return { error };
  }
}

test("bad options are rejected before any request", async (t) => {
  for (const [name, call, errorClass, path, expected, code = "INVALID_OPTIONS"] of cases()) {
    await t.test(name, async () => {
      const { value, error } = await outcomeOf(call);
      assert.ok(error, `accepted: ${JSON.stringify(value)?.slice(0, 200)}`);
      const className = typeof errorClass === "string" ? errorClass : errorClass.name;
      assert.equal(error.constructor.name, className, error.message);
      assert.equal(error.code, code, error.message);
      assert.ok(error.message.startsWith(`${path}:`) || error.message.startsWith(`${path} `), `the message names ${path}: ${error.message}`);
      if (code === "INVALID_OPTIONS") assert.equal(error.path, path);
      assert.match(error.message, expected);
      assert.equal(server.stats().count, 0, "no request was sent");
    });
  }
});

test("rejections are Errors that do not leak the API key", async () => {
  const secret = "sk-test-0123456789abcdef";
  const keyed = openai({ baseURL, model: "scripted", apiKey: secret });
  const { error } = await outcomeOf(() => complete({ provider: keyed, prompt: "x", concurrency: -1 }));
  assert.ok(error instanceof RangeError);
  assert.doesNotMatch(`${error.message} ${JSON.stringify(error)} ${error.stack}`, /0123456789abcdef/);
  assert.equal(server.stats().count, 0);
});
