//! The field rules behind [`crate::Demographics`], as `validator` custom functions.
//!
//! Written by hand rather than with validator's `email`/`regex` rules: those pull a
//! regex engine and Unicode IDNA tables into the browser (about 900 kB of wasm).

use validator::ValidationError;

use crate::date::Date;
use crate::demographics::{Gender, Problem, ValidationContext};

/// The longest name part accepted, in characters. FHIR sets no limit; EMRs do,
/// and 100 is above any of theirs that we know of.
pub(crate) const MAX_NAME_CHARS: usize = 100;

/// The earliest birth date accepted.
const EARLIEST_BIRTH_DATE: (u16, u8, u8) = (1900, 1, 1);

fn fail(problem: Problem) -> Result<(), ValidationError> {
    Err(ValidationError::new(problem.code()))
}

pub(crate) fn family_name(value: &str) -> Result<(), ValidationError> {
    name_part(value)
}

pub(crate) fn given_names(values: &[String]) -> Result<(), ValidationError> {
    let mut parts = values.iter().filter(|v| !v.trim().is_empty()).peekable();
    if parts.peek().is_none() {
        return fail(Problem::Required);
    }
    parts.try_for_each(|v| name_part(v))
}

fn name_part(value: &str) -> Result<(), ValidationError> {
    let value = value.trim();
    if value.is_empty() {
        return fail(Problem::Required);
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return fail(Problem::TooLong);
    }
    if !value.chars().all(is_name_char) {
        return fail(Problem::NameCharacters);
    }
    Ok(())
}

/// Letters in any script, combining accents (names typed in decomposed form),
/// and the punctuation that real names carry: O'Brien, Smith-Jones, St. John.
fn is_name_char(c: char) -> bool {
    c.is_alphabetic()
        || matches!(c, ' ' | '-' | '\'' | '\u{2019}' | '.')
        || matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}')
}

pub(crate) fn birth_date(value: &str, context: &ValidationContext) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return fail(Problem::Required);
    }
    let Ok(date) = Date::parse(value.trim()) else {
        return fail(Problem::NotADate);
    };
    if date > context.today {
        return fail(Problem::DateInFuture);
    }
    let (y, m, d) = EARLIEST_BIRTH_DATE;
    if (date.year(), date.month(), date.day()) < (y, m, d) {
        return fail(Problem::DateTooEarly);
    }
    Ok(())
}

pub(crate) fn gender(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return fail(Problem::Required);
    }
    match Gender::from_code(value) {
        Some(_) => Ok(()),
        None => fail(Problem::NotAChoice),
    }
}

/// E.164 allows at most 15 digits; no real subscriber number has fewer than 7.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

pub(crate) fn phone(value: &str) -> Result<(), ValidationError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    let body = value.strip_prefix('+').unwrap_or(value);
    let separators_only = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
    let digits: Vec<u8> = body.bytes().filter(u8::is_ascii_digit).collect();
    let all_same = digits.windows(2).all(|w| w[0] == w[1]);
    if !separators_only || !PHONE_DIGITS.contains(&digits.len()) || all_same {
        return fail(Problem::PhoneImplausible);
    }
    Ok(())
}

/// `+` (when the number was typed with a country code) followed by the digits.
pub(crate) fn normalize_phone(value: &str) -> String {
    let plus = if value.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    format!("{plus}{digits}")
}

pub(crate) fn email(value: &str) -> Result<(), ValidationError> {
    let value = value.trim();
    if value.is_empty() || is_email(value) {
        Ok(())
    } else {
        fail(Problem::EmailInvalid)
    }
}

/// The address forms people actually use (RFC 5321 dot-atom local part, a domain
/// of at least two labels); quoted local parts and IP-literal domains are refused.
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.chars().count())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| {
            tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
        });
    local_ok && domain_ok
}

pub(crate) fn collapse_whitespace(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_many_cultures_are_accepted() {
        for name in [
            "O'Brien",
            "Smith-Jones",
            "St. John",
            "de la Cruz",
            "Nguyễn",
            "Müller",
            "Zoë",
            "José\u{0301}",
            "Ólafsdóttir",
            "Łukasz",
            "李",
            "محمد",
            "Даниил",
            "D\u{2019}Angelo",
        ] {
            assert_eq!(name_part(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_with_digits_symbols_or_controls_are_refused() {
        for name in ["J4ne", "Jane!", "<b>", "Jane\u{0}", "a@b", "Doe;DROP"] {
            assert_eq!(
                name_part(name).unwrap_err().code,
                Problem::NameCharacters.code(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_name_length_limit_counts_characters_not_bytes() {
        assert_eq!(name_part(&"é".repeat(MAX_NAME_CHARS)), Ok(()));
        assert!(name_part(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn plausible_phones_pass_and_normalise() {
        let cases = [
            ("+1 617 555 0100", "+16175550100"),
            ("(617) 555-0100", "6175550100"),
            ("617.555.0100", "6175550100"),
            ("+44 20 7946 0958", "+442079460958"),
            ("555 0100", "5550100"),
        ];
        for (typed, normal) in cases {
            assert_eq!(phone(typed), Ok(()), "{typed}");
            assert_eq!(normalize_phone(typed), normal);
        }
    }

    #[test]
    fn implausible_phones_are_refused() {
        for typed in [
            "12345",             // too short
            "+1234567890123456", // 16 digits: longer than E.164 allows
            "0000000000",        // one digit repeated
            "617-555-0100 x12",  // letters
            "++1 617 555 0100",  // two pluses
            "617_555_0100",      // odd separator
        ] {
            assert!(phone(typed).is_err(), "{typed}");
        }
    }

    #[test]
    fn email_syntax() {
        let good = [
            "jane@example.org",
            "jane.doe+intake@mail.example.co.uk",
            "o'brien@example.ie",
            "josé@exämple.es",
        ];
        let bad = [
            "jane",
            "jane@",
            "@example.org",
            "jane@example",
            "jane@@example.org",
            "jane doe@example.org",
            "jane..doe@example.org",
            ".jane@example.org",
            "jane@-example.org",
            "jane@example.-org",
            "jane@example.o",
            "jane@127.0.0.1",
            "jane@exa mple.org",
        ];
        for e in good {
            assert!(is_email(e), "{e} should pass");
        }
        for e in bad {
            assert!(!is_email(e), "{e} should fail");
        }
    }
}
