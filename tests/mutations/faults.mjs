// Named faults for scripts/mutate.sh. Each replaces one exact piece of source in a
// copy of the repository, and lists the test files that must fail once it is in.
// A fault whose `find` text no longer occurs is reported as stale, not skipped
// silently.
//
// Usage: node tests/mutations/faults.mjs list
//        node tests/mutations/faults.mjs tests NAME
//        node tests/mutations/faults.mjs apply NAME COPY_ROOT

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export const FAULTS = [
  {
    name: "ignore-retry-after",
    about: "the scheduler ignores Retry-After and retry-after-ms",
    file: "src/provider/http.rs",
    find: "pub fn retry_after_ms(response: &dyn HttpResponse, epoch_now: f64) -> Option<f64> {\n",
    replace: "pub fn retry_after_ms(response: &dyn HttpResponse, epoch_now: f64) -> Option<f64> {\n    if epoch_now.is_finite() {\n        return None;\n    }\n",
    tests: ["tests/js/reliability-faults.test.mjs", "tests/js/scheduler-retry.test.mjs"],
  },
  {
    name: "keep-losing-samples",
    about: "a decided vote never aborts its outstanding samples",
    file: "src/voting/mod.rs",
    find: "    drop(pool);\n    let at = run.elapsed();",
    replace: "    std::mem::forget(pool);\n    let at = run.elapsed();",
    tests: ["tests/js/reliability-faults.test.mjs", "tests/js/vote-scripted.test.mjs"],
  },
  {
    name: "retry-400",
    about: "a 400 Bad Request is retried",
    file: "src/provider/http.rs",
    find: "matches!(status, 408 | 409 | 429)",
    replace: "matches!(status, 400 | 408 | 409 | 429)",
    tests: ["tests/js/scheduler-retry.test.mjs", "tests/js/provider-http.test.mjs"],
  },
  {
    name: "count-red-flagged",
    about: "a red-flagged reply is counted as a vote",
    file: "src/voting/result.rs",
    find: "        if let Some(reason) = opts.red_flags.check(&response) {\n            self.status = Some(SampleStatus::RedFlagged);\n            self.reason = Some(reason);\n            return;\n        }\n",
    replace: "        let _ = opts.red_flags.check(&response);\n",
    tests: ["tests/js/vote-scripted.test.mjs", "tests/js/aggregate-rules.test.mjs"],
  },
  {
    name: "leak-api-key",
    about: "the redactor leaves the API key in place",
    file: "src/error.rs",
    find: "    pub fn redact(&self, text: &str) -> String {\n",
    replace: "    pub fn redact(&self, text: &str) -> String {\n        if !text.is_empty() {\n            return text.to_string();\n        }\n",
    tests: ["tests/js/provider-http.test.mjs", "tests/js/key-in-error-fields.test.mjs"],
  },
  {
    name: "ignore-concurrency",
    about: "the concurrency limit is ignored",
    file: "src/schedule/limiter.rs",
    find: "if state.in_use < state.limit && state.waiters.is_empty() {",
    replace: "if state.in_use < usize::MAX {",
    tests: ["tests/js/reliability-faults.test.mjs", "tests/js/scheduler-limits.test.mjs"],
  },
  {
    name: "expand-output-placeholders",
    about: "placeholders inside an inserted output are expanded too",
    file: "src/task.rs",
    find: "            out.push_str(&value);\n",
    replace:
      "            let mut expanded = value.clone();\n            for inner in placeholders(&value) {\n                if let Some(more) = lookup(&inner.name) {\n                    expanded = expanded.replacen(&value[inner.range.clone()], &more, 1);\n                }\n            }\n            out.push_str(&expanded);\n",
    tests: ["tests/js/reliability-untrusted.test.mjs", "tests/js/section-plan.test.mjs"],
  },
];

function fault(name) {
  const found = FAULTS.find((f) => f.name === name);
  if (!found) throw new Error(`unknown fault ${name}; the faults are ${FAULTS.map((f) => f.name).join(", ")}`);
  return found;
}

/** Applies a fault to the copy at root. Throws if the source no longer has the text. */
export function apply(name, root) {
  const f = fault(name);
  const file = path.join(root, f.file);
  const source = readFileSync(file, "utf8");
  const count = source.split(f.find).length - 1;
  if (count !== 1) throw new Error(`fault ${name} is stale: its text occurs ${count} times in ${f.file}, expected once`);
  writeFileSync(file, source.replace(f.find, f.replace));
}

const [command, name, root] = process.argv.slice(2);
if (command === "list") {
  for (const f of FAULTS) console.log(`${f.name}\t${f.about}`);
} else if (command === "tests") {
  console.log(fault(name).tests.join(" "));
} else if (command === "apply") {
  apply(name, root);
} else if (command !== undefined) {
  console.error(`unknown command ${command}; use list, tests NAME or apply NAME COPY_ROOT`);
  process.exit(2);
}
