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
    /// The final number in the reply, as a canonical decimal. A fraction counts as its
    /// value, so "3/4", `\frac{3}{4}` and "0.75" are one answer, "0.75".
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
                if is_blank(&value) {
                    return Err(NoAnswer::NotFound);
                }
                Ok(json_answer(value))
            }
            Extract::JsonPath(steps) => {
                let root = find_json(text).ok_or(NoAnswer::NotFound)?;
                let value = select_path(&root, steps).ok_or(NoAnswer::NotFound)?;
                if value.is_null() || is_blank(value) {
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
            (Extract::Json | Extract::JsonPath(_), v) => (!is_blank(v)).then(|| json_answer(v.clone())),
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
/// form ("42.0" counts as "42", "1,234.50" as "1234.5"), other text is compared case-
/// and space-insensitively. Separators follow the rules of `"number"`, so "1,5" is not
/// one number and stays the text "1,5".
fn captured_answer(found: &str) -> Option<Answer> {
    let display = found.trim().to_string();
    if let Some(number) = whole_number(&display).or_else(|| canonical_decimal(&display)) {
        return Some(number_answer(number));
    }
    let key = fold_text(&display);
    (!key.is_empty()).then(|| Answer { key, value: json!(display), display })
}

/// Reads `text` as one number, as `numbers_in` reads it, allowing only a sign and a
/// currency sign before it. Returns the canonical form, or `None` for anything else.
fn whole_number(text: &str) -> Option<String> {
    let numbers = numbers_in(text);
    let [only] = numbers.as_slice() else { return None };
    let prefix = &text[..only.start];
    let signs_only = prefix.chars().count() <= 2 && prefix.chars().all(|c| matches!(c, '-' | '+' | '\u{2212}' | '\u{2013}' | '$' | '€' | '£' | '¥'));
    (signs_only && only.end == text.len()).then(|| only.canonical.clone())
}

fn number_answer(key: String) -> Answer {
    let value = key.parse::<f64>().map(|f| json!(f)).unwrap_or(Value::Null);
    Answer { display: key.clone(), key, value }
}

/// Whether a JSON value is an empty or blank string, which is no answer, never a vote
/// for `""`.
fn is_blank(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.trim().is_empty())
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

/// The thin space and the narrow no-break space, which group thousands in SI style
/// ("1 000"). A plain space never joins digits, so "2 3" stays two numbers.
const THIN_SPACES: [char; 2] = ['\u{2009}', '\u{202F}'];

/// A thousands separator in use within one number.
#[derive(Clone, Copy, PartialEq)]
enum Grouping {
    /// "1,234.5"
    Comma,
    /// "1.234,5" and "1.000.000"
    Dot,
    /// "1 234,5" or "1 234.5" with a thin space
    Thin,
}

/// Scans for numbers: an optional sign (`-`, `−`, `–`), an optional currency sign, digits
/// with optional thousands separators and a decimal part, an optional exponent.
///
/// - Commas group thousands only before exactly three digits ("1,234.5"). Thin spaces do
///   the same ("12 345"). Dots group thousands when a decimal comma follows ("1.234,56")
///   or when there are two or more groups ("1.000.000"). A lone "1.000" is 1.
/// - After dot or thin-space grouping, a comma is the decimal mark ("1.000,5" is 1000.5).
/// - A dotted run with two or more points that is not dot grouping ("1.2.3", an IP
///   address) is a version, not a number, and yields nothing.
/// - A fraction of two integers ("3/4", `\frac{3}{4}`) counts as its value (see
///   `fraction_decimal`). A chain such as "12/25/2023" is read as separate numbers.
fn numbers_in(text: &str) -> Vec<Found> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let digit_at = |j: usize| chars.get(j).is_some_and(|(_, d)| d.is_ascii_digit());
    let char_at = |j: usize| chars.get(j).map(|(_, c)| *c);
    let digits_from = |j: usize| (j..chars.len()).take_while(|&k| chars[k].1.is_ascii_digit()).count();
    let byte_at = |j: usize| chars.get(j).map_or(text.len(), |(p, _)| *p);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c == '\\' {
            if let Some((numerator, denominator, end)) = latex_fraction(&text[start..]) {
                if let Some(value) = fraction_decimal(&numerator, &denominator) {
                    let negative = i > 0 && matches!(chars[i - 1].1, '-' | '−' | '–');
                    out.push(Found { start, end: start + end, canonical: with_sign(value, negative) });
                    i = chars.partition_point(|(p, _)| *p < start + end);
                    continue;
                }
            }
        }
        let starts_number = c.is_ascii_digit() || (c == '.' && digit_at(i + 1));
        if !starts_number {
            i += 1;
            continue;
        }
        // Skip digits glued to letters, as in "gpt4", "x2", "v.2" or "v1.2.3". The first
        // step always advances, because a number may start with a point.
        if i > 0 && chars[i - 1].1.is_alphabetic() {
            i += 1;
            while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1.is_alphabetic() || (chars[i].1 == '.' && digit_at(i + 1))) {
                i += 1;
            }
            continue;
        }
        // `s` collects the number in plain form for `canonical_decimal`.
        let mut s = String::new();
        let mut j = i;
        let mut point = false;
        let mut exponent = false;
        let mut grouping: Option<Grouping> = None;
        let mut fraction_group = 0;
        let mut version = false;
        while j < chars.len() {
            let ch = chars[j].1;
            if ch.is_ascii_digit() {
                s.push(ch);
                fraction_group += 1;
                j += 1;
                continue;
            }
            if (ch == 'e' || ch == 'E')
                && (digit_at(j + 1) || (matches!(char_at(j + 1), Some('-' | '+')) && digit_at(j + 2)))
            {
                s.push('e');
                s.push(chars[j + 1].1);
                j += 2;
                while digit_at(j) {
                    s.push(chars[j].1);
                    j += 1;
                }
                exponent = true;
                break;
            }
            let following = digits_from(j + 1);
            if following == 0 {
                break;
            }
            let thin = THIN_SPACES.contains(&ch);
            match ch {
                ',' if !point && grouping.is_none_or(|g| g == Grouping::Comma) && following == 3 => grouping = Some(Grouping::Comma),
                ',' if !point && matches!(grouping, Some(Grouping::Dot | Grouping::Thin)) => {
                    point = true;
                    fraction_group = 0;
                    s.push('.');
                }
                '.' if !point && grouping == Some(Grouping::Dot) && following == 3 => {}
                '.' if !point && grouping.is_none() && s.len() <= 3 && dot_grouping_follows(&chars, j) => grouping = Some(Grouping::Dot),
                '.' if !point && grouping != Some(Grouping::Dot) => {
                    point = true;
                    fraction_group = 0;
                    s.push('.');
                }
                '.' if point => {
                    version = true;
                    break;
                }
                _ if thin && !point && grouping.is_none_or(|g| g == Grouping::Thin) && following == 3 => grouping = Some(Grouping::Thin),
                // SI also groups decimals in threes: "3.141 592".
                _ if thin && point && fraction_group == 3 && following <= 3 => fraction_group = 0,
                _ => break,
            }
            j += 1;
        }
        if version {
            while digit_at(j) || (char_at(j) == Some('.') && digit_at(j + 1)) {
                j += 1;
            }
            i = j;
            continue;
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
        // "3/4": two plain integers joined by a slash, not part of a chain like a date.
        let plain = !point && !exponent && grouping.is_none();
        if plain && char_at(j) == Some('/') && digit_at(j + 1) && !(i >= 2 && chars[i - 1].1 == '/' && chars[i - 2].1.is_ascii_digit()) {
            let after = j + 1 + digits_from(j + 1);
            let continues = matches!(char_at(after), Some('/' | '.' | ',')) && digit_at(after + 1);
            if !continues {
                let denominator: String = chars[j + 1..after].iter().map(|(_, d)| *d).collect();
                if let Some(value) = fraction_decimal(&s, &denominator) {
                    out.push(Found { start, end: byte_at(after), canonical: with_sign(value, negative) });
                    i = after;
                    continue;
                }
            }
        }
        if let Some(canonical) = canonical_decimal(&s) {
            out.push(Found { start, end: byte_at(j), canonical: with_sign(canonical, negative) });
        }
        i = j.max(i + 1);
    }
    out
}

/// Prefixes a minus sign to a canonical number, except to zero.
fn with_sign(canonical: String, negative: bool) -> String {
    if negative && canonical != "0" {
        format!("-{canonical}")
    } else {
        canonical
    }
}

/// Checks whether the point at `chars[at]` starts dot grouping: groups of exactly three
/// digits after each point, then either a decimal comma ("1.234,5") or the end of the
/// run after at least two groups ("1.000.000").
fn dot_grouping_follows(chars: &[(usize, char)], at: usize) -> bool {
    let digits_from = |j: usize| (j..chars.len()).take_while(|&k| chars[k].1.is_ascii_digit()).count();
    let mut k = at;
    let mut groups = 0;
    while chars.get(k).is_some_and(|(_, c)| *c == '.') && digits_from(k + 1) == 3 {
        groups += 1;
        k += 4;
    }
    let next = chars.get(k).map(|(_, c)| *c);
    let digit_after = chars.get(k + 1).is_some_and(|(_, d)| d.is_ascii_digit());
    match next {
        Some(',') if digit_after => groups >= 1,
        Some(c) if (c == '.' || THIN_SPACES.contains(&c)) && digit_after => false,
        _ => groups >= 2,
    }
}

/// Reads `\frac{3}{4}` (or `\dfrac`, `\tfrac`) at the start of `text`: the numerator
/// with an optional minus, the denominator and the byte length read.
fn latex_fraction(text: &str) -> Option<(String, String, usize)> {
    let rest = ["\\frac", "\\dfrac", "\\tfrac"].iter().find_map(|p| text.strip_prefix(p))?;
    // Only short braces are read, so a reply full of unclosed `\frac{` stays linear.
    let braced = |s: &str| -> Option<(String, usize)> {
        let trimmed = s.trim_start_matches(' ');
        let inner_start = trimmed.strip_prefix('{')?;
        let (close, _) = inner_start.char_indices().take(32).find(|(_, c)| *c == '}')?;
        let inner = inner_start[..close].trim();
        let used = s.len() - trimmed.len() + 1 + close + 1;
        Some((inner.to_string(), used))
    };
    let (numerator, used_numerator) = braced(rest)?;
    let (denominator, used_denominator) = braced(&rest[used_numerator..])?;
    let (negative, digits) = match numerator.strip_prefix(['-', '−']) {
        Some(d) => (true, d.trim().to_string()),
        None => (false, numerator),
    };
    let is_integer = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !is_integer(&digits) || !is_integer(&denominator) {
        return None;
    }
    let numerator = if negative { format!("-{digits}") } else { digits };
    Some((numerator, denominator, text.len() - rest.len() + used_numerator + used_denominator))
}

/// The value of the fraction `numerator/denominator` as a canonical decimal, or `None`
/// for a zero denominator. Every form of one fraction gets the same answer: "3/4", "6/8",
/// `\frac{3}{4}` and "0.75" all read as "0.75". When the decimal expansion ends, the
/// value is exact. Otherwise it is the shortest decimal that round-trips the `f64`
/// quotient, so "1/3" reads as "0.3333333333333333".
fn fraction_decimal(numerator: &str, denominator: &str) -> Option<String> {
    let (negative, numerator) = match numerator.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, numerator),
    };
    let value = match (numerator.parse::<u64>(), denominator.parse::<u64>()) {
        (_, Ok(0)) => return None,
        (Ok(n), Ok(d)) => exact_quotient(n, d),
        // NOTE: terms past u64 are divided as floats, so the result may differ from the
        // exact quotient in its last digits.
        _ => {
            let quotient = numerator.parse::<f64>().ok()? / denominator.parse::<f64>().ok()?;
            quotient.is_finite().then(|| canonical_f64(quotient))?
        }
    };
    Some(with_sign(value, negative))
}

/// `n / d` as a canonical decimal: exact when `d`, in lowest terms, has no prime factor
/// but 2 and 5, else the shortest round-trip form of the `f64` quotient.
fn exact_quotient(n: u64, d: u64) -> String {
    let gcd = {
        let (mut a, mut b) = (n, d);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a.max(1)
    };
    let (n, mut d) = (n / gcd, d / gcd);

    let (mut twos, mut fives) = (0u32, 0u32);
    while d % 2 == 0 {
        d /= 2;
        twos += 1;
    }
    while d % 5 == 0 {
        d /= 5;
        fives += 1;
    }
    if d != 1 {
        // NOTE: a term above 2^53 rounds to an f64 before the division, so the last
        // digit may differ from the correctly rounded quotient.
        let d = d * 2u64.pow(twos) * 5u64.pow(fives);
        return canonical_f64(n as f64 / d as f64);
    }

    // n / (2^a 5^b) = n 2^(k-a) 5^(k-b) / 10^k with k = max(a, b).
    let k = twos.max(fives);
    let mut digits = n.to_string();
    for _ in twos..k {
        digits = multiply_digits(&digits, 2);
    }
    for _ in fives..k {
        digits = multiply_digits(&digits, 5);
    }
    canonical_decimal(&format!("{digits}e-{k}")).unwrap_or(digits)
}

/// Multiplies a decimal digit string by a small factor.
fn multiply_digits(digits: &str, factor: u32) -> String {
    let mut out = Vec::with_capacity(digits.len() + 1);
    let mut carry = 0;
    for b in digits.bytes().rev() {
        let product = u32::from(b - b'0') * factor + carry;
        out.push(b'0' + (product % 10) as u8);
        carry = product / 10;
    }
    while carry > 0 {
        out.push(b'0' + (carry % 10) as u8);
        carry /= 10;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

const UNIT_WORDS: [&str; 20] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
];

const TENS_WORDS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

const SCALE_WORDS: [(&str, u64); 4] = [("thousand", 1_000), ("million", 1_000_000), ("billion", 1_000_000_000), ("trillion", 1_000_000_000_000)];

/// Finds spelled-out numbers ("four", "twenty-one", "three hundred and five", "two
/// thousand", "one million two hundred thousand") in an ASCII-lowercased text.
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
        match spelled_number(lower, &words, i) {
            Some((value, last)) => {
                out.push(Found { start: words[i].0, end: words[last].1, canonical: value.to_string() });
                i = last + 1;
            }
            None => i += 1,
        }
    }
    out
}

/// The part of a spelled-out number read last.
#[derive(Clone, Copy, PartialEq)]
enum NumberWord {
    Unit,
    Tens,
    Hundred,
    Scale,
}

/// Reads the spelled-out number that starts at `words[first]`, with words joined by one
/// space or a hyphen. Returns its value and the index of its last word. Scales must
/// decrease ("two thousand three hundred"), and "and" may follow "hundred" or a scale
/// ("three hundred and five"). "zero" is never combined with other words.
fn spelled_number(lower: &str, words: &[(usize, usize, &str)], first: usize) -> Option<(u64, usize)> {
    let is_small = |w: &str| UNIT_WORDS[1..].contains(&w) || TENS_WORDS.contains(&w);
    let mut total: u64 = 0;
    let mut group: u64 = 0;
    let mut last_scale = u64::MAX;
    let mut previous: Option<NumberWord> = None;
    let mut last_index = None;
    let mut i = first;
    while i < words.len() {
        let (_, _, word) = words[i];
        if i > first && !matches!(&lower[words[i - 1].1..words[i].0], " " | "-") {
            break;
        }
        if word == "zero" {
            return (i == first).then_some((0, i)).or(last_index.map(|l| (total + group, l)));
        }
        if let Some(unit) = UNIT_WORDS.iter().position(|w| *w == word) {
            let fits = match previous {
                None | Some(NumberWord::Hundred | NumberWord::Scale) => true,
                Some(NumberWord::Tens) => unit < 10,
                Some(NumberWord::Unit) => false,
            };
            if !fits {
                break;
            }
            group += unit as u64;
            previous = Some(NumberWord::Unit);
        } else if let Some(tens) = TENS_WORDS.iter().position(|w| *w == word) {
            if !matches!(previous, None | Some(NumberWord::Hundred | NumberWord::Scale)) || group % 100 != 0 {
                break;
            }
            group += (tens as u64 + 2) * 10;
            previous = Some(NumberWord::Tens);
        } else if word == "hundred" {
            if !matches!(previous, Some(NumberWord::Unit | NumberWord::Tens)) || group == 0 || group >= 100 {
                break;
            }
            group *= 100;
            previous = Some(NumberWord::Hundred);
        } else if let Some(&(_, scale)) = SCALE_WORDS.iter().find(|(w, _)| *w == word) {
            if !matches!(previous, Some(NumberWord::Unit | NumberWord::Tens | NumberWord::Hundred)) || group == 0 || scale >= last_scale {
                break;
            }
            total += group * scale;
            group = 0;
            last_scale = scale;
            previous = Some(NumberWord::Scale);
        } else if word == "and"
            && matches!(previous, Some(NumberWord::Hundred | NumberWord::Scale))
            && words.get(i + 1).is_some_and(|(s, _, w)| &lower[words[i].1..*s] == " " && is_small(w))
        {
            // Not part of the number unless a word follows, so `last_index` stays.
            i += 1;
            continue;
        } else {
            break;
        }
        last_index = Some(i);
        i += 1;
    }
    Some((total + group, last_index?))
}

/// Applies a sign stated as a word right before a number: "negative 5" and "minus 5"
/// are -5. "minus" after a number or in "plus or minus" is no sign ("10 minus 3").
fn apply_sign_words(lower: &str, numbers: &mut [Found]) {
    for n in numbers.iter_mut() {
        if n.canonical.starts_with('-') || n.canonical == "0" {
            continue;
        }
        let head = &lower[..n.start];
        let head = head.strip_suffix(['$', '€', '£', '¥']).unwrap_or(head);
        let trimmed = head.trim_end();
        if trimmed.len() == head.len() {
            continue;
        }
        let Some(word) = ["negative", "minus"].into_iter().find(|w| trimmed.ends_with(w)) else { continue };
        let before = &trimmed[..trimmed.len() - word.len()];
        if before.chars().next_back().is_some_and(char::is_alphanumeric) {
            continue;
        }
        if word == "minus" {
            let before = before.trim_end();
            let previous_word = before.rsplit(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
            let after_number = before.ends_with(|c: char| c.is_ascii_digit() || matches!(c, ')' | '%'))
                || UNIT_WORDS.contains(&previous_word)
                || TENS_WORDS.contains(&previous_word)
                || previous_word == "hundred"
                || SCALE_WORDS.iter().any(|(w, _)| *w == previous_word);
            if after_number || before.ends_with("plus or") {
                continue;
            }
        }
        n.canonical = format!("-{}", n.canonical);
    }
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

/// Operators that may join the operands of a calculation after an answer marker.
const OPERATORS: &[&str] = &[
    "+", "-", "\u{2212}", "*", "\u{d7}", "\u{b7}", "/", "\u{f7}", "^", "(", ")", "$", "x", "plus", "minus", "times", "multiplied by",
    "divided by", "over",
];
/// Words that state the result of a calculation.
const EQUALS: &[&str] = &["=", "equals", "is equal to", "equal to"];

/// Follows a calculation that starts with the number `first` to its result: in "the
/// answer is 2 + 2 = 4" the marker is followed by "2 + 2", and the number after the
/// last "=" counts. A number after "=" that further operators continue ("4 = 2 + 2")
/// is not a result, so `first` stays the answer there.
fn result_of_calculation<'f>(lower: &str, first: &'f Found, numbers: &'f [Found]) -> &'f Found {
    let starts_word = |rest: &str, word: &str| {
        rest.starts_with(word)
            && (!word.starts_with(|c: char| c.is_ascii_alphabetic()) || !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
    };
    let mut answer = first;
    let mut pending: Option<&Found> = None;
    let mut continued = false;
    let mut at = first.end;
    loop {
        let rest = &lower[at..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        at += rest.len() - trimmed.len();
        if let Some(equals) = EQUALS.iter().find(|w| starts_word(trimmed, w)) {
            let after = at + equals.len();
            // `numbers` is sorted by start, so the first one at or after `after` is next.
            let next = numbers.get(numbers.partition_point(|n| n.start < after));
            let Some(next) = next.filter(|n| lower[after..n.start].chars().all(|c| matches!(c, ' ' | '\t' | '-' | '\u{2212}' | '$'))) else { break };
            if let Some(p) = pending.filter(|_| !continued) {
                answer = p;
            }
            pending = Some(next);
            continued = false;
            at = next.end;
        } else if let Ok(i) = numbers.binary_search_by_key(&at, |n| n.start) {
            at = numbers[i].end;
        } else if let Some(op) = OPERATORS.iter().find(|op| starts_word(trimmed, op)) {
            continued |= pending.is_some();
            at += op.len();
        } else {
            break;
        }
    }
    match pending {
        Some(p) if !continued => p,
        _ => answer,
    }
}

/// Finds the final answer among the numbers of a reply: the number after the last explicit
/// answer marker ("answer is", "answer:", "####", `\boxed{`), or the result of a
/// calculation written there ("the answer is 2 + 2 = 4"), else after the last statement
/// of a value ("=", "equals"), else the last number. A spelled-out number ("four", "one
/// hundred") counts after a marker, after "is" when nothing follows it ("it is four"),
/// or when it is the whole reply, so the "one" of "no one knows" is not read as 1. A
/// sign word right before a number ("negative 5", "minus 5") makes it negative.
pub fn find_number(text: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets, so positions in `lower` match `text`.
    let lower = text.to_ascii_lowercase();
    let mut digits = numbers_in(text);
    apply_sign_words(&lower, &mut digits);
    let mut words = number_words_in(&lower);
    apply_sign_words(&lower, &mut words);
    let mut all: Vec<Found> = digits.iter().chain(&words).map(|n| Found { start: n.start, end: n.end, canonical: n.canonical.clone() }).collect();
    all.sort_by_key(|n| n.start);
    if let Some(n) = after_last_marker(&lower, ANSWER_MARKERS, &all) {
        return Some(result_of_calculation(&lower, n, &all).canonical.clone());
    }
    if let Some(n) = after_last_marker(&lower, VALUE_MARKERS, &all) {
        return Some(n.canonical.clone());
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
    let bare = lower.trim().trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let [only] = words.as_slice() else { return None };
    let spelled = &lower[only.start..only.end];
    // The whole reply is the number, or its sign word and the number ("negative five").
    let sign_word = bare.strip_suffix(spelled).map(str::trim_end);
    let whole = bare == spelled || (only.canonical.starts_with('-') && sign_word.is_some_and(|w| w == "negative" || w == "minus"));
    whole.then(|| only.canonical.clone())
}

/// Whether `c` can sit next to a choice label without making it part of a word.
fn boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| !c.is_alphanumeric())
}

/// Words that mark the label before them as the chosen option ("A is correct", "B
/// because ...") rather than an article ("A cat").
const OPTION_FOLLOWERS: &[&str] = &[
    "is", "was", "would", "should", "seems", "looks", "appears", "fits", "matches", "because", "since", "as", "and", "or",
    "over", "instead", "rather",
];

/// Words that give the reason for a label that opens the reply ("B, because ...").
const REASON_WORDS: &[&str] = &["because", "since", "as", "given"];

/// Finds the chosen option label. Single letters count only in forms that mark an option
/// ("(B)", "B)", "B.", "B:" at a line start, "**B**", "answer is B", "option B", or the
/// whole reply), so the article "A" in a sentence is never read as option A. Among
/// several mentions, the most explicit form wins, then the last one. From the strongest:
/// a label after an answer word ("answer is B", "I choose B"), a label that opens the
/// reply on its own line or with its reason ("B\n\nA is wrong", "B, because ..."), "(B)"
/// or "**B**", "B)" at a line start, any other mention.
pub fn find_choice(text: &str, labels: &[String]) -> Option<String> {
    let stripped: String = text.trim().trim_matches(|c: char| matches!(c, '*' | '(' | ')' | '.' | ':' | '"' | '\'' | '`' | '[' | ']')).trim().to_string();
    if let Some(label) = labels.iter().find(|l| l.eq_ignore_ascii_case(&stripped)) {
        return Some(label.clone());
    }
    let words_only = labels.iter().all(|l| l.chars().count() > 1);
    // ASCII lowercasing keeps byte offsets, so slices of `text` line up.
    let lower = text.to_ascii_lowercase();
    let start = reply_start(&lower);
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
            let head = lower[..pos].trim_end().trim_end_matches(['*', ':', '(']).trim_end();
            let marked = ["answer is", "answer", "option", "choice", "choose", "pick", "select", "option is", "choice is", "would be", "correct one is"]
                .iter()
                .any(|m| head.ends_with(m) && boundary(head[..head.len() - m.len()].chars().next_back()));
            let paren = before == Some('(') && after == Some(')');
            let bold = lower[..pos].ends_with("**") && lower[end..].starts_with("**");
            let opens = opens_reply(&lower, start, pos, end);
            if paren || bold {
                consider(if marked { 5 } else if opens { 4 } else { 3 }, pos, label);
                continue;
            }
            // "the answer is a tough one": a single letter followed by a word is an
            // article or a pronoun unless the word marks an option.
            if single_letter && reads_as_word(text, end) {
                continue;
            }
            if marked {
                consider(5, pos, label);
                continue;
            }
            if opens {
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

/// Finds the byte offset of the reply's first character that is not whitespace or markdown.
fn reply_start(lower: &str) -> usize {
    let markup = |c: char| c.is_whitespace() || matches!(c, '*' | '_' | '`' | '"' | '\'' | '(' | '[' | '#' | '>');
    lower.find(|c: char| !markup(c)).unwrap_or(lower.len())
}

/// Checks whether the label at `pos..end` opens the reply as its answer: it starts at
/// `start` (from `reply_start`), and after it comes either nothing but punctuation on its
/// line ("B", "**B.**") or a reason ("B, because ...", "B - since ...").
fn opens_reply(lower: &str, start: usize, pos: usize, end: usize) -> bool {
    if pos != start {
        return false;
    }
    let closing = |c: char| c.is_whitespace() || matches!(c, '*' | '_' | '`' | '"' | '\'' | ')' | ']' | '.' | ':' | '!');
    let line = lower[end..].split('\n').next().unwrap_or("");
    if line.chars().all(closing) {
        return true;
    }
    let rest = line.trim_start_matches(|c: char| closing(c) || matches!(c, ',' | ';' | '-' | '\u{2013}' | '\u{2014}'));
    let word = rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    REASON_WORDS.contains(&word)
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
    fn thin_spaces_group_thousands() {
        for (text, want) in [
            ("1\u{2009}000", "1000"),
            ("1\u{202F}000", "1000"),
            ("The total is 12\u{202F}345 km", "12345"),
            ("1\u{2009}234\u{2009}567,5", "1234567.5"),
            ("\u{3c0} is 3.141\u{2009}592", "3.141592"),
            ("2 3", "3"),
            ("1\u{2009}00", "0"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn scale_words_read_whole_numbers() {
        for (text, want) in [
            ("The answer is one hundred", "100"),
            ("It is one hundred.", "100"),
            ("The answer is two thousand", "2000"),
            ("The answer is one million", "1000000"),
            ("The answer is twenty-one thousand", "21000"),
            ("The answer is three hundred and five", "305"),
            ("one thousand two hundred thirty-four", "1234"),
            ("The answer is two thousand and twenty-four", "2024"),
            ("nineteen hundred", "1900"),
            ("The answer is one hundred thousand", "100000"),
            ("The answer is four billion", "4000000000"),
            ("The answer is one two", "1"),
            ("The answer is three hundred and then some", "300"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
        for text in ["hundreds of them", "a thousand thanks"] {
            assert_eq!(find_number(text), None, "{text:?}");
        }
    }

    #[test]
    fn sign_words_make_numbers_negative() {
        for (text, want) in [
            ("The answer is negative 5", "-5"),
            ("The answer is minus 5", "-5"),
            ("negative 5", "-5"),
            ("minus 5", "-5"),
            ("The answer is negative five", "-5"),
            ("negative five", "-5"),
            ("It fell by minus $3", "-3"),
            ("10 minus 3", "3"),
            ("ten minus 3", "3"),
            ("plus or minus 2", "2"),
            ("negative 0", "0"),
            ("nonnegative 4", "4"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn calculation_after_marker_gives_its_result() {
        for (text, want) in [
            ("The answer is 2 + 2 = 4", "4"),
            ("The answer is 10 - 3 = 7", "7"),
            ("the answer is 2 + 3 = 5", "5"),
            ("The answer is 6 times 7 = 42", "42"),
            ("The answer is 10-3=7", "7"),
            ("The answer is $5 + $3 = $8", "8"),
            ("The answer is 2 plus 2 equals 4", "4"),
            ("The answer is 2 + 2 = 3 + 1 = 4", "4"),
            ("The answer is 5 - 8 = -3", "-3"),
            ("The answer is 4 = 2 + 2", "4"),
            ("The answer is 42 (not 41)", "42"),
            ("The answer is 42. I counted 3 = 3 times.", "42"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
        // A long chain is followed in one pass over the sorted numbers.
        let long = format!("The answer is {} = 20000", vec!["1"; 20_000].join(" + "));
        assert_eq!(find_number(&long).as_deref(), Some("20000"));
        let unclosed = "\\frac{1".repeat(20_000);
        assert_eq!(find_number(&unclosed).as_deref(), Some("1"));
    }

    #[test]
    fn fractions_read_as_their_value() {
        for (text, want) in [
            ("3/4", "0.75"),
            ("The answer is 3/4", "0.75"),
            ("Final answer: \\boxed{\\frac{3}{4}}", "0.75"),
            ("\\boxed{\\dfrac{6}{8}}", "0.75"),
            ("\\frac{-1}{2}", "-0.5"),
            ("-\\frac{1}{2}", "-0.5"),
            ("-3/4", "-0.75"),
            ("1/3", "0.3333333333333333"),
            ("The answer is 10/4", "2.5"),
            ("1/2 + 1/4 = 3/4", "0.75"),
            ("1/1024", "0.0009765625"),
            ("0/7", "0"),
            ("Due 12/25/2023", "2023"),
            ("1/0", "0"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
        assert_eq!(fraction_decimal("99999999999999999999999", "8").as_deref(), Some("12500000000000000000000"));
        assert_eq!(fraction_decimal("5", "0"), None);
    }

    #[test]
    fn dotted_versions_are_not_numbers() {
        for text in ["1.2.3", "Use version 1.2.3", "v1.2.3", "192.168.0.1", "Upgrade to 1.2.3."] {
            assert_eq!(find_number(text), None, "{text:?}");
        }
        for (text, want) in [
            ("Version 1.2.3 fixes 5 bugs", "5"),
            ("gpt4.5 says 3", "3"),
            ("It costs 1.000.000", "1000000"),
            ("1.5,2.5", "2.5"),
            ("The answer is 1.5.", "1.5"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn decimal_comma_after_dot_grouping() {
        for (text, want) in [
            ("1.000,5", "1000.5"),
            ("Der Preis ist 1.234,56 \u{20ac}", "1234.56"),
            ("1.234.567,89", "1234567.89"),
            ("1,234.50", "1234.5"),
            ("1.000", "1"),
            ("1,5", "5"),
            ("1234.567,8", "8"),
        ] {
            assert_eq!(find_number(text).as_deref(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn label_opening_the_reply_is_the_choice() {
        let labels: Vec<String> = DEFAULT_CHOICES.iter().map(|s| s.to_string()).collect();
        for (text, want) in [
            ("B\n\nExplanation: A is wrong because it ignores friction.", Some("B")),
            ("B, because A is wrong", Some("B")),
            ("I choose B over A", Some("B")),
            ("**B**\n\n(A) is wrong", Some("B")),
            ("B - since A is wrong", Some("B")),
            ("B\n\nSo the answer is A", Some("A")),
            ("A) Paris is wrong\nB) London is right", Some("B")),
            ("A cat is not B", Some("B")),
            ("B is wrong, A is correct", Some("A")),
            ("The answer is (B), not A", Some("B")),
        ] {
            assert_eq!(find_choice(text, &labels).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn blank_json_strings_abstain() {
        let path = Extract::JsonPath(vec![PathStep::Key("a".into())]);
        let regex = crate::sim::TestRegex;
        assert_eq!(path.extract("{\"a\": \"\"}", &regex), Err(NoAnswer::NotFound));
        assert_eq!(path.extract("{\"a\": \"  \"}", &regex), Err(NoAnswer::NotFound));
        assert_eq!(path.extract("{\"a\": \"x\"}", &regex).unwrap().key, "x");
        assert_eq!(Extract::Json.extract("\"\"", &regex), Err(NoAnswer::NotFound));
        assert_eq!(Extract::Json.extract("\"x\"", &regex).unwrap().key, "x");
        assert_eq!(Extract::Json.canonicalize(&json!("")), None);
        assert_eq!(path.canonicalize(&json!(" ")), None);
    }

    /// The cases of the JavaScript regression tests, through `aggregate` as they run there.
    #[test]
    fn aggregate_reads_the_regression_cases() {
        let run = |answers: Value, options: Value| super::super::aggregate(&answers, &options, &crate::decode::NoRefs, &crate::sim::TestRegex).unwrap();
        for (text, want) in [
            ("1\u{2009}000", "1000"),
            ("The total is 12\u{202F}345 km", "12345"),
            ("The answer is twenty-one thousand", "21000"),
            ("The answer is minus 5", "-5"),
            ("The answer is 6 times 7 = 42", "42"),
            ("Final answer: \\boxed{\\frac{3}{4}}", "0.75"),
            ("Der Preis ist 1.234,56 \u{20ac}", "1234.56"),
        ] {
            let report = run(json!([text]), json!({ "extract": "number" }));
            assert_eq!(report["samples"][0]["answer"], json!(want), "{text:?}");
        }
        let report = run(json!(["1.2.3", "v1.2.3"]), json!({ "extract": "number" }));
        assert_eq!(report["samples"][0]["answer"], Value::Null);
        assert_eq!(report["abstained"], json!(2));
        let report = run(json!(["3/4", "The answer is 3/4"]), json!({ "extract": "number" }));
        assert_eq!(report["samples"][0]["answer"], report["samples"][1]["answer"]);
        for text in ["B\n\nExplanation: A is wrong because it ignores friction.", "B, because A is wrong", "I choose B over A"] {
            let report = run(json!([text]), json!({ "extract": "choice" }));
            assert_eq!(report["samples"][0]["answer"], json!("B"), "{text:?}");
        }
        let report = run(json!(["{\"a\": \"\"}", "{\"a\": \"  \"}", "{\"a\": \"x\"}"]), json!({ "extract": { "jsonPath": "$.a" } }));
        assert_eq!(report["winner"], json!("x"));
        assert_eq!(report["abstained"], json!(2));
        assert_eq!(report["counts"].get(""), None);
        let report = run(json!(["\"\"", "\"\"", "\"x\""]), json!({ "extract": "json" }));
        assert_eq!(report["winner"], json!("x"));
        assert_eq!(report["abstained"], json!(2));
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
        for (capture, want) in [
            ("1,5", "1,5"),
            ("2,3", "2,3"),
            ("1.234,5", "1234.5"),
            ("1,234", "1234"),
            ("-7", "-7"),
            ("+7", "7"),
            ("$1,000", "1000"),
            ("5.", "5"),
            ("3/4", "0.75"),
            ("1.2.3", "1.2.3"),
            ("1\u{202F}000", "1000"),
        ] {
            assert_eq!(captured_answer(capture).unwrap().key, want, "{capture:?}");
        }
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
