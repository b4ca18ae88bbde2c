// Merging section outputs against the scripted server. JSON is found bare, in fences
// and after prose, and deep-merged in declaration order whatever the arrival order,
// with each conflict reported. Also keyed and ordered merges, and a synthesis call
// whose prompt names the missing outputs.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { section } from "parallel-task-executor";
import { openaiError, openaiOk } from "../support/scripted-server.mjs";
import { promptOf, provider, server, useScriptedProvider } from "../support/scripted-provider.mjs";

// Raw worker outputs: JSON in a json fence after prose with a backtick, bare JSON
// with backticks inside a string, and JSON in an untagged fence followed by prose.
const W0 = 'Here is `the` result:\n```json\n{"title": "Q3 report", "risks": ["fx"]}\n```';
const W1 = '{"code": "use `print` function", "risks": ["supply"]}';
const W2 = '```\n{"title": "Q3 summary", "owner": "ops"}\n```\nLet me know if you need more.';
const OUTPUTS = [W0, W1, W2];

useScriptedProvider({ settleMs: 0 });

const workers = [0, 1, 2].map((k) => ({ id: `w${k}`, prompt: `worker ${k}: answer in JSON` }));

/** Makes each worker respond with its raw output after the delay given for it. */
function answerAfter(delays) {
  server.setDefault((record) => {
    const k = Number(promptOf(record).split(" ")[1].replace(":", ""));
    return openaiOk(OUTPUTS[k], { delayMs: delays[k] });
  });
}

function randomDelays() {
  return OUTPUTS.map(() => Math.floor(Math.random() * 60));
}

function arrivalOrder() {
  return server
    .requests()
    .sort((a, b) => a.finishedAt - b.finishedAt)
    .map((r) => promptOf(r).slice(0, 8));
}

test("JSON merge reads every output form", async () => {
  // Completion order w2, w0, w1.
  answerAfter([40, 80, 0]);
  const report = await section({ provider, subtasks: workers, merge: "json", conflicts: "collect" });
  assert.deepEqual(arrivalOrder(), ["worker 2", "worker 0", "worker 1"]);
  assert.deepEqual(report.output, {
    title: ["Q3 report", "Q3 summary"],
    risks: ["fx", "supply"],
    code: "use `print` function",
    owner: "ops",
  });
  assert.deepEqual(report.conflicts, [
    {
      path: "$.title",
      values: [
        { subtask: "w0", subtasks: ["w0"], value: "Q3 report" },
        { subtask: "w2", subtasks: ["w2"], value: "Q3 summary" },
      ],
      resolution: "collect",
    },
  ]);
  // A loaded machine may add a low-parallelism warning; the merge itself warns of nothing.
  assert.deepEqual(report.warnings.filter((w) => w.code !== "low-parallelism"), []);
});

for (const policy of ["collect", "first", "last"]) {
  test(`JSON merge with "${policy}" is identical over 20 runs`, async () => {
    const outputs = new Set();
    const conflicts = new Set();
    const orders = new Set();
    for (let run = 0; run < 20; run += 1) {
      server.reset();
      answerAfter(randomDelays());
      const report = await section({ provider, subtasks: workers, merge: "json", conflicts: policy });
      outputs.add(JSON.stringify(report.output));
      conflicts.add(JSON.stringify(report.conflicts));
      orders.add(arrivalOrder().join());
    }
    assert.equal(outputs.size, 1, [...outputs].join("\n"));
    assert.equal(conflicts.size, 1);
    const output = JSON.parse([...outputs][0]);
    assert.deepEqual(output.risks, ["fx", "supply"]);
    assert.equal(output.code, "use `print` function");
    const expectedTitle = { collect: ["Q3 report", "Q3 summary"], first: "Q3 report", last: "Q3 summary" }[policy];
    assert.deepEqual(output.title, expectedTitle);
    // The runs saw more than one arrival order, so the order was really tested.
    assert.ok(orders.size > 1, `only one arrival order: ${[...orders]}`);
  });
}

test("JSON merge conflict error names the key and sections", async () => {
  for (let run = 0; run < 5; run += 1) {
    server.reset();
    answerAfter(randomDelays());
    const error = await section({ provider, subtasks: workers, merge: "json", conflicts: "error" }).then(
      () => assert.fail("the merge should reject"),
      (error_) => error_,
    );
    assert.equal(error.code, "MERGE_CONFLICT");
    assert.match(error.message, /\$\.title/);
    assert.match(error.message, /"w0" and "w2"/);
    assert.equal(error.conflicts[0].path, "$.title");
    const { report } = error;
    assert.deepEqual(
      report.results.map((r) => r.status),
      ["ok", "ok", "ok"],
    );
    assert.equal(report.results[1].text, W1);
    assert.equal(report.conflicts[0].path, "$.title");
  }
});

test("output without JSON is left out with a warning", async () => {
  server.setDefault((record) => openaiOk(promptOf(record).startsWith("worker 1") ? "no structured data, sorry" : W0));
  const report = await section({ provider, subtasks: workers.slice(0, 2), merge: "json" });
  assert.deepEqual(report.output, { title: "Q3 report", risks: ["fx"] });
  // A loaded machine may add a low-parallelism warning; only the JSON one matters here.
  const notJson = report.warnings.filter((w) => w.code === "not-json");
  assert.equal(notJson.length, 1);
  assert.match(notJson[0].message, /"w1"/);
});

test("keyed merge maps ids to outputs", async () => {
  server.setDefault((record) => openaiOk(`text of ${promptOf(record).slice(0, 8)}`, { delayMs: 30 - 10 * Number(promptOf(record)[7]) }));
  const report = await section({ provider, subtasks: workers, merge: "keyed" });
  assert.deepEqual(report.output, { w0: "text of worker 0", w1: "text of worker 1", w2: "text of worker 2" });
  assert.deepEqual(Object.keys(report.output), ["w0", "w1", "w2"]);
});

test("ordered merge uses the separator and skips failures", async () => {
  server.script([{ match: { contains: "worker 1" }, respond: openaiError(400, "bad param") }]);
  server.setDefault((record) => openaiOk(`part ${promptOf(record)[7]}`));
  const report = await section({ provider, subtasks: workers, merge: "ordered", separator: "\n---\n" });
  assert.equal(report.output, "part 0\n---\npart 2");
});

test("synthesis call receives outputs and names the missing", async () => {
  server.script([{ match: { contains: "worker 1" }, respond: openaiError(400, "bad param") }]);
  server.script([{ match: { contains: "Write one report" }, respond: openaiOk("the combined report") }]);
  server.setDefault((record) => openaiOk(`part ${promptOf(record)[7]}`));
  const report = await section({
    provider,
    subtasks: workers,
    merge: { synthesize: { prompt: "Write one report from these parts:\n{{outputs}}" } },
  });
  assert.equal(report.output, "the combined report");
  assert.deepEqual(
    report.results.map((r) => r.status),
    ["ok", "failed", "ok"],
  );
  const synthesis = server.requests().find((r) => promptOf(r).startsWith("Write one report"));
  const prompt = promptOf(synthesis);
  assert.match(prompt, /<output id="w0">\npart 0\n<\/output>/);
  assert.match(prompt, /<output id="w2">\npart 2\n<\/output>/);
  assert.doesNotMatch(prompt, /id="w1"/);
  assert.match(prompt, /missing because their subtasks did not succeed: w1/);
  assert.deepEqual(report.synthesis.missing, ["w1"]);
  assert.equal(report.synthesis.status, "ok");
  assert.ok(synthesis.receivedAt >= Math.max(...server.requests().filter((r) => r !== synthesis).map((r) => r.finishedAt)));
});
