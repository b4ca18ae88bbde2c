//! What to ask a model: a prompt or a list of messages, and a system prompt. Shared
//! by `complete`, subtasks and voters.

use serde_json::Value;

use crate::decode::{self, Obj};
use crate::error::{Error, Result};
use crate::provider::{CallRequest, Message};

/// The input of one call before any placeholder is filled in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Input {
    /// The conversation; a `prompt` is one user message.
    pub messages: Vec<Message>,
    /// The system prompt.
    pub system: Option<String>,
}

impl Input {
    /// Reads `prompt` or `messages` (exactly one is required unless `optional`) and
    /// `system` from an options object.
    pub fn decode(o: &Obj<'_>, optional: bool) -> Result<Option<Input>> {
        let system = o.nonempty_str("system")?.map(str::to_string);
        let prompt = o.get("prompt");
        let messages = o.get("messages");
        match (prompt, messages) {
            (Some(_), Some(_)) => Err(Error::type_error(
                &o.at("prompt"),
                "pass either `prompt` or `messages`, not both",
            )),
            (Some(_), None) => {
                let text = o.required_str("prompt")?;
                Ok(Some(Input { messages: vec![Message { role: "user".into(), content: text.into() }], system }))
            }
            (None, Some(list)) => Ok(Some(Input { messages: decode_messages(&o.at("messages"), list)?, system })),
            (None, None) if optional => Ok(system.map(|s| Input { messages: Vec::new(), system: Some(s) })),
            (None, None) => Err(Error::type_error(
                &o.at("prompt"),
                "is required; pass `prompt` (a string) or `messages` (an array of { role, content })",
            )),
        }
    }

    /// The request for this input.
    pub fn request(&self) -> CallRequest {
        CallRequest { messages: self.messages.clone(), system: self.system.clone(), ..Default::default() }
    }

    /// Every text of the input, for placeholder scanning.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.messages.iter().map(|m| m.content.as_str()).chain(self.system.as_deref())
    }
}

/// Reads `[{ role: "user" | "assistant", content }]`.
pub fn decode_messages(path: &str, value: &Value) -> Result<Vec<Message>> {
    let Value::Array(items) = value else {
        return Err(Error::type_error(path, format!("expected an array of {{ role, content }}, got {}", decode::describe(value))));
    };
    if items.is_empty() {
        return Err(Error::range_error(path, "must not be empty; pass at least one { role: \"user\", content }"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = decode::index(path, i);
        let m = Obj::new(&p, item, &["role", "content"])?;
        let role = m.required_str("role")?;
        if role == "system" {
            return Err(Error::type_error(
                &m.at("role"),
                "\"system\" is not a message role here; pass the system prompt as the `system` option",
            ));
        }
        if role != "user" && role != "assistant" {
            return Err(Error::type_error(&m.at("role"), format!("expected \"user\" or \"assistant\", got {role:?}")));
        }
        let content = m.str("content")?.ok_or_else(|| Error::type_error(&m.at("content"), "is required; pass the message text"))?;
        out.push(Message { role: role.into(), content: content.into() });
    }
    if out.last().is_some_and(|m| m.role != "user") {
        return Err(Error::type_error(
            &decode::index(path, out.len() - 1),
            "the last message must have role \"user\"",
        ));
    }
    Ok(out)
}

/// A `{{name}}` placeholder found in a text.
#[derive(Clone, Debug, PartialEq)]
pub struct Placeholder {
    /// The name between the braces.
    pub name: String,
    /// Byte range of the whole `{{name}}`.
    pub range: std::ops::Range<usize>,
}

/// Whether `name` can be a subtask id: `[A-Za-z0-9_-]+`.
pub fn is_id(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Finds `{{id}}` placeholders (ids as [`is_id`] allows; spaces inside the braces are
/// allowed) in a text.
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| i + from) {
        let Some(close) = text[open + 2..].find("}}").map(|i| i + open + 2) else { break };
        let name = text[open + 2..close].trim();
        if is_id(name) {
            out.push(Placeholder { name: name.into(), range: open..close + 2 });
            from = close + 2;
        } else {
            from = open + 2;
        }
    }
    out
}

/// Replaces each placeholder whose name `lookup` knows, in one pass: text inserted
/// for one placeholder is never scanned again, so an output that contains `{{x}}`
/// stays literal.
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text) {
        if let Some(value) = lookup(&p.name) {
            out.push_str(&text[last..p.range.start]);
            out.push_str(&value);
            last = p.range.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_placeholders_with_spaces() {
        let p = placeholders("use {{schema}} and {{ api }} but not {{two words}} or {{}}");
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["schema", "api"]);
    }

    #[test]
    fn substitution_happens_once() {
        let out = substitute("A={{a}} B={{b}}", &|n| match n {
            "a" => Some("{{b}}".into()),
            "b" => Some("bee".into()),
            _ => None,
        });
        assert_eq!(out, "A={{b}} B=bee");
    }

    #[test]
    fn unknown_placeholders_stay() {
        assert_eq!(substitute("x {{zz}}", &|_| None), "x {{zz}}");
    }

    #[test]
    fn system_role_is_rejected_with_hint() {
        let err = decode_messages("messages", &json!([{ "role": "system", "content": "x" }])).unwrap_err();
        assert!(err.message.contains("`system` option"), "{}", err.message);
    }

    #[test]
    fn prompt_and_messages_are_exclusive() {
        let v = json!({ "prompt": "a", "messages": [{ "role": "user", "content": "b" }] });
        let o = Obj::new("", &v, &["prompt", "messages", "system"]).unwrap();
        assert!(Input::decode(&o, false).is_err());
    }
}
