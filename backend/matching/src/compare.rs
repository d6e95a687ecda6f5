//! Comparators: two normalized records, field by field, to an agreement level.
//! Every comparator is symmetric: `compare(a, b)` and `compare(b, a)` agree.

use strsim::{jaro_winkler, osa_distance};

use crate::normalize::{BirthDate, DateRelation, compare_dates, name_words, squashed};
use crate::{Detail, FIELDS, Field, Level};

/// A text value as compared: the folded text, its phonetic codes and nickname
/// groups (names only) and how many stored patients have it (term frequency).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tok<'a> {
    pub(crate) s: &'a str,
    pub(crate) dm: [u32; 2],
    pub(crate) nick: &'a [u16],
    pub(crate) count: u32,
}

/// One side of a comparison: a query or a stored patient, borrowed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Side<'a> {
    pub(crate) given: Option<Tok<'a>>,
    /// Every given name run together, when there is more than one.
    pub(crate) given_joined: Option<&'a str>,
    /// The first middle name (or its initial).
    pub(crate) middle: Option<Tok<'a>>,
    pub(crate) family: Option<Tok<'a>>,
    pub(crate) birth: u32,
    pub(crate) gender: u8,
    pub(crate) phones: &'a [Box<str>],
    pub(crate) emails: &'a [Box<str>],
    pub(crate) street_no: Option<Tok<'a>>,
    pub(crate) street: Option<Tok<'a>>,
    pub(crate) city: Option<Tok<'a>>,
    pub(crate) postal: Option<Tok<'a>>,
    pub(crate) state: Option<Tok<'a>>,
    /// (system symbol, value).
    pub(crate) ids: &'a [(u32, Box<str>)],
}

/// The levels of every field, and how each was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub(crate) levels: [Level; FIELDS.len()],
    pub(crate) details: [Option<Detail>; FIELDS.len()],
}

impl Comparison {
    /// The levels packed in 3 bits each: a key for counting patterns.
    pub(crate) fn pattern(&self) -> u64 {
        self.levels
            .iter()
            .fold(0u64, |acc, l| (acc << 3) | *l as u64)
    }
}

/// Compares two records field by field.
pub(crate) fn compare(a: &Side<'_>, b: &Side<'_>) -> Comparison {
    let mut out = Comparison {
        levels: [Level::Missing; FIELDS.len()],
        details: [None; FIELDS.len()],
    };
    let mut set = |field: Field, (level, detail): (Level, Option<Detail>)| {
        out.levels[field as usize] = level;
        out.details[field as usize] = detail;
    };
    let (given, family) = names(a, b);
    set(Field::Given, given);
    set(Field::Family, family);
    set(Field::Middle, middle(a, b));
    set(Field::BirthDate, birth(a.birth, b.birth));
    set(
        Field::Gender,
        match (a.gender, b.gender) {
            (0, _) | (_, 0) => (Level::Missing, None),
            (x, y) if x == y => (Level::Exact, None),
            _ => (Level::Different, None),
        },
    );
    set(Field::Phone, contact(a.phones, b.phones, true));
    set(Field::Email, contact(a.emails, b.emails, false));
    set(
        Field::StreetNumber,
        both(a.street_no, b.street_no, |x, y| {
            if x.s == y.s {
                (Level::Exact, None)
            } else if x.s.len() >= 2 && osa_distance(x.s, y.s) <= 1 {
                (Level::Close, Some(Detail::Typo))
            } else {
                (Level::Different, None)
            }
        }),
    );
    set(Field::Street, both(a.street, b.street, street));
    set(Field::City, both(a.city, b.city, place));
    set(
        Field::PostalCode,
        both(a.postal, b.postal, |x, y| {
            if x.s == y.s {
                (Level::Exact, None)
            } else if x.s.len() == y.s.len() && osa_distance(x.s, y.s) <= 1 {
                (Level::Close, Some(Detail::Typo))
            } else {
                (Level::Different, None)
            }
        }),
    );
    set(
        Field::State,
        both(a.state, b.state, |x, y| {
            if x.s == y.s {
                (Level::Exact, None)
            } else {
                (Level::Different, None)
            }
        }),
    );
    set(Field::Identifier, identifiers(a.ids, b.ids));
    out
}

fn both<'a>(
    a: Option<Tok<'a>>,
    b: Option<Tok<'a>>,
    f: impl Fn(Tok<'a>, Tok<'a>) -> (Level, Option<Detail>),
) -> (Level, Option<Detail>) {
    match (a, b) {
        (Some(x), Some(y)) => f(x, y),
        _ => (Level::Missing, None),
    }
}

type Outcome = (Level, Option<Detail>);

/// Whether one side's given name is the other's middle name (or its nickname,
/// typo or sound-alike), and the reverse: (a's given is b's middle, b's given is
/// a's middle). An initial does not count: one letter says too little.
fn given_is_middle(a: &Side<'_>, b: &Side<'_>) -> (bool, bool) {
    let related = |x: Option<Tok<'_>>, y: Option<Tok<'_>>| {
        both(x, y, |x, y| {
            if x.s.len() < 2 || y.s.len() < 2 {
                (Level::Different, None)
            } else {
                name(x, y, true)
            }
        })
        .0 <= Level::Close
    };
    (related(a.given, b.middle), related(b.given, a.middle))
}

/// Middle names: the same name, or one side's initial agreeing with the other's
/// name or initial ("close"); or the given and middle names swapped.
fn middle(a: &Side<'_>, b: &Side<'_>) -> Outcome {
    let (ab, ba) = given_is_middle(a, b);
    if ab && ba {
        return (Level::Close, Some(Detail::MiddleName));
    }
    both(a.middle, b.middle, |x, y| {
        if x.s.len() == 1 || y.s.len() == 1 {
            if x.s.as_bytes().first() == y.s.as_bytes().first() {
                (Level::Close, Some(Detail::Initial))
            } else {
                (Level::Different, None)
            }
        } else {
            name(x, y, true)
        }
    })
}

/// Given and family names, straight or swapped (given typed as family and back).
fn names(a: &Side<'_>, b: &Side<'_>) -> (Outcome, Outcome) {
    let mut given =
        joined_given(a, b).unwrap_or_else(|| both(a.given, b.given, |x, y| name(x, y, true)));
    if given.0 == Level::Different {
        let (ab, ba) = given_is_middle(a, b);
        if ab || ba {
            // Someone who goes by the middle name, or given and middle swapped.
            given = (Level::Close, Some(Detail::MiddleName));
        }
    }
    let straight = (given, both(a.family, b.family, |x, y| name(x, y, false)));
    let rank = |o: &Outcome| match o.0 {
        Level::Exact => 0,
        Level::Close => 1,
        Level::Phonetic => 2,
        Level::Different | Level::Missing => 4,
    };
    if rank(&straight.0) + rank(&straight.1) <= 2 {
        return straight;
    }
    let crossed = (
        both(a.given, b.family, |x, y| name(x, y, false)),
        both(a.family, b.given, |x, y| name(x, y, false)),
    );
    if rank(&crossed.0) <= 1
        && rank(&crossed.1) <= 1
        && rank(&crossed.0) + rank(&crossed.1) + 1 < rank(&straight.0) + rank(&straight.1)
    {
        // Swapped names agree at most as "close": the swap itself is a doubt.
        let swapped = (Level::Close, Some(Detail::Swapped));
        return (swapped, swapped);
    }
    straight
}

/// Given names split differently (`ale xander`, `alexander`; `ann marie`,
/// `annmarie`): the first words differ, but all the given names run together are
/// the same, or one typo apart. `None` when neither side has more than one given
/// name, or the joined names disagree (then the first names are compared alone).
fn joined_given(a: &Side<'_>, b: &Side<'_>) -> Option<Outcome> {
    if a.given_joined.is_none() && b.given_joined.is_none() {
        return None;
    }
    let ja = a.given_joined.or(a.given.map(|t| t.s))?;
    let jb = b.given_joined.or(b.given.map(|t| t.s))?;
    if a.given.map(|t| t.s) == b.given.map(|t| t.s) {
        return None;
    }
    if ja == jb {
        Some((Level::Exact, Some(Detail::Spacing)))
    } else if ja.len().min(jb.len()) >= 5 && osa_distance(ja, jb) <= 1 {
        Some((Level::Close, Some(Detail::Typo)))
    } else {
        None
    }
}

/// One name against another.
fn name(a: Tok<'_>, b: Tok<'_>, given: bool) -> Outcome {
    if a.s == b.s {
        return (Level::Exact, None);
    }
    if a.s.contains(' ') || b.s.contains(' ') {
        if squashed(a.s) == squashed(b.s) {
            return (Level::Exact, Some(Detail::Spacing));
        }
        // Compound names: one part of one is a part of the other.
        if name_words(a.s).any(|wa| wa.len() >= 3 && name_words(b.s).any(|wb| wa == wb)) {
            return (Level::Close, Some(Detail::CompoundPart));
        }
    }
    if given && a.nick.iter().any(|g| b.nick.contains(g)) {
        return (Level::Close, Some(Detail::Nickname));
    }
    let shortest = a.s.len().min(b.s.len());
    if shortest >= 3 && osa_distance(a.s, b.s) <= 1 {
        return (Level::Close, Some(Detail::Typo));
    }
    let jw = jaro_winkler(a.s, b.s);
    if jw >= 0.92 {
        return (Level::Close, Some(Detail::Similar));
    }
    if shortest >= 2 && dm_agree(a.dm, b.dm) {
        return (Level::Phonetic, Some(Detail::SoundsAlike));
    }
    if jw >= 0.85 {
        return (Level::Phonetic, Some(Detail::Similar));
    }
    if given && shortest == 1 && a.s.as_bytes().first() == b.s.as_bytes().first() {
        return (Level::Phonetic, Some(Detail::Initial));
    }
    (Level::Different, None)
}

/// Whether two Double Metaphone code pairs share a code (0 is no code).
pub(crate) fn dm_agree(a: [u32; 2], b: [u32; 2]) -> bool {
    a.iter().any(|x| *x != 0 && b.contains(x))
}

fn birth(a: u32, b: u32) -> Outcome {
    let (Some(x), Some(y)) = (BirthDate::unpack(a), BirthDate::unpack(b)) else {
        return (Level::Missing, None);
    };
    if !x.is_full() || !y.is_full() {
        // A partial date agrees at most on what both have.
        let agree = x.year == y.year && (x.month == 0 || y.month == 0 || x.month == y.month);
        return if agree {
            (Level::Phonetic, Some(Detail::Partial))
        } else {
            (Level::Different, None)
        };
    }
    match compare_dates(x, y) {
        DateRelation::Same => (Level::Exact, None),
        DateRelation::Transposed => (Level::Close, Some(Detail::Transposed)),
        DateRelation::OneTypo => (Level::Close, Some(Detail::Typo)),
        DateRelation::Different
            if x.month == y.month && x.day == y.day && x.year.abs_diff(y.year) == 1 =>
        {
            (Level::Close, Some(Detail::YearOff))
        }
        DateRelation::Different => (Level::Different, None),
    }
}

fn contact(a: &[Box<str>], b: &[Box<str>], phone: bool) -> Outcome {
    if a.is_empty() || b.is_empty() {
        return (Level::Missing, None);
    }
    let mut best = (Level::Different, None);
    for x in a {
        for y in b {
            if x == y {
                return (Level::Exact, None);
            }
            let close = if phone {
                x.len() == y.len() && osa_distance(x, y) <= 1
            } else {
                osa_distance(x, y) <= 1 || x.split('@').next() == y.split('@').next()
            };
            if close {
                best = (Level::Close, Some(Detail::Typo));
            }
        }
    }
    best
}

fn street(a: Tok<'_>, b: Tok<'_>) -> Outcome {
    if a.s == b.s {
        return (Level::Exact, None);
    }
    if osa_distance(a.s, b.s) <= 2 || jaro_winkler(a.s, b.s) >= 0.9 {
        return (Level::Close, Some(Detail::Similar));
    }
    let wb: Vec<&str> = b.s.split(' ').filter(|w| w.len() >= 4).collect();
    if a.s.split(' ').any(|w| w.len() >= 4 && wb.contains(&w)) {
        return (Level::Phonetic, Some(Detail::CompoundPart));
    }
    (Level::Different, None)
}

fn place(a: Tok<'_>, b: Tok<'_>) -> Outcome {
    if a.s == b.s {
        return (Level::Exact, None);
    }
    if jaro_winkler(a.s, b.s) >= 0.9 || (a.s.len() >= 4 && osa_distance(a.s, b.s) <= 1) {
        return (Level::Close, Some(Detail::Similar));
    }
    if dm_agree(a.dm, b.dm) {
        return (Level::Phonetic, Some(Detail::SoundsAlike));
    }
    (Level::Different, None)
}

/// Identifiers are compared within one system: exactly, last four digits (a
/// system's values given as only their last 4, as SSNs often are), or one edit apart.
fn identifiers(a: &[(u32, Box<str>)], b: &[(u32, Box<str>)]) -> Outcome {
    let mut best: Option<Outcome> = None;
    let rank = |o: &Option<Outcome>| o.map_or(9, |(l, _)| l as u8);
    for (sa, va) in a {
        for (sb, vb) in b {
            if sa != sb {
                continue;
            }
            let outcome = if va == vb {
                (Level::Exact, None)
            } else if (va.len() == 4 && vb.ends_with(&**va))
                || (vb.len() == 4 && va.ends_with(&**vb))
            {
                (Level::Close, Some(Detail::LastFour))
            } else if va.len() >= 4 && osa_distance(va, vb) <= 1 {
                (Level::Close, Some(Detail::Typo))
            } else {
                (Level::Different, None)
            };
            if rank(&Some(outcome)) < rank(&best) {
                best = Some(outcome);
            }
        }
    }
    best.unwrap_or((Level::Missing, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Tok<'_> {
        Tok {
            s,
            dm: crate::phonetic(s),
            nick: crate::nicknames::groups_of(s),
            count: 1,
        }
    }

    #[test]
    fn given_names_compare_at_the_right_level() {
        let cases = [
            ("william", "william", Level::Exact),
            ("william", "bill", Level::Close),
            ("jessica", "jesica", Level::Close),
            ("jessica", "jesisca", Level::Close),
            ("catherine", "kathryn", Level::Phonetic),
            ("j", "john", Level::Phonetic),
            ("mary ann", "maryann", Level::Exact),
            ("john", "mary", Level::Different),
        ];
        for (a, b, level) in cases {
            assert_eq!(name(tok(a), tok(b), true).0, level, "{a} {b}");
            assert_eq!(name(tok(b), tok(a), true).0, level, "{b} {a}");
        }
    }

    #[test]
    fn given_names_split_differently_compare_run_together() {
        let side = |given: &'static str, joined: Option<&'static str>| Side {
            given: Some(tok(given)),
            given_joined: joined,
            ..Side::default()
        };
        let cases = [
            (
                side("ale", Some("alexander")),
                side("alexander", None),
                Level::Exact,
            ),
            (
                side("ann", Some("annmarie")),
                side("annmarie", None),
                Level::Exact,
            ),
            (
                side("br", Some("brinlry")),
                side("brinley", None),
                Level::Close,
            ),
            (
                side("ann", Some("annmarie")),
                side("ann", None),
                Level::Exact,
            ),
            (
                side("mary", Some("maryjane")),
                side("lucy", None),
                Level::Different,
            ),
        ];
        for (a, b, level) in cases {
            assert_eq!(
                compare(&a, &b).levels[Field::Given as usize],
                level,
                "{a:?}"
            );
            assert_eq!(
                compare(&b, &a).levels[Field::Given as usize],
                level,
                "{b:?}"
            );
        }
    }

    #[test]
    fn family_names_compare_at_the_right_level() {
        let cases = [
            ("smith", "smith", Level::Exact),
            ("smith", "smyth", Level::Close),
            ("garcia lopez", "garcia", Level::Close),
            ("smith jones", "jones", Level::Close),
            ("de la cruz", "cruz", Level::Close),
            ("schmidt", "shmit", Level::Phonetic),
            ("smith", "linacre", Level::Different),
            ("bill", "william", Level::Different),
        ];
        for (a, b, level) in cases {
            assert_eq!(name(tok(a), tok(b), false).0, level, "{a} {b}");
            assert_eq!(name(tok(b), tok(a), false).0, level, "{b} {a}");
        }
    }

    #[test]
    fn swapped_given_and_family_names_are_seen() {
        let a = Side {
            given: Some(tok("smith")),
            family: Some(tok("john")),
            ..Side::default()
        };
        let b = Side {
            given: Some(tok("john")),
            family: Some(tok("smith")),
            ..Side::default()
        };
        let c = compare(&a, &b);
        assert_eq!(c.levels[Field::Given as usize], Level::Close);
        assert_eq!(c.details[Field::Family as usize], Some(Detail::Swapped));
        assert_eq!(compare(&b, &a), c);
    }

    fn person(given: &'static str, middle: Option<&'static str>) -> Side<'static> {
        Side {
            given: Some(tok(given)),
            middle: middle.map(tok),
            family: Some(tok("linacre")),
            ..Side::default()
        }
    }

    fn levels(a: &Side<'_>, b: &Side<'_>) -> (Outcome, Outcome) {
        let c = compare(a, b);
        assert_eq!(compare(b, a), c, "not symmetric");
        let get = |f: Field| (c.levels[f as usize], c.details[f as usize]);
        (get(Field::Given), get(Field::Middle))
    }

    #[test]
    fn a_middle_name_meets_its_initial() {
        let cases = [
            (
                Some("robert"),
                Some("r"),
                Level::Close,
                Some(Detail::Initial),
            ),
            (Some("r"), Some("r"), Level::Close, Some(Detail::Initial)),
            (Some("robert"), Some("robert"), Level::Exact, None),
            (
                Some("robert"),
                Some("bob"),
                Level::Close,
                Some(Detail::Nickname),
            ),
            (Some("robert"), Some("t"), Level::Different, None),
            (Some("robert"), Some("ann"), Level::Different, None),
            (Some("robert"), None, Level::Missing, None),
        ];
        for (a, b, level, detail) in cases {
            let (_, middle) = levels(&person("john", a), &person("john", b));
            assert_eq!(middle, (level, detail), "{a:?} {b:?}");
        }
    }

    #[test]
    fn someone_who_goes_by_the_middle_name_is_seen() {
        // EMR: John Robert; intake: Robert (no middle), or Robert J (swapped).
        let (given, middle) = levels(&person("john", Some("robert")), &person("robert", None));
        assert_eq!(given, (Level::Close, Some(Detail::MiddleName)));
        assert_eq!(middle.0, Level::Missing);
        let (given, middle) = levels(
            &person("john", Some("robert")),
            &person("robert", Some("john")),
        );
        assert_eq!(given, (Level::Close, Some(Detail::MiddleName)));
        assert_eq!(middle, (Level::Close, Some(Detail::MiddleName)));
        // A nickname of the middle name counts; an initial alone does not.
        let (given, _) = levels(&person("john", Some("robert")), &person("bob", None));
        assert_eq!(given, (Level::Close, Some(Detail::MiddleName)));
        let (given, _) = levels(&person("john", Some("robert")), &person("r", None));
        assert_eq!(given.0, Level::Different);
        // Another person's given name stays different.
        let (given, _) = levels(&person("john", Some("robert")), &person("mary", None));
        assert_eq!(given.0, Level::Different);
    }

    #[test]
    fn a_given_name_reduced_to_its_initial_agrees_weakly() {
        let (given, _) = levels(&person("j", None), &person("john", Some("r")));
        assert_eq!(given, (Level::Phonetic, Some(Detail::Initial)));
        let (given, _) = levels(&person("k", None), &person("john", None));
        assert_eq!(given.0, Level::Different);
    }

    #[test]
    fn hyphenated_and_compound_family_names_meet_one_part() {
        for (a, b) in [
            ("smith jones", "smith"),
            ("smith jones", "jones"),
            ("garcia lopez", "lopez"),
        ] {
            assert_eq!(
                name(tok(a), tok(b), false),
                (Level::Close, Some(Detail::CompoundPart)),
                "{a} {b}"
            );
        }
        // Folding turns a hyphen into a space.
        assert_eq!(crate::normalize::fold("Smith-Jones"), "smith jones");
    }

    #[test]
    fn birth_dates_with_the_common_slips_are_close() {
        let d = |s| BirthDate::parse(s).unwrap().packed();
        let cases = [
            ("1980-03-04", "1980-04-03", Some(Detail::Transposed)),
            ("1980-03-04", "1980-03-05", Some(Detail::Typo)),
            ("1980-03-04", "1989-03-04", Some(Detail::Typo)),
            ("1980-03-04", "1979-03-04", Some(Detail::YearOff)),
            ("1999-12-31", "2000-12-31", Some(Detail::YearOff)),
        ];
        for (a, b, detail) in cases {
            assert_eq!(birth(d(a), d(b)), (Level::Close, detail), "{a} {b}");
            assert_eq!(birth(d(b), d(a)), (Level::Close, detail), "{b} {a}");
        }
        for (a, b) in [("1980-03-04", "1978-03-04"), ("1980-03-04", "1979-03-05")] {
            assert_eq!(birth(d(a), d(b)).0, Level::Different, "{a} {b}");
        }
    }

    #[test]
    fn sex_missing_on_one_side_is_no_evidence() {
        let with = |gender| Side {
            gender,
            ..person("john", None)
        };
        let level = |a, b| compare(&with(a), &with(b)).levels[Field::Gender as usize];
        assert_eq!(level(1, 1), Level::Exact);
        assert_eq!(level(1, 2), Level::Different);
        assert_eq!(level(0, 2), Level::Missing);
        assert_eq!(level(1, 0), Level::Missing);
    }

    proptest::proptest! {
        #[test]
        fn name_comparisons_are_symmetric(
            g1 in "[a-e]{1,6}", m1 in proptest::option::of("[a-e]{1,6}"),
            g2 in "[a-e]{1,6}", m2 in proptest::option::of("[a-e]{1,6}"),
        ) {
            let a = Side { given: Some(tok(&g1)), middle: m1.as_deref().map(tok), ..Side::default() };
            let b = Side { given: Some(tok(&g2)), middle: m2.as_deref().map(tok), ..Side::default() };
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a));
        }

        #[test]
        fn a_birth_year_one_apart_is_close(y in 1900u16..2020, m in 1u8..=12, d in 1u8..=28) {
            let date = |y: u16| BirthDate::parse(&format!("{y:04}-{m:02}-{d:02}")).unwrap().packed();
            proptest::prop_assert_eq!(birth(date(y), date(y + 1)).0, Level::Close);
            proptest::prop_assert_eq!(birth(date(y + 1), date(y)).0, Level::Close);
        }
    }

    #[test]
    fn other_fields_compare_at_the_right_level() {
        let d = |s| BirthDate::parse(s).unwrap().packed();
        let cases = [
            (d("1980-03-04"), d("1980-03-04"), Level::Exact),
            (d("1980-03-04"), d("1980-04-03"), Level::Close),
            (d("1980-03-04"), d("1980-03-07"), Level::Close),
            (d("1980"), d("1980-04-03"), Level::Phonetic),
            (d("1980-03-04"), d("1975-11-20"), Level::Different),
            (0, d("1975-11-20"), Level::Missing),
        ];
        for (a, b, level) in cases {
            assert_eq!(birth(a, b).0, level, "{a} {b}");
            assert_eq!(birth(b, a).0, level, "{b} {a}");
        }
        let s = |v: &[&str]| v.iter().map(|x| Box::<str>::from(*x)).collect::<Vec<_>>();
        let phones = [
            (s(&["15551234567"]), s(&["15551234567"]), Level::Exact),
            (s(&["15551234567"]), s(&["15551234568"]), Level::Close),
            (s(&["15551234567"]), s(&["442079460958"]), Level::Different),
            (s(&[]), s(&["442079460958"]), Level::Missing),
        ];
        for (a, b, level) in &phones {
            assert_eq!(contact(a, b, true).0, *level);
        }
        let ids = |v: &[(u32, &str)]| {
            v.iter()
                .map(|(s, x)| (*s, Box::<str>::from(*x)))
                .collect::<Vec<_>>()
        };
        let cases = [
            (ids(&[(1, "A123456")]), ids(&[(1, "A123456")]), Level::Exact),
            (ids(&[(1, "A123456")]), ids(&[(1, "A123457")]), Level::Close),
            (ids(&[(2, "123456789")]), ids(&[(2, "6789")]), Level::Close),
            (
                ids(&[(1, "A123456")]),
                ids(&[(1, "B999999")]),
                Level::Different,
            ),
            (
                ids(&[(1, "A123456")]),
                ids(&[(2, "A123456")]),
                Level::Missing,
            ),
            (
                ids(&[(1, "A1"), (2, "99887766")]),
                ids(&[(1, "Z9"), (2, "99887766")]),
                Level::Exact,
            ),
        ];
        for (a, b, level) in &cases {
            assert_eq!(identifiers(a, b).0, *level, "{a:?} {b:?}");
            assert_eq!(identifiers(b, a).0, *level, "{b:?} {a:?}");
        }
        let streets = [
            ("main street", "main street", Level::Exact),
            ("main street", "mian street", Level::Close),
            ("kelly house mansfield", "mansfield place", Level::Phonetic),
            ("main street", "oak avenue", Level::Different),
        ];
        for (a, b, level) in streets {
            assert_eq!(street(tok(a), tok(b)).0, level, "{a} {b}");
        }
    }
}
