//! Canonical forms of answers, and exact arithmetic for weights and scores.

use std::cell::Cell;
use std::cmp::Ordering;

/// Zeros past which a number is written in scientific form instead of positionally.
const MAX_PADDING_ZEROS: i64 = 400;

/// The shortest decimal form of a number written as text: `"42.0"` → `"42"`,
/// `"0.50"` → `"0.5"`, `"1e3"` → `"1000"`, `"-0"` → `"0"`. The digits are kept exactly,
/// so integers beyond 2^53 are not rounded. A number that would need more than 400
/// zeros of padding is written as `d.ddde±x` (`"1e500"` stays `"1e500"`), so the form
/// is always a fixed point and never needs more memory than the input. Returns
/// `None` if `text` is not a number, or if its exponent, as given or as written in
/// scientific form, does not fit in an `i32`.
pub fn canonical_decimal(text: &str) -> Option<String> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The value is 0.DIGITS × 10^point once leading and trailing zeros are gone.
    let all_digits = format!("{int_part}{frac_part}");
    let leading = all_digits.len() - all_digits.trim_start_matches('0').len();
    let digits = all_digits[leading..].trim_end_matches('0');
    if digits.is_empty() {
        return Some("0".into());
    }
    let point = int_part.len() as i64 + i64::from(exponent) - leading as i64;
    let len = digits.len() as i64;
    let padding = (-point).max(point - len).max(0);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if padding > MAX_PADDING_ZEROS {
        // The written exponent must fit in an i32 too, or the output would not parse.
        let written = i32::try_from(point - 1).ok()?;
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!("e{written}"));
    } else if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-point) as usize));
        out.push_str(digits);
    } else if point >= len {
        out.push_str(digits);
        out.push_str(&"0".repeat((point - len) as usize));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    Some(out)
}

/// The canonical form of a JSON number.
pub fn canonical_number_json(n: &serde_json::Number) -> String {
    canonical_decimal(&n.to_string()).unwrap_or_else(|| n.to_string())
}

/// The canonical form of an `f64`.
pub fn canonical_f64(n: f64) -> String {
    canonical_decimal(&format!("{n}")).unwrap_or_else(|| format!("{n}"))
}

thread_local! {
    /// Unicode NFC normalization, which the host provides (JavaScript's
    /// `String.prototype.normalize`) so that the module carries no normalization tables.
    static NFC: Cell<Option<fn(&str) -> String>> = const { Cell::new(None) };
}

/// Installs the host's NFC normalization.
pub fn set_nfc(normalize: fn(&str) -> String) {
    NFC.with(|n| n.set(Some(normalize)));
}

/// `text` in Unicode NFC when the host provides normalization, so a precomposed "é"
/// and "e" with a combining accent compare equal. ASCII text is already normalized.
pub fn nfc(text: &str) -> std::borrow::Cow<'_, str> {
    match NFC.with(Cell::get) {
        Some(normalize) if !text.is_ascii() => std::borrow::Cow::Owned(normalize(text)),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// Text folded for comparison: Unicode NFC, lowercase, whitespace collapsed, trailing
/// punctuation and surrounding quotes removed.
pub fn fold_text(text: &str) -> String {
    let lower = nfc(text.trim()).to_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '`' | '*' | '“' | '”'))
        .trim_end_matches(['.', '!', '?', ';', ','])
        .trim()
        .to_string()
}

/// Words of a text for similarity: lowercase alphanumeric runs.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = nfc(text)
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, deduplicated token lists.
pub fn jaccard(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
        }
    }
    both as f64 / (a.len() + b.len() - both) as f64
}

/// An exact rational number for weights, vote sums and scores, so that 0.1 + 0.2
/// equals 0.3 and a total equal to the pass score passes. Built from the shortest
/// decimal form of an `f64`, which is what the caller wrote.
#[derive(Clone, Copy, Debug)]
pub struct Ratio {
    num: i128,
    den: i128,
    /// Set when an operation overflowed; comparisons then use `approx`.
    inexact: bool,
    approx: f64,
}

/// The greatest common divisor, at least 1. Works on magnitudes, so `i128::MIN`
/// does not overflow; a divisor too large for an `i128` is reported as 1, which
/// leaves a fraction unreduced but exact.
fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    i128::try_from(a).unwrap_or(1).max(1)
}

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio { num: 0, den: 1, inexact: false, approx: 0.0 };

    /// An integer.
    pub fn int(n: i64) -> Ratio {
        Ratio { num: n as i128, den: 1, inexact: false, approx: n as f64 }
    }

    /// The decimal the `f64` was written as.
    pub fn from_f64(x: f64) -> Ratio {
        let Some(text) = canonical_decimal(&format!("{x}")) else {
            return Ratio { num: 0, den: 1, inexact: true, approx: x };
        };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.len() + frac_part.len() > 36 {
            return Ratio { num: 0, den: 1, inexact: true, approx: x };
        }
        let num: i128 = format!("{int_part}{frac_part}").parse().unwrap_or(0);
        let den = 10i128.pow(frac_part.len() as u32);
        Ratio::new(if negative { -num } else { num }, den, x)
    }

    fn new(num: i128, den: i128, approx: f64) -> Ratio {
        let g = gcd(num, den);
        Ratio { num: num / g, den: den / g, inexact: false, approx }
    }

    fn inexact(approx: f64) -> Ratio {
        Ratio { num: 0, den: 1, inexact: true, approx }
    }

    /// Whether the value is exact (a sum of decimals), not a float approximation.
    pub fn is_exact(self) -> bool {
        !self.inexact
    }

    /// The value as a float, correctly rounded: `num as f64 / den as f64` rounds both
    /// sides first, which turns 9999999999999999/10^16 into 1.
    pub fn to_f64(self) -> f64 {
        if self.inexact {
            return self.approx;
        }
        if self.num.unsigned_abs() < (1 << 53) && self.den < (1 << 53) {
            // Both sides are exact floats, so the one division rounds once.
            return self.num as f64 / self.den as f64;
        }
        // Long division to 40 significant decimal digits, then one correctly rounded parse.
        let magnitude = self.num.unsigned_abs();
        let den = self.den.unsigned_abs();
        let mut text = format!("{}{}.", if self.num < 0 { "-" } else { "" }, magnitude / den);
        let mut rest = magnitude % den;
        for _ in 0..40 {
            if rest == 0 {
                break;
            }
            let Some(scaled) = rest.checked_mul(10) else { break };
            text.push(char::from(b'0' + (scaled / den) as u8));
            rest = scaled % den;
        }
        text.parse().unwrap_or(self.num as f64 / self.den as f64)
    }

    /// Sum.
    pub fn add(self, other: Ratio) -> Ratio {
        let approx = self.to_f64() + other.to_f64();
        if self.inexact || other.inexact {
            return Ratio::inexact(approx);
        }
        let den = match self.den.checked_mul(other.den / gcd(self.den, other.den)) {
            Some(d) => d,
            None => return Ratio::inexact(approx),
        };
        let a = self.num.checked_mul(den / self.den);
        let b = other.num.checked_mul(den / other.den);
        match (a, b) {
            (Some(a), Some(b)) => match a.checked_add(b) {
                Some(n) => Ratio::new(n, den, approx),
                None => Ratio::inexact(approx),
            },
            _ => Ratio::inexact(approx),
        }
    }

    /// Difference.
    pub fn sub(self, other: Ratio) -> Ratio {
        match other.num.checked_neg() {
            Some(num) => self.add(Ratio { num, den: other.den, inexact: other.inexact, approx: -other.approx }),
            None => Ratio::inexact(self.to_f64() - other.to_f64()),
        }
    }

    /// Product.
    pub fn mul(self, other: Ratio) -> Ratio {
        let approx = self.to_f64() * other.to_f64();
        if self.inexact || other.inexact {
            return Ratio::inexact(approx);
        }
        let g1 = gcd(self.num, other.den);
        let g2 = gcd(other.num, self.den);
        match ((self.num / g1).checked_mul(other.num / g2), (self.den / g2).checked_mul(other.den / g1)) {
            (Some(n), Some(d)) => Ratio::new(n, d, approx),
            _ => Ratio::inexact(approx),
        }
    }

    /// Quotient; `None` when dividing by zero.
    pub fn div(self, other: Ratio) -> Option<Ratio> {
        if other.is_zero() {
            return None;
        }
        let inv = if other.inexact {
            Ratio::inexact(1.0 / other.approx)
        } else {
            let sign = other.num.signum();
            match other.num.checked_abs() {
                Some(den) => Ratio { num: other.den * sign, den, inexact: false, approx: 1.0 / other.to_f64() },
                None => Ratio::inexact(1.0 / other.to_f64()),
            }
        };
        Some(self.mul(inv))
    }

    /// Whether the value is exactly zero.
    pub fn is_zero(self) -> bool {
        if self.inexact {
            self.approx == 0.0
        } else {
            self.num == 0
        }
    }

    /// Exact comparison; a relative tolerance of 1e-12 once precision was lost.
    pub fn compare(self, other: Ratio) -> Ordering {
        if !self.inexact && !other.inexact {
            if let (Some(a), Some(b)) = (self.num.checked_mul(other.den), other.num.checked_mul(self.den)) {
                return a.cmp(&b);
            }
        }
        let (a, b) = (self.to_f64(), other.to_f64());
        if (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0) {
            Ordering::Equal
        } else {
            a.partial_cmp(&b).unwrap_or(Ordering::Equal)
        }
    }
}

impl PartialEq for Ratio {
    fn eq(&self, other: &Ratio) -> bool {
        self.compare(*other) == Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_numbers() {
        for (input, want) in [
            ("42", "42"),
            ("42.0", "42"),
            ("042.50", "42.5"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e3", "1000"),
            ("1.5E-2", "0.015"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+7", "7"),
            ("12815844532926915242", "12815844532926915242"),
            ("1e500", "1e500"),
            ("-12.50e-500", "-1.25e-499"),
            ("0e-2147483648", "0"),
            ("1e-2147483648", "1e-2147483648"),
        ] {
            assert_eq!(canonical_decimal(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(canonical_decimal("abc"), None);
        assert_eq!(canonical_decimal("."), None);
        assert_eq!(canonical_decimal("1.2.3"), None);
        assert_eq!(canonical_decimal("1e2147483648"), None);
        let tiny = format!("0.{}1", "0".repeat(400));
        assert_eq!(canonical_decimal("0.001e-398"), Some(tiny.clone()));
        assert_eq!(canonical_decimal(&tiny), Some(tiny));
        assert_eq!(canonical_decimal("0.001e-399").as_deref(), Some("1e-402"));
    }

    #[test]
    fn float_weights_add_exactly() {
        let b = Ratio::from_f64(0.1).add(Ratio::from_f64(0.2));
        assert!(b == Ratio::from_f64(0.3));
        assert_eq!(b.compare(Ratio::from_f64(0.3)), Ordering::Equal);
    }

    #[test]
    fn seed_score_example_is_exact() {
        let w = [0.4, 0.3, 0.3].map(Ratio::from_f64);
        let total = |s: [f64; 3]| {
            let sum = (0..3).fold(Ratio::ZERO, |acc, i| acc.add(w[i].mul(Ratio::from_f64(s[i]))));
            sum.mul(Ratio::int(10))
        };
        assert!(total([7.0, 9.0, 8.0]) == Ratio::int(79));
        assert!(total([8.0, 7.0, 8.0]) == Ratio::int(77));
        assert!(total([9.0, 8.0, 9.0]) == Ratio::int(87));
    }

    #[test]
    fn fold_and_similarity() {
        assert_eq!(fold_text("  \"Paris.\" "), "paris");
        assert_eq!(fold_text("The  Answer"), "the answer");
        let a = tokens("The capital is Paris");
        let b = tokens("the capital is paris!");
        assert_eq!(jaccard(&a, &b), 1.0);
        assert!(jaccard(&a, &tokens("Berlin")) < 0.1);
    }
}
