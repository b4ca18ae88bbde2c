//! Answer extraction: turning a model's reply into a canonical answer string (what
//! votes are counted on) and a parsed value. A reply with no answer is an abstention,
//! never a vote for `""`.

use std::rc::Rc;

use serde_json::{json, Value};

use super::normalize::{canonical_decimal, canonical_f64, fold_text};
use crate::decode::{self, Obj, RefTable};
use crate::error::{Error, Result};
use crate::jsontext::{canonical, find_json};
use crate::transport::{HostFunction, RegexEngine};

/// How answers are read from replies.
#[derive(Clone)]
pub enum Extract {
    /// The whole reply, compared case- and space-insensitively.
    Text,
    /// The final number in the reply.
    Number,
    /// An option label (`A`–`J` by default).
    Choice(Vec<String>),
    /// A JSON value, also inside markdown fences.
    Json,
    /// A JavaScript regular expression: the `answer` group, else group 1, else the match.
    Regex {
        /// The pattern.
        pattern: String,
        /// The flags, such as `i`.
        flags: String,
    },
    /// A JSONPath subset such as `$.a.b[0]`.
    JsonPath(Vec<PathStep>),
    /// A caller's function `(text) => answer | null`.
    Function(Rc<dyn HostFunction>),
    /// A ranked ballot for Borda counts: a JSON array, or labels separated by `>`,
    /// commas or lines.
    Ranking,
}

/// One step of a JSONPath.
#[derive(Clone, Debug, PartialEq)]
pub enum PathStep {
    /// `.key` or `["key"]`.
    Key(String),
    /// `[n]`.
    Index(usize),
}

/// An extracted answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The canonical string votes are counted on.
    pub key: String,
    /// What reports show as the answer.
    pub display: String,
    /// The parsed value.
    pub value: Value,
}

/// Why no answer was extracted.
#[derive(Clone, Debug, PartialEq)]
pub enum NoAnswer {
    /// The reply was empty.
    Empty,
    /// The reply had no answer of the expected kind.
    NotFound,
    /// The extractor itself failed (a throwing function, an invalid pattern).
    Failed(String),
}

impl NoAnswer {
    /// The reason as reports show it.
    pub fn reason(&self) -> String {
        match self {
            NoAnswer::Empty => "empty".into(),
            NoAnswer::NotFound => "no-answer".into(),
            NoAnswer::Failed(_) => "extract-failed".into(),
        }
    }
}

const DEFAULT_CHOICES: [&str; 10] = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"];

impl Extract {
    /// Reads the `extract` option (and `choices`, for `"choice"`).
    pub fn decode(path: &str, value: Option<&Value>, choices: Option<&Value>, refs: &dyn RefTable, regex: &dyn RegexEngine) -> Result<Extract> {
        let Some(value) = value else { return Ok(Extract::Text) };
        if let Some(("fn", _)) = decode::marker(value) {
            return Ok(Extract::Function(decode::function(path, value, refs)?));
        }
        match value {
            Value::String(s) => match s.as_str() {
                "text" => Ok(Extract::Text),
                "number" => Ok(Extract::Number),
                "json" => Ok(Extract::Json),
                "ranking" => Ok(Extract::Ranking),
                "choice" => {
                    let labels = match choices {
                        None => DEFAULT_CHOICES.iter().map(|s| s.to_string()).collect(),
                        Some(Value::Array(items)) if !items.is_empty() => {
                            let mut out = Vec::new();
                            for (i, item) in items.iter().enumerate() {
                                let label = decode::string(&decode::index("choices", i), item)?.trim().to_string();
                                if label.is_empty() {
                                    return Err(Error::range_error(&decode::index("choices", i), "must not be empty"));
                                }
                                out.push(label);
                            }
                            out
                        }
                        Some(other) => {
                            return Err(Error::type_error("choices", format!("expected a non-empty array of labels, got {}", decode::describe(other))))
                        }
                    };
                    Ok(Extract::Choice(labels))
                }
                other => Err(Error::type_error(
                    path,
                    format!("expected \"text\", \"number\", \"choice\", \"json\", \"ranking\", {{ regex }}, {{ jsonPath }} or a function, got {other:?}"),
                )),
            },
            Value::Object(_) => {
                let o = Obj::new(path, value, &["regex", "flags", "jsonPath"])?;
                if let Some(pattern) = o.nonempty_str("regex")? {
                    let flags = o.str("flags")?.unwrap_or("").to_string();
                    regex
                        .validate(pattern, &flags)
                        .map_err(|m| Error::type_error(&o.at("regex"), format!("is not a valid JavaScript regular expression: {m}")))?;
                    return Ok(Extract::Regex { pattern: pattern.into(), flags });
                }
                if let Some(p) = o.nonempty_str("jsonPath")? {
                    return Ok(Extract::JsonPath(parse_json_path(&o.at("jsonPath"), p)?));
                }
                Err(Error::type_error(path, "expected { regex } or { jsonPath }"))
            }
            other => Err(Error::type_error(path, format!("expected a string, an object or a function, got {}", decode::describe(other)))),
        }
    }

    /// Whether answers are free text (grouped by similarity for scoring).
    pub fn is_text(&self) -> bool {
        matches!(self, Extract::Text)
    }

    /// Extracts the answer from a reply.
    pub fn extract(&self, text: &str, regex: &dyn RegexEngine) -> std::result::Result<Answer, NoAnswer> {
        if text.trim().is_empty() && !matches!(self, Extract::Function(_)) {
            return Err(NoAnswer::Empty);
        }
        match self {
            Extract::Text => {
                let display = text.trim().to_string();
                let key = fold_text(&display);
                if key.is_empty() {
                    return Err(NoAnswer::Empty);
                }
                Ok(Answer { key, value: json!(display), display })
            }
            Extract::Number => {
                let key = find_number(text).ok_or(NoAnswer::NotFound)?;
                Ok(number_answer(key))
            }
            Extract::Choice(labels) => {
                let label = find_choice(text, labels).ok_or(NoAnswer::NotFound)?;
                Ok(Answer { key: label.clone(), display: label.clone(), value: json!(label) })
            }
            Extract::Json => {
                let value = find_json(text).ok_or(NoAnswer::NotFound)?;
                Ok(json_answer(value))
            }
            Extract::JsonPath(steps) => {
                let root = find_json(text).ok_or(NoAnswer::NotFound)?;
                let value = select_path(&root, steps).ok_or(NoAnswer::NotFound)?;
                if value.is_null() {
                    return Err(NoAnswer::NotFound);
                }
                Ok(json_answer(value.clone()))
            }
            Extract::Regex { pattern, flags } => match regex.find_answer(pattern, flags, text) {
                Ok(Some(found)) => captured_answer(&found).ok_or(NoAnswer::NotFound),
                Ok(None) => Err(NoAnswer::NotFound),
                Err(m) => Err(NoAnswer::Failed(m)),
            },
            Extract::Function(f) => match f.call_sync(&json!(text)) {
                Ok(Value::Null) => Err(NoAnswer::NotFound),
                Ok(Value::String(s)) if s.trim().is_empty() => Err(NoAnswer::NotFound),
                Ok(Value::String(s)) => {
                    let display = s.trim().to_string();
                    Ok(Answer { key: display.clone(), value: json!(display), display })
                }
                Ok(Value::Number(n)) => Ok(number_answer(canonical_decimal(&n.to_string()).unwrap_or_else(|| n.to_string()))),
                Ok(Value::Bool(b)) => Ok(Answer { key: b.to_string(), display: b.to_string(), value: json!(b) }),
                Ok(other) if decode::marker(&other).is_some() => {
                    Err(NoAnswer::Failed(format!("extract returned {}", decode::describe(&other))))
                }
                Ok(other) => Ok(json_answer(other)),
                Err(e) => Err(NoAnswer::Failed(format!("extract threw: {}", e.message))),
            },
            Extract::Ranking => {
                let ranking = find_ranking(text).ok_or(NoAnswer::NotFound)?;
                let key = ranking.join(" > ");
                Ok(Answer { display: key.clone(), key, value: json!(ranking) })
            }
        }
    }

    /// Canonicalizes an answer given directly to `aggregate` as `{ answer }`.
    pub fn canonicalize(&self, answer: &Value) -> Option<Answer> {
        match (self, answer) {
            (_, Value::Null) => None,
            (Extract::Number, Value::Number(n)) => Some(number_answer(canonical_decimal(&n.to_string())?)),
            (Extract::Number, Value::String(s)) => Some(number_answer(find_number(s)?)),
            (Extract::Text, Value::String(s)) => {
                let display = s.trim().to_string();
                let key = fold_text(&display);
                (!key.is_empty()).then(|| Answer { key, value: json!(display), display })
            }
            (Extract::Ranking, Value::Array(items)) => {
                let ranking: Vec<String> = items.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| canonical(v))).collect();
                let key = ranking.join(" > ");
                (!ranking.is_empty()).then(|| Answer { display: key.clone(), key, value: json!(ranking) })
            }
            (Extract::Json | Extract::JsonPath(_), v) => Some(json_answer(v.clone())),
            (Extract::Choice(labels), Value::String(s)) => {
                let label = labels.iter().find(|l| l.eq_ignore_ascii_case(s.trim())).cloned().or_else(|| find_choice(s, labels))?;
                Some(Answer { key: label.clone(), display: label.clone(), value: json!(label) })
            }
            (Extract::Regex { .. }, Value::String(s)) => captured_answer(s),
            (_, Value::String(s)) if !s.trim().is_empty() => {
                let display = s.trim().to_string();
                Some(Answer { key: display.clone(), value: json!(display), display })
            }
            (_, Value::Number(n)) => Some(number_answer(canonical_decimal(&n.to_string())?)),
            (_, Value::Bool(b)) => Some(Answer { key: b.to_string(), display: b.to_string(), value: json!(b) }),
            (_, Value::String(_)) => None,
            (_, other) => Some(json_answer(other.clone())),
        }
    }
}

/// Canonicalizes the text a regular expression captured: a number gets its canonical
/// form ("42.0" counts as "42"), other text is compared case- and space-insensitively.
fn captured_answer(found: &str) -> Option<Answer> {
    let display = found.trim().to_string();
    if let Some(number) = canonical_decimal(&display.replace(',', "")) {
        return Some(number_answer(number));
    }
    let key = fold_text(&display);
    (!key.is_empty()).then(|| Answer { key, value: json!(display), display })
}

fn number_answer(key: String) -> Answer {
    let value = key.parse::<f64>().map(|f| json!(f)).unwrap_or(Value::Null);
    Answer { display: key.clone(), key, value }
}

fn json_answer(value: Value) -> Answer {
    let key = match &value {
        Value::String(s) => s.clone(),
        Value::Number(n) => super::normalize::canonical_number_json(n),
        other => canonical(other),
    };
    Answer { display: key.clone(), key, value }
}

/// Parses the JSONPath subset `$.a.b[0]["c d"]`.
pub fn parse_json_path(path: &str, text: &str) -> Result<Vec<PathStep>> {
    let bad = |why: &str| Error::type_error(path, format!("{text:?} is not a supported JSONPath ({why}); use the form $.a.b[0]"));
    let rest = text.trim().strip_prefix('$').ok_or_else(|| bad("it must start with $"))?;
    let mut steps = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&(_, k)) = chars.peek() {
                    if k == '.' || k == '[' {
                        break;
                    }
                    key.push(k);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(bad("an empty key"));
                }
                steps.push(PathStep::Key(key));
            }
            '[' => {
                let mut inner = String::new();
                let mut closed = false;
                let mut quote: Option<char> = None;
                for (_, k) in chars.by_ref() {
                    match quote {
                        Some(q) if k == q => quote = None,
                        Some(_) => {}
                        None if k == '"' || k == '\'' => quote = Some(k),
                        None if k == ']' => {
                            closed = true;
                            break;
                        }
                        None => {}
                    }
                    inner.push(k);
                }
                if !closed {
                    return Err(bad("a [ without ]"));
                }
                let inner = inner.trim();
                if let Ok(i) = inner.parse::<usize>() {
                    steps.push(PathStep::Index(i));
                } else if inner.len() >= 2 && (inner.starts_with('"') && inner.ends_with('"') || inner.starts_with('\'') && inner.ends_with('\'')) {
                    steps.push(PathStep::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    return Err(bad("brackets hold an index or a quoted key"));
                }
            }
            _ => return Err(bad("unexpected character")),
        }
    }
    Ok(steps)
}

/// Follows a JSONPath.
pub fn select_path<'v>(root: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
    let mut at = root;
    for step in steps {
        at = match step {
            PathStep::Key(k) => at.get(k.as_str())?,
            PathStep::Index(i) => at.get(*i)?,
        };
    }
    Some(at)
}

/// A number found in text, with its position.
struct Found {
    start: usize,
    end: usize,
    canonical: String,
}

/// Scans for numbers: an optional sign (`-`, `+`, `−`), an optional currency sign,
/// digits with optional thousands separators and a decimal part, an optional exponent.
fn numbers_in(text: &str) -> Vec<Found> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let starts_number = c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|(_, d)| d.is_ascii_digit()));
        if !starts_number {
            i += 1;
            continue;
        }
        // Skip digits glued to letters, as in "gpt4", "x2" or "v.2". The first step
        // always advances, because a number may start with a point.
        if i > 0 && chars[i - 1].1.is_alphabetic() {
            i += 1;
            while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1.is_alphabetic()) {
                i += 1;
            }
            continue;
        }
        let mut s = String::new();
        let mut j = i;
        let mut seen_point = false;
        while j < chars.len() {
            let ch = chars[j].1;
            if ch.is_ascii_digit() {
                s.push(ch);
            } else if ch == ',' && !seen_point && chars.get(j + 1).is_some_and(|(_, d)| d.is_ascii_digit())
                && chars.get(j + 2).is_some_and(|(_, d)| d.is_ascii_digit())
                && chars.get(j + 3).is_some_and(|(_, d)| d.is_ascii_digit())
                && !chars.get(j + 4).is_some_and(|(_, d)| d.is_ascii_digit())
            {
                // A thousands separator: exactly three digits follow.
            } else if ch == '.' && !seen_point && chars.get(j + 1).is_some_and(|(_, d)| d.is_ascii_digit()) {
                seen_point = true;
                s.push('.');
            } else if (ch == 'e' || ch == 'E')
                && chars.get(j + 1).is_some_and(|(_, d)| d.is_ascii_digit() || ((*d == '-' || *d == '+') && chars.get(j + 2).is_some_and(|(_, e)| e.is_ascii_digit())))
                && !chars.get(j + 1).is_some_and(|(_, d)| d.is_alphabetic())
            {
                s.push('e');
                j += 1;
                s.push(chars[j].1);
                j += 1;
                while j < chars.len() && chars[j].1.is_ascii_digit() {
                    s.push(chars[j].1);
                    j += 1;
                }
                break;
            } else {
                break;
            }
            j += 1;
        }
        // A sign right before the number (skipping one currency sign).
        let mut k = i;
        if k > 0 && matches!(chars[k - 1].1, '$' | '€' | '£' | '¥') {
            k -= 1;
        }
        let mut negative = false;
        if k > 0 && matches!(chars[k - 1].1, '-' | '−' | '–') {
            // Not a range or a subtraction: "3-4" keeps 4 positive.
            if k < 2 || !chars[k - 2].1.is_ascii_digit() {
                negative = true;
            }
        }
        let end = chars.get(j).map_or(text.len(), |(p, _)| *p);
        if let Some(canonical) = canonical_decimal(&s) {
            let canonical = if negative && canonical != "0" { format!("-{canonical}") } else { canonical };
            out.push(Found { start, end, canonical });
        }
        i = j.max(i + 1);
    }
    out
}

const UNIT_WORDS: [&str; 20] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
];

const TENS_WORDS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/// Finds spelled-out numbers from zero to ninety-nine ("four", "twenty-one", "thirty
/// two") in an ASCII-lowercased text.
fn number_words_in(lower: &str) -> Vec<Found> {
    let mut words: Vec<(usize, usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in lower.char_indices().chain(std::iter::once((lower.len(), ' '))) {
        match (c.is_ascii_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i, &lower[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let (start, end, word) = words[i];
        if let Some(unit) = UNIT_WORDS.iter().position(|w| *w == word) {
            out.push(Found { start, end, canonical: unit.to_string() });
        } else if let Some(tens) = TENS_WORDS.iter().position(|w| *w == word) {
            let value = (tens + 2) * 10;
            // "twenty-one" or "twenty one": a unit from one to nine right after.
            let next = words.get(i + 1).filter(|(s, _, _)| matches!(&lower[end..*s], "-" | " "));
            match next.and_then(|(_, e, w)| UNIT_WORDS[1..10].iter().position(|u| u == w).map(|u| (*e, u + 1))) {
                Some((e, unit)) => {
                    out.push(Found { start, end: e, canonical: (value + unit).to_string() });
                    i += 1;
                }
                None => out.push(Found { start, end, canonical: value.to_string() }),
            }
        }
        i += 1;
    }
    out
}

/// Markers after which the final answer follows, strongest first.
const ANSWER_MARKERS: &[&str] = &["final answer", "answer is", "answer:", "answer =", "####", "\\boxed{", "result is", "total is", "sum is"];
/// Weaker markers: the last statement of a value ("2+2 = 4", "equals 4").
const VALUE_MARKERS: &[&str] = &["=", "equals", "equal to"];

/// Finds the number that follows the last occurrence of any of `markers`, with at
/// most 24 bytes on the same line between them.
fn after_last_marker<'f>(lower: &str, markers: &[&str], numbers: &'f [Found]) -> Option<&'f Found> {
    let mut best: Option<(usize, &Found)> = None;
    for marker in markers {
        let wordlike = marker.starts_with(|c: char| c.is_ascii_alphabetic());
        for (pos, _) in lower.match_indices(marker) {
            let after = pos + marker.len();
            // "is" must not match inside "this", nor "be" inside "between".
            if wordlike
                && (lower[..pos].chars().next_back().is_some_and(|c| c.is_alphanumeric())
                    || lower[after..].chars().next().is_some_and(|c| c.is_alphanumeric()))
            {
                continue;
            }
            let found = numbers.iter().find(|n| n.start >= after && n.start - after <= 24 && !lower[after..n.start].contains('\n'));
            if let Some(n) = found {
                if best.is_none_or(|(p, _)| pos > p) {
                    best = Some((pos, n));
                }
            }
        }
    }
    best.map(|(_, n)| n)
}

/// Finds the final answer among the numbers of a reply: the number after the last explicit
/// answer marker ("answer is", "answer:", "####", `\boxed{`), else after the last
/// statement of a value ("=", "equals"), else the last number. A spelled-out number
/// ("four") counts after a marker, after "is" when nothing follows it ("it is four"),
/// or when it is the whole reply, so the "one" of "no one knows" is not read as 1.
pub fn find_number(text: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets, so positions in `lower` match `text`.
    let lower = text.to_ascii_lowercase();
    let digits = numbers_in(text);
    let mut all: Vec<Found> = digits.iter().map(|n| Found { start: n.start, end: n.end, canonical: n.canonical.clone() }).collect();
    all.extend(number_words_in(&lower));
    all.sort_by_key(|n| n.start);
    for markers in [ANSWER_MARKERS, VALUE_MARKERS] {
        if let Some(n) = after_last_marker(&lower, markers, &all) {
            return Some(n.canonical.clone());
        }
    }
    // "is" is too common to outrank a later number ("there is 1 apple and 2 pears, 3
    // in all"); it only admits a spelled-out number that ends the list.
    if let Some(n) = after_last_marker(&lower, &["is"], &all) {
        if all.last().is_some_and(|last| last.start == n.start) {
            return Some(n.canonical.clone());
        }
    }
    if let Some(last) = digits.last() {
        return Some(last.canonical.clone());
    }
    let words = number_words_in(&lower);
    let bare = lower.trim().trim_matches(|c: char| !c.is_ascii_alphanumeric());
    match words.as_slice() {
        [only] if &lower[only.start..only.end] == bare => Some(only.canonical.clone()),
        _ => None,
    }
}

/// Whether `c` can sit next to a choice label without making it part of a word.
fn boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| !c.is_alphanumeric())
}

/// Words that mark the label before them as the chosen option ("A is correct", "B
/// because ...") rather than an article ("A cat").
const OPTION_FOLLOWERS: &[&str] = &[
    "is", "was", "would", "should", "seems", "looks", "appears", "fits", "matches", "because", "since", "as", "and", "or",
];

/// Finds the chosen option label. Single letters count only in forms that mark an option
/// ("(B)", "B)", "B.", "B:" at a line start, "**B**", "answer is B", "option B", or the
/// whole reply), so the article "A" in a sentence is never read as option A. Among
/// several mentions, the most explicit form wins, then the last one.
pub fn find_choice(text: &str, labels: &[String]) -> Option<String> {
    let stripped: String = text.trim().trim_matches(|c: char| matches!(c, '*' | '(' | ')' | '.' | ':' | '"' | '\'' | '`' | '[' | ']')).trim().to_string();
    if let Some(label) = labels.iter().find(|l| l.eq_ignore_ascii_case(&stripped)) {
        return Some(label.clone());
    }
    let words_only = labels.iter().all(|l| l.chars().count() > 1);
    // ASCII lowercasing keeps byte offsets, so slices of `text` line up.
    let lower = text.to_ascii_lowercase();
    let mut best: Option<(usize, usize, String)> = None; // (strength, position, label)
    let mut consider = |strength: usize, pos: usize, label: &String| {
        if best.as_ref().is_none_or(|(s, p, _)| strength > *s || (strength == *s && pos > *p)) {
            best = Some((strength, pos, label.clone()));
        }
    };
    for label in labels {
        let l = label.to_ascii_lowercase();
        for (pos, _) in lower.match_indices(&l) {
            let end = pos + l.len();
            let before = lower[..pos].chars().next_back();
            let after = lower[end..].chars().next();
            if !boundary(before) || !boundary(after) {
                continue;
            }
            let single_letter = l.chars().count() == 1;
            let paren = before == Some('(') && after == Some(')');
            let bold = lower[..pos].ends_with("**") && lower[end..].starts_with("**");
            if paren || bold {
                consider(3, pos, label);
                continue;
            }
            // "the answer is a tough one": a single letter followed by a word is an
            // article or a pronoun unless the word marks an option.
            if single_letter && reads_as_word(text, end) {
                continue;
            }
            let head = lower[..pos].trim_end().trim_end_matches(['*', ':']).trim_end();
            let marked = ["answer is", "answer", "option", "choice", "choose", "pick", "select", "option is", "choice is", "would be", "correct one is"]
                .iter()
                .any(|m| head.ends_with(m) && boundary(head[..head.len() - m.len()].chars().next_back()));
            if marked {
                consider(4, pos, label);
                continue;
            }
            let line_start = lower[..pos].rsplit('\n').next().is_some_and(|l| l.trim_start_matches(['*', '-', ' ', '\t']).is_empty());
            let closing = matches!(after, Some(')' | '.' | ':')) || (words_only && matches!(after, None | Some(',' | '!')));
            if line_start && closing {
                consider(2, pos, label);
            } else if words_only || text[pos..end].chars().all(char::is_uppercase) {
                consider(1, pos, label);
            }
        }
    }
    best.map(|(_, _, l)| l)
}

/// Checks whether the text after a single-letter label at `end` makes it a word of a
/// sentence ("A cat", "I think", "a tough one") rather than an option ("A is correct").
fn reads_as_word(text: &str, end: usize) -> bool {
    let Some(rest) = text[end..].strip_prefix(' ') else { return false };
    let word: String = rest.chars().take_while(|c| c.is_alphabetic()).collect();
    !word.is_empty() && !OPTION_FOLLOWERS.contains(&word.to_lowercase().as_str())
}

/// A ranked ballot: a JSON array of labels, or labels separated by `>`, commas or
/// numbered lines.
pub fn find_ranking(text: &str) -> Option<Vec<String>> {
    if let Some(Value::Array(items)) = find_json(text) {
        let out: Vec<String> = items.iter().filter_map(|v| v.as_str().map(|s| s.trim().to_string()).or_else(|| v.as_f64().map(canonical_f64))).filter(|s| !s.is_empty()).collect();
        if !out.is_empty() {
            return Some(dedup(out));
        }
    }
    let line = text.trim();
    let parts: Vec<String> = if line.contains('>') {
        line.split('>').map(clean_label).collect()
    } else if line.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        line.lines().map(clean_label).collect()
    } else {
        line.split(',').map(clean_label).collect()
    };
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    (!parts.is_empty()).then(|| dedup(parts))
}

fn clean_label(s: &str) -> String {
    let t = s.trim();
    let t = t.trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ')' | '-' | '*' | ' '));
    t.trim().trim_matches(|c: char| matches!(c, '"' | '\'' | '*' | '.')).trim().to_string()
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&item)) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_replies() {
        for (text, want) in [
            ("42", "42"),
            ("42.0", "42"),
            ("The answer is 42.", "42"),
            ("$1,234.50", "1234.5"),
            ("It costs $1,234.50 in total", "1234.5"),
            ("\u{2212}7 degrees", "-7"),
            ("2+2 is equal to 4.", "4"),
            ("2 + 2 = 4", "4"),
            ("17+25=32", "32"),
            ("The answer is 42. I counted 3 times.", "42"),
            ("Final answer: 12", "12"),
            ("#### 72", "72"),
            ("\\boxed{3.50}", "3.5"),
            ("I think the answer is four", "4"),
            ("Between 3-4 hours, so 4", "4"),
            ("1e3", "1000"),
            ("Using gpt4 the result is 7", "7"),
            ("Use v.2 for 3", "3"),
            ("-0.0", "0"),
            ("It is four.", "4"),
            ("twenty-one", "21"),
            ("The answer is thirty two", "32"),
            ("There is 1 apple and 2 pears, 3 in all", "3"),
            ("2+2 is equal to 4 (in base 10)", "4"),
            ("This 3 apples cost 5", "5"),
            ("The answer is 42 (not 41)", "42"),
            ("x = 3, y = 4, so x + y = 7", "7"),
            ("-3.5", "-3.5"),
            ("1,000,000", "1000000"),
            ("Answer: 1e-3", "0.001"),
            ("The result is -0.50", "-0.5"),
            ("Temperature dropped to \u{2212}12\u{b0}C", "-12"),
            ("What is 2+2? 2 + 2 = 4", "4"),
            ("\u{130}stanbul has 15 million people", "15"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
        for text in ["no digits here", "No one knows", "I can't say", "", "x.5", "build v.2."] {
            assert_eq!(find_number(text), None, "{text:?}");
        }
    }

    #[test]
    fn choice_ignores_article() {
        let labels: Vec<String> = DEFAULT_CHOICES.iter().map(|s| s.to_string()).collect();
        for (text, want) in [
            ("B", Some("B")),
            ("(C)", Some("C")),
            ("The answer is D.", Some("D")),
            ("A cat sat on the mat, so the answer is (B)", Some("B")),
            ("A good choice here is C.", Some("C")),
            ("I think it is a tough one", None),
            ("A. Paris\nB. London\nAnswer: A", Some("A")),
            ("**E**", Some("E")),
            ("Option b", Some("B")),
            ("the answer is a tough one", None),
            ("A is correct.", Some("A")),
            ("The answer is A because it fits", Some("A")),
            ("B) London", Some("B")),
            ("I pick c", Some("C")),
            ("**Answer:** D", Some("D")),
            ("I would say A cat is not an option, so (C)", Some("C")),
        ] {
            assert_eq!(find_choice(text, &labels).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn word_choices() {
        let labels = vec!["yes".to_string(), "no".to_string()];
        assert_eq!(find_choice("Yes.", &labels).as_deref(), Some("yes"));
        assert_eq!(find_choice("I would say no, it is not", &labels).as_deref(), Some("no"));
        assert_eq!(find_choice("nothing", &labels), None);
        assert_eq!(find_choice("Yes, no doubt.", &labels).as_deref(), Some("yes"));
        assert_eq!(find_choice("No, the answer is yes", &labels).as_deref(), Some("yes"));
    }

    #[test]
    fn regex_captures_are_canonical() {
        assert_eq!(captured_answer(" 42.0 ").unwrap().key, "42");
        assert_eq!(captured_answer("1,234.50").unwrap().key, "1234.5");
        let a = captured_answer("Yes").unwrap();
        assert_eq!(a.key, "yes");
        assert_eq!(a.display, "Yes");
        assert_eq!(captured_answer("  "), None);
    }

    #[test]
    fn given_answers_canonicalize_like_extracted_ones() {
        let choice = Extract::Choice(DEFAULT_CHOICES.iter().map(|s| s.to_string()).collect());
        assert_eq!(choice.canonicalize(&json!("b")).unwrap().key, "B");
        assert_eq!(Extract::Number.canonicalize(&json!("42.0")).unwrap().key, "42");
        assert_eq!(Extract::Number.canonicalize(&json!(42.5)).unwrap().key, "42.5");
        assert_eq!(Extract::Text.canonicalize(&json!("  Paris. ")).unwrap().key, "paris");
        assert_eq!(Extract::Json.canonicalize(&json!({ "b": 1, "a": 2.0 })).unwrap().key, "{\"a\":2,\"b\":1}");
        assert_eq!(Extract::Text.canonicalize(&json!(null)), None);
    }

    #[test]
    fn json_path_subset() {
        let steps = parse_json_path("p", "$.a.b[0][\"c d\"]").unwrap();
        assert_eq!(steps, vec![PathStep::Key("a".into()), PathStep::Key("b".into()), PathStep::Index(0), PathStep::Key("c d".into())]);
        let v = json!({ "a": { "b": [{ "c d": 5 }] } });
        assert_eq!(select_path(&v, &steps), Some(&json!(5)));
        assert!(parse_json_path("p", "a.b").is_err());
    }

    #[test]
    fn rankings() {
        assert_eq!(find_ranking("B > A > C"), Some(vec!["B".into(), "A".into(), "C".into()]));
        assert_eq!(find_ranking("[\"x\", \"y\"]"), Some(vec!["x".into(), "y".into()]));
        assert_eq!(find_ranking("1. B\n2. A"), Some(vec!["B".into(), "A".into()]));
    }

    #[test]
    fn empty_reply_abstains() {
        assert_eq!(Extract::Number.extract("   ", &crate::sim::TestRegex), Err(NoAnswer::Empty));
        assert_eq!(Extract::Number.extract("nothing", &crate::sim::TestRegex), Err(NoAnswer::NotFound));
    }

    #[test]
    fn json_answers_are_canonical() {
        let a = Extract::Json.extract("```json\n{\"b\": 1.0, \"a\": 2}\n```", &crate::sim::TestRegex).unwrap();
        assert_eq!(a.key, "{\"a\":2,\"b\":1}");
    }
}
