//! Decimal text to `f64`, exactly as `str::parse::<f64>` does it, without its
//! table.
//!
//! The standard library's parser carries a 10 kB table of powers of five (its fast
//! path), which gzip cannot shrink: a twentieth of the browser's download. This
//! one always takes the slow, exact path (big integers: fine for the few numbers
//! a form reads), so it needs no table. The tests compare it with the standard
//! library on hard cases and on many random inputs.

/// Significant digits kept: 768 decide every `f64` rounding; the rest only
/// matter as "something more" for a tie.
const MAX_DIGITS: usize = 800;

/// `text` as an `f64`, with the same syntax and the same result as
/// `text.parse::<f64>().ok()`.
pub fn parse_f64(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let (negative, rest) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let value = if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else if rest.eq_ignore_ascii_case(b"nan") {
        f64::NAN
    } else {
        unsigned(rest)?
    };
    Some(if negative { -value } else { value })
}

fn unsigned(bytes: &[u8]) -> Option<f64> {
    let mut digits: Vec<u8> = Vec::new();
    let mut seen_digit = false;
    let mut sticky = false;
    // Decimal point position: value = 0.d1d2d3... × 10^point.
    let mut point: i64 = 0;
    let mut i = 0;
    let mut in_fraction = false;
    while i < bytes.len() {
        match bytes[i] {
            b'0'..=b'9' => {
                seen_digit = true;
                let digit = bytes[i] - b'0';
                if digits.is_empty() && digit == 0 {
                    if in_fraction {
                        point -= 1;
                    }
                } else {
                    if !in_fraction {
                        point += 1;
                    }
                    if digits.len() < MAX_DIGITS {
                        digits.push(digit);
                    } else if digit != 0 {
                        sticky = true;
                    }
                }
            }
            b'.' if !in_fraction => in_fraction = true,
            _ => break,
        }
        i += 1;
    }
    if !seen_digit {
        return None;
    }
    if i < bytes.len() {
        if !matches!(bytes[i], b'e' | b'E') {
            return None;
        }
        i += 1;
        let negative = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        if i == bytes.len() {
            return None;
        }
        let mut exponent: i64 = 0;
        for &b in &bytes[i..] {
            if !b.is_ascii_digit() {
                return None;
            }
            exponent = (exponent * 10 + i64::from(b - b'0')).min(1 << 40);
        }
        point += if negative { -exponent } else { exponent };
    }
    if digits.is_empty() {
        return Some(0.0);
    }
    if point > 310 {
        return Some(f64::INFINITY);
    }
    if point < -330 {
        return Some(0.0);
    }
    // value = N × 10^e, N the digits as an integer.
    let e = point - digits.len() as i64;
    let mut n = Big::default();
    for &d in &digits {
        n.mul_add(10, u32::from(d));
    }
    let mut den = Big::from(1);
    for _ in 0..e.max(0) {
        n.mul_add(10, 0);
    }
    for _ in 0..(-e).max(0) {
        den.mul_add(10, 0);
    }
    Some(f64::from_bits(round(&n, &den, sticky)))
}

/// The bits of the `f64` nearest to `num / den` (ties to even; `sticky`: the true
/// numerator is a little more than `num`).
fn round(num: &Big, den: &Big, sticky: bool) -> u64 {
    // q = floor(num × 2^s / den) with 2^52 <= q < 2^53, or s = 1074 (subnormal).
    let mut s = 53 - (num.bits() as i64 - den.bits() as i64);
    loop {
        let s_used = s.min(1074);
        let (a, b) = if s_used >= 0 {
            (num.shl(s_used as usize), den.clone())
        } else {
            (num.clone(), den.shl((-s_used) as usize))
        };
        let (mut q, r) = a.div_small_quotient(&b);
        if s_used == s && q >= 1 << 53 {
            s -= 1;
            continue;
        }
        if s_used == s && q < 1 << 52 {
            s += 1;
            continue;
        }
        let twice = r.shl(1);
        let up = match twice.cmp(&b) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => sticky || q & 1 == 1,
        };
        if up {
            q += 1;
        }
        if s_used == 1074 {
            // Subnormal (or, rounded up, the smallest normal number).
            return q;
        }
        // q holds the implicit leading bit: adding it carries into the exponent.
        let field = 52 - s_used + 1022;
        if field >= 2046 {
            return f64::INFINITY.to_bits();
        }
        return (((field as u64) << 52) + q).min(f64::INFINITY.to_bits());
    }
}

/// `x` as `x.to_string()` writes it (the shortest decimal that reads back as
/// `x`, never an exponent: `0.001`, `1e21` in full; `NaN`, `inf`, `-0`), without
/// the standard library's float formatter (Grisu and Dragon with their tables,
/// several kB of the browser's wasm): from the exact decimal expansion of `x`,
/// the fewest significant digits, correctly rounded, that [`parse_f64`] reads
/// back as `x`. The tests compare it with the standard library.
pub fn format_f64(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    if x == 0.0 {
        return format!("{sign}0");
    }
    let bits = x.abs().to_bits();
    let field = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (m, e) = if field == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), field - 1075)
    };
    // |x| = m × 2^e: as an integer times a power of ten, m × 5^-e × 10^e.
    let mut big = Big(vec![m as u32, (m >> 32) as u32]);
    big.trim();
    if e >= 0 {
        big = big.shl(e as usize);
    } else {
        let mut fives = -e;
        while fives > 0 {
            let k = fives.min(13);
            big.mul_add(5u32.pow(k as u32), 0);
            fives -= k;
        }
    }
    let digits = big.decimal();
    // The value is 0.d₁d₂… × 10^point.
    let point = digits.len() as i32 + e.min(0);
    // Of the two p-digit numbers around x, the nearer first (as the standard
    // library prefers it), then the other: the first to read back as x.
    for p in 1..digits.len() {
        let rest = &digits[p..];
        // An exact half goes up, as the standard library writes it.
        let nearer_up = rest.first().is_some_and(|&d| d >= 5);
        for up in [nearer_up, !nearer_up] {
            let (kept, at) = round_to(&digits, p, point, up);
            let text = decimal_text(sign, &kept, at);
            if parse_f64(&text) == Some(x) {
                return text;
            }
        }
    }
    let (kept, at) = round_to(&digits, digits.len(), point, false);
    decimal_text(sign, &kept, at)
}

/// The first `p` of `digits` (most significant first, value 0.digits × 10^point),
/// plus one in the last place when `up`, without trailing zeros, and the point.
fn round_to(digits: &[u8], p: usize, point: i32, up: bool) -> (Vec<u8>, i32) {
    let mut kept = digits[..p].to_vec();
    let mut point = point;
    if up {
        let mut i = p;
        loop {
            if i == 0 {
                kept.insert(0, 1);
                kept.pop();
                point += 1;
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    while kept.len() > 1 && kept.last() == Some(&0) {
        kept.pop();
    }
    (kept, point)
}

/// `sign`, then 0.digits × 10^point written out in full.
fn decimal_text(sign: &str, digits: &[u8], point: i32) -> String {
    let mut out = String::from(sign);
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let len = digits.len() as i32;
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&text);
    } else if point >= len {
        out.push_str(&text);
        out.extend(std::iter::repeat_n('0', (point - len) as usize));
    } else {
        out.push_str(&text[..point as usize]);
        out.push('.');
        out.push_str(&text[point as usize..]);
    }
    out
}

/// A non-negative big integer, 32-bit limbs, least significant first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl From<u32> for Big {
    fn from(value: u32) -> Self {
        let mut big = Big(vec![value]);
        big.trim();
        big
    }
}

impl Big {
    /// self = self / d, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    /// Its decimal digits, most significant first (none for zero).
    fn decimal(mut self) -> Vec<u8> {
        let mut chunks = Vec::new();
        while !self.0.is_empty() {
            chunks.push(self.div_small(1_000_000_000));
        }
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().rev().enumerate() {
            let mut nine = [0u8; 9];
            let mut c = *chunk;
            for d in nine.iter_mut().rev() {
                *d = (c % 10) as u8;
                c /= 10;
            }
            if i == 0 {
                let first = nine.iter().position(|&d| d != 0).unwrap_or(8);
                out.extend_from_slice(&nine[first..]);
            } else {
                out.extend_from_slice(&nine);
            }
        }
        out
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// self = self × m + a
    fn mul_add(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn bits(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }

    fn shl(&self, by: usize) -> Big {
        let (limbs, bits) = (by / 32, by % 32);
        let mut out = vec![0; limbs];
        let mut carry = 0u32;
        for &limb in &self.0 {
            if bits == 0 {
                out.push(limb);
            } else {
                out.push((limb << bits) | carry);
                carry = limb >> (32 - bits);
            }
        }
        if carry > 0 {
            out.push(carry);
        }
        let mut big = Big(out);
        big.trim();
        big
    }

    fn bit(&self, i: usize) -> bool {
        self.0
            .get(i / 32)
            .is_some_and(|limb| limb >> (i % 32) & 1 == 1)
    }

    /// self -= other (other <= self).
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = i64::from(*limb) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            *limb = (v + (borrow << 32)) as u32;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn shr(&self, by: usize) -> Big {
        let (limbs, bits) = (by / 32, by % 32);
        let rest = self.0.get(limbs..).unwrap_or_default();
        let out: Vec<u32> = rest
            .iter()
            .enumerate()
            .map(|(i, &limb)| {
                let high = rest.get(i + 1).copied().unwrap_or(0);
                if bits == 0 {
                    limb
                } else {
                    (limb >> bits) | (high << (32 - bits))
                }
            })
            .collect();
        let mut big = Big(out);
        big.trim();
        big
    }

    /// self = 2 × self + bit
    fn double_add(&mut self, bit: bool) {
        let mut carry = u32::from(bit);
        for limb in &mut self.0 {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry > 0 {
            self.0.push(carry);
        }
    }

    /// (self / d, self % d) for a quotient below 2^64.
    fn div_small_quotient(&self, d: &Big) -> (u64, Big) {
        let (la, lb) = (self.bits(), d.bits());
        if la < lb {
            return (0, self.clone());
        }
        // Long division from the quotient's top bit: at most 64 steps.
        let k = la - lb;
        let mut r = self.shr(k);
        let mut q: u64 = 0;
        for i in (0..=k).rev() {
            if i < k {
                r.double_add(self.bit(i));
                q <<= 1;
            }
            if r.cmp(d) != std::cmp::Ordering::Less {
                r.sub(d);
                q |= 1;
            }
        }
        (q, r)
    }
}

#[cfg(test)]
mod tests {
    use super::{format_f64, parse_f64};

    /// Our text for `x` is the standard library's, and reads back as `x`.
    fn check_format(x: f64) {
        let ours = format_f64(x);
        assert_eq!(ours, x.to_string(), "{x:e}");
        if x.is_finite() {
            assert_eq!(
                parse_f64(&ours).map(f64::to_bits),
                Some(x.to_bits()),
                "{ours}"
            );
        }
    }

    #[test]
    fn floats_are_written_as_the_standard_library_writes_them() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.5,
            70.5,
            0.1,
            0.1 + 0.2,
            1.0 / 3.0,
            22.857_142_857_142_858,
            100.0,
            1e21,
            1e22,
            1e-7,
            123_456_789.125,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            2f64.powi(-1074) * 3.0,
            9_007_199_254_740_993.0,
            0.000_123,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            check_format(x);
        }
        for e in -1074..1024 {
            check_format(2f64.powi(e));
        }
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            check_format(f64::from_bits(state));
            // Decimals as forms have them: a few digits and places.
            let places = (state >> 60) as i32 % 6;
            check_format((state % 1_000_000) as f64 / 10f64.powi(places));
        }
    }

    fn check(text: &str) {
        let ours = parse_f64(text);
        let theirs = text.parse::<f64>().ok();
        match (ours, theirs) {
            (Some(a), Some(b)) if a.is_nan() && b.is_nan() => {}
            (Some(a), Some(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{text}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{text}"),
        }
    }

    #[test]
    fn floats_parse_as_the_standard_library_does() {
        for text in [
            "0",
            "-0",
            "+0",
            "1",
            "72.5",
            "0.1",
            ".5",
            "5.",
            "-.5",
            "+.5e1",
            "1e5",
            "1E+5",
            "1e-5",
            "007",
            "0.000",
            "00.00e10",
            "1_0",
            "",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            " 1",
            "1 ",
            "inf",
            "-INF",
            "Infinity",
            "infinit",
            "nan",
            "NaN",
            "-nan",
            "0x10",
            "1e400",
            "-1e400",
            "1e-400",
            "9007199254740993",
            "9007199254740992.5",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "4.9406564584124654e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "1.797693134862315807e308",
            "123456789012345678901234567890",
            "0.30000000000000004",
            "3.141592653589793238462643383279",
            "1e23",
            "8.589973e9",
            "1e-323",
            "1e-324",
            "5e-324",
            "3e-324",
            "2.5e-324",
            "1e308",
            "1e309",
            "1e99999999999",
            "1e-99999999999",
            "0e99999999999",
        ] {
            check(text);
        }
        // Ties decided only by a digit past the 768th.
        let tie = format!("9007199254740993{}", "0".repeat(900));
        check(&tie);
        check(&format!("{tie}1"));
        check(&format!(
            "0.{}9007199254740993{}1e316",
            "0".repeat(300),
            "0".repeat(800)
        ));
    }

    #[test]
    fn random_floats_parse_as_the_standard_library_does() {
        // A small deterministic generator (no dependency for one test).
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            // Any bit pattern, printed shortest and long.
            let f = f64::from_bits(next());
            if f.is_finite() {
                check(&f.to_string());
                check(&format!("{f:e}"));
                check(&format!("{f:.30e}"));
            }
            // Random digits and exponents.
            let digits = (next() % 40 + 1) as usize;
            let mut text: String = (0..digits)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            if next() % 2 == 0 {
                text.insert((next() % (digits as u64 + 1)) as usize, '.');
            }
            let exponent = (next() % 700) as i64 - 350;
            check(&format!("{text}e{exponent}"));
            check(&text);
        }
    }
}
