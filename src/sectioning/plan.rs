//! A sectioning plan: subtasks, their dependencies (explicit `dependsOn` and `{{id}}`
//! placeholders), and the checks that run before any request.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::decode::{self, Obj};
use crate::error::{Code, Error, Result};
use crate::provider::Provider;
use crate::registry;
use crate::task::{is_id, placeholders, Input};

/// One subtask.
pub struct Subtask {
    /// Its id, `[A-Za-z0-9_-]+`.
    pub id: String,
    /// What to ask.
    pub input: Input,
    /// Indexes of the subtasks it depends on, in declaration order.
    pub deps: Vec<usize>,
    /// Whether its failure counts against the failure policy.
    pub required: bool,
    /// Its provider.
    pub provider: Rc<Provider>,
    /// Overrides the provider's temperature.
    pub temperature: Option<f64>,
}

/// A validated plan.
pub struct Plan {
    /// Subtasks in declaration order.
    pub subtasks: Vec<Subtask>,
    /// Indexes of the subtasks that depend on each subtask.
    pub dependents: Vec<Vec<usize>>,
    /// Topological levels: level 0 has no dependencies, level k depends on level k-1
    /// at most.
    pub phases: Vec<Vec<usize>>,
}

const SUBTASK_OPTIONS: &[&str] =
    &["id", "prompt", "messages", "system", "dependsOn", "required", "provider", "temperature"];

impl Plan {
    /// Reads and checks `subtasks`: ids, providers, dependencies, and cycles.
    pub fn decode(list: &Value, default_provider: Option<&Rc<Provider>>) -> Result<Plan> {
        let path = "subtasks";
        let Value::Array(items) = list else {
            return Err(Error::type_error(path, format!("expected an array of subtasks, got {}", decode::describe(list))));
        };
        if items.is_empty() {
            return Err(Error::range_error(path, "must not be empty; pass at least one { id, prompt }"));
        }
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut ids_in_order: Vec<String> = Vec::with_capacity(items.len());
        let mut raw = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = decode::index(path, i);
            let o = Obj::new(&p, item, SUBTASK_OPTIONS)?;
            let id = match o.get("id") {
                None => return Err(Error::type_error(&o.at("id"), "is required; give each subtask an id such as \"summary\"")),
                Some(v) => decode::string(&o.at("id"), v)?,
            };
            if !is_id(id) {
                return Err(Error::type_error(
                    &o.at("id"),
                    format!("{id:?} is not a valid id; use letters, digits, `_` and `-` only"),
                ));
            }
            if let Some(first) = index_of.insert(id.to_string(), i) {
                return Err(Error::type_error(
                    &o.at("id"),
                    format!("duplicate id {id:?}, also used by subtasks[{first}]; ids must be unique"),
                )
                .with_detail("ids", json!([id])));
            }
            let provider = match o.get("provider") {
                Some(v) => registry::provider(&o.at("provider"), v)?,
                None => default_provider.cloned().ok_or_else(|| {
                    Error::type_error(&o.at("provider"), "is required when the run has no `provider`; pass one here or at the top level")
                })?,
            };
            let input = Input::decode(&o, false)?.expect("input is required");
            let mut explicit = Vec::new();
            if let Some(list) = o.array("dependsOn")? {
                for (j, dep) in list.iter().enumerate() {
                    explicit.push(decode::string(&decode::index(&o.at("dependsOn"), j), dep)?.to_string());
                }
            }
            // Where each text of the input sits, for the path in a dependency error.
            let mut text_paths: Vec<String> = match o.get("prompt") {
                Some(_) => vec![o.at("prompt")],
                None => (0..input.messages.len()).map(|k| format!("{}.content", decode::index(&o.at("messages"), k))).collect(),
            };
            if input.system.is_some() {
                text_paths.push(o.at("system"));
            }
            raw.push((p, id.to_string(), input, text_paths, explicit, o.bool("required")?.unwrap_or(true), provider, o.number("temperature", 0.0, 2.0)?));
            ids_in_order.push(id.to_string());
        }

        let mut subtasks = Vec::with_capacity(raw.len());
        for (i, (p, id, input, text_paths, explicit, required, provider, temperature)) in raw.into_iter().enumerate() {
            let mut deps: Vec<usize> = Vec::new();
            let mut add = |name: &str, from: &str| -> Result<()> {
                match index_of.get(name) {
                    Some(&j) if j == i => Err(Error::new(
                        Code::DependencyCycle,
                        format!("{from}: subtask {id:?} depends on itself; a subtask cannot use its own output"),
                    )
                    .with_detail("cycle", json!([id, id]))
                    .with_detail("path", json!(from))),
                    Some(&j) => {
                        if !deps.contains(&j) {
                            deps.push(j);
                        }
                        Ok(())
                    }
                    None => {
                        let ids: Vec<&str> = ids_in_order.iter().map(String::as_str).collect();
                        let hint = match decode::suggest(name, &ids) {
                            Some(s) => format!("; did you mean {s:?}?"),
                            None => format!("; the ids are {}", ids.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ")),
                        };
                        Err(Error::new(
                            Code::UnknownDependency,
                            format!("{from}: subtask {id:?} depends on {name:?}, but no subtask has that id{hint}"),
                        )
                        .with_detail("ids", json!([id, name]))
                        .with_detail("path", json!(from)))
                    }
                }
            };
            for (j, name) in explicit.iter().enumerate() {
                add(name, &decode::index(&format!("{p}.dependsOn"), j))?;
            }
            for (text, text_path) in input.texts().zip(&text_paths) {
                for ph in placeholders(text) {
                    add(&ph.name, &format!("{text_path} ({{{{{}}}}} placeholder)", ph.name))?;
                }
            }
            deps.sort_unstable();
            subtasks.push(Subtask { id, input, deps, required, provider, temperature });
        }

        let mut dependents = vec![Vec::new(); subtasks.len()];
        for (i, s) in subtasks.iter().enumerate() {
            for &d in &s.deps {
                dependents[d].push(i);
            }
        }
        let phases = levels(&subtasks)?;
        Ok(Plan { subtasks, dependents, phases })
    }

    /// The plan's phases as ids.
    pub fn phases_json(&self) -> Value {
        Value::Array(
            self.phases
                .iter()
                .map(|level| Value::Array(level.iter().map(|&i| json!(self.subtasks[i].id)).collect()))
                .collect(),
        )
    }

    /// Finds the chain of dependent subtasks with the maximum total of `duration(i)`,
    /// and returns that total and the chain in run order. Ties go to the subtask
    /// declared first.
    pub fn critical_path(&self, duration: &dyn Fn(usize) -> f64) -> (f64, Vec<usize>) {
        let n = self.subtasks.len();
        let mut finish = vec![0.0f64; n];
        let mut via: Vec<Option<usize>> = vec![None; n];
        for level in &self.phases {
            for &i in level {
                let mut start = 0.0;
                for &d in &self.subtasks[i].deps {
                    if via[i].is_none() || finish[d] > start {
                        start = finish[d];
                        via[i] = Some(d);
                    }
                }
                finish[i] = start + duration(i);
            }
        }
        let Some(mut last) = (0..n).reduce(|best, i| if finish[i] > finish[best] { i } else { best }) else {
            return (0.0, Vec::new());
        };
        let total = finish[last];
        let mut path = vec![last];
        while let Some(d) = via[last] {
            path.push(d);
            last = d;
        }
        path.reverse();
        (total, path)
    }
}

/// Topological levels (Kahn's algorithm); a cycle is reported with its ids in order.
fn levels(subtasks: &[Subtask]) -> Result<Vec<Vec<usize>>> {
    let n = subtasks.len();
    let mut level = vec![usize::MAX; n];
    let mut remaining: Vec<usize> = subtasks.iter().map(|s| s.deps.len()).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, s) in subtasks.iter().enumerate() {
        for &d in &s.deps {
            dependents[d].push(i);
        }
    }
    let mut current: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut phases = Vec::new();
    let mut placed = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            level[i] = phases.len();
            placed += 1;
            for &j in &dependents[i] {
                remaining[j] -= 1;
                if remaining[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        phases.push(std::mem::take(&mut current));
        current = next;
    }
    if placed == n {
        return Ok(phases);
    }
    // Walk dependencies from an unplaced subtask until one repeats: that is a cycle.
    let start = (0..n).find(|&i| level[i] == usize::MAX).expect("an unplaced subtask exists");
    let mut seen = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut at = start;
    while seen[at] == usize::MAX {
        seen[at] = path.len();
        path.push(at);
        at = *subtasks[at].deps.iter().find(|&&d| level[d] == usize::MAX).expect("an unplaced subtask has an unplaced dependency");
    }
    // `path` follows "depends on" edges, so each id in the cycle depends on the next.
    let mut cycle: Vec<&str> = path[seen[at]..].iter().map(|&i| subtasks[i].id.as_str()).collect();
    cycle.push(cycle[0]);
    let links: Vec<String> = cycle.windows(2).map(|w| format!("{:?} depends on {:?}", w[0], w[1])).collect();
    Err(Error::new(
        Code::DependencyCycle,
        format!(
            "subtasks depend on each other in a cycle ({}): {}; remove one of these dependencies",
            cycle.join(" -> "),
            links.join(", ")
        ),
    )
    .with_detail("cycle", json!(cycle)))
}
