//! Normalizers: every value is brought to one canonical form before it is compared
//! or used as a blocking key. Pure functions, table-tested below.

use unicode_normalization::UnicodeNormalization as _;

/// Lower case, accents removed, punctuation to spaces (apostrophes dropped, so
/// `O'Brien` is `obrien`), whitespace collapsed. Hyphens become spaces: compound
/// names are split by [`name_words`].
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = true; // no leading space
    for c in s.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        let mapped: &str = match c {
            'ß' => "ss",
            'æ' | 'Æ' => "ae",
            'œ' | 'Œ' => "oe",
            'ø' | 'Ø' => "o",
            'ł' | 'Ł' => "l",
            'đ' | 'Đ' => "d",
            'þ' | 'Þ' => "th",
            '\'' | '’' | '`' | '´' => "",
            _ => {
                if c.is_alphanumeric() {
                    for l in c.to_lowercase() {
                        out.push(l);
                    }
                    space = false;
                } else if !space {
                    out.push(' ');
                    space = true;
                }
                continue;
            }
        };
        if !mapped.is_empty() {
            out.push_str(mapped);
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Generational and professional suffixes found at the end of a name.
const SUFFIXES: &[&str] = &[
    "jr", "sr", "ii", "iii", "iv", "v", "md", "phd", "dds", "esq", "junior", "senior",
];

/// Family-name particles kept inside the name but not a name part on their own.
const PARTICLES: &[&str] = &[
    "de", "del", "della", "la", "le", "van", "von", "der", "den", "da", "di", "du", "dos", "das",
    "y", "e", "st", "bin", "ibn", "al", "el",
];

/// A person's name split into the parts that are compared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    /// First given name, folded.
    pub given: Option<String>,
    /// Further given names, folded and joined by spaces.
    pub middle: Option<String>,
    /// Family name, folded, compound parts joined by one space (`garcia lopez`).
    pub family: Option<String>,
    /// A generational suffix (`jr`, `iii`), if one was written.
    pub suffix: Option<String>,
}

/// Splits raw name parts as FHIR carries them (`given[]`, `family`, `suffix[]`).
/// A suffix typed into the family or given name (`Smith Jr.`) is moved out.
pub fn split_name(given: &[String], family: Option<&str>, suffix: &[String]) -> Name {
    let mut given_words: Vec<String> = given
        .iter()
        .flat_map(|g| fold(g).split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    let mut family_words: Vec<String> = family
        .map(|f| fold(f).split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    family_words.retain(|w| !w.is_empty());
    let mut suffixes: Vec<String> = suffix
        .iter()
        .map(|s| fold(s))
        .filter(|s| !s.is_empty())
        .collect();
    // Only strip a trailing suffix when something is left of the name.
    while family_words.len() > 1
        && family_words
            .last()
            .is_some_and(|w| SUFFIXES.contains(&w.as_str()))
    {
        suffixes.extend(family_words.pop());
    }
    while given_words.len() > 1
        && given_words
            .last()
            .is_some_and(|w| SUFFIXES.contains(&w.as_str()) && w != "v")
    {
        suffixes.extend(given_words.pop());
    }
    let join = |words: &[String]| (!words.is_empty()).then(|| words.join(" "));
    Name {
        given: given_words.first().cloned(),
        middle: join(given_words.get(1..).unwrap_or_default()),
        family: join(&family_words),
        suffix: suffixes.into_iter().next(),
    }
}

/// The words of a folded compound family name that count as name parts
/// (`de la cruz` → `cruz`; `smith jones` → `smith`, `jones`).
pub fn name_words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(' ')
        .filter(|w| !w.is_empty() && !PARTICLES.contains(w))
}

/// A folded name with its spaces removed: `mary ann` and `maryann` compare equal.
pub fn squashed(folded: &str) -> String {
    folded.chars().filter(|c| *c != ' ').collect()
}

/// A calendar date as compared: year, month, day (month or day 0 when unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthDate {
    /// Year.
    pub year: u16,
    /// Month 1-12, or 0.
    pub month: u8,
    /// Day 1-31, or 0.
    pub day: u8,
}

impl BirthDate {
    /// Reads `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (FHIR `date`) and `YYYYMMDD`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let parts: Vec<usize> = s.split('-').map(str::len).collect();
        let well_formed = matches!(parts.as_slice(), [_] | [4, 2] | [4, 2, 2]);
        if !well_formed || digits.len() != s.len() - (parts.len() - 1) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|d| d.parse::<u16>().ok());
        let (year, month, day) = match digits.len() {
            4 => (num(0..4)?, 0, 0),
            6 => (num(0..4)?, num(4..6)?, 0),
            8 => (num(0..4)?, num(4..6)?, num(6..8)?),
            _ => return None,
        };
        if year < 1800 || month > 12 || day > 31 || (month == 0 && day != 0) {
            return None;
        }
        Some(Self {
            year,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        })
    }

    /// `YYYYMMDD` as a number: compact storage and a blocking key.
    pub fn packed(self) -> u32 {
        u32::from(self.year) * 10_000 + u32::from(self.month) * 100 + u32::from(self.day)
    }

    /// The inverse of [`BirthDate::packed`] (0 is no date).
    pub fn unpack(packed: u32) -> Option<Self> {
        (packed != 0).then(|| Self {
            year: u16::try_from(packed / 10_000).unwrap_or(0),
            month: u8::try_from(packed / 100 % 100).unwrap_or(0),
            day: u8::try_from(packed % 100).unwrap_or(0),
        })
    }

    /// Whether the day and month are both known.
    pub fn is_full(self) -> bool {
        self.month != 0 && self.day != 0
    }

    fn digits(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        let mut n = self.packed();
        for d in out.iter_mut().rev() {
            *d = u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
        out
    }
}

/// How two birth dates relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateRelation {
    /// The same day.
    Same,
    /// Day and month swapped (`03/04` for `04/03`).
    Transposed,
    /// One digit wrong, or two adjacent digits swapped.
    OneTypo,
    /// Anything else.
    Different,
}

/// Compares two full dates, seeing day/month transposition and one-digit typos.
pub fn compare_dates(a: BirthDate, b: BirthDate) -> DateRelation {
    if a == b {
        return DateRelation::Same;
    }
    if a.year == b.year && a.is_full() && b.is_full() && a.month == b.day && a.day == b.month {
        return DateRelation::Transposed;
    }
    let (da, db) = (a.digits(), b.digits());
    let diff: Vec<usize> = (0..8).filter(|&i| da[i] != db[i]).collect();
    match diff.as_slice() {
        [_] => DateRelation::OneTypo,
        [i, j] if *j == i + 1 && da[*i] == db[*j] && da[*j] == db[*i] => DateRelation::OneTypo,
        _ => DateRelation::Different,
    }
}

/// A phone number as E.164 digits (no `+`). Numbers written without a country code
/// get `default_country` (`"1"` for North America). `None` if too short to be a number.
pub fn phone(s: &str, default_country: &str) -> Option<String> {
    let trimmed = s.trim();
    let plus = trimmed.starts_with('+');
    // Stop at an extension: "x123", "ext. 123".
    let main = trimmed
        .split(|c: char| c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    let mut digits: String = main.chars().filter(char::is_ascii_digit).collect();
    if !plus && let Some(rest) = digits.strip_prefix("00") {
        digits = rest.to_owned();
    } else if !plus {
        let national = digits.trim_start_matches('0');
        if default_country == "1" && national.len() == 11 && national.starts_with('1') {
            digits = national.to_owned();
        } else {
            digits = format!("{default_country}{national}");
        }
    }
    (8..=15).contains(&digits.len()).then_some(digits)
}

/// An e-mail address, trimmed and lower-cased. `None` without an `@`.
pub fn email(s: &str) -> Option<String> {
    let e = s.trim().to_lowercase();
    (e.contains('@') && e.len() > 2).then_some(e)
}

/// Street-type and direction abbreviations, to their long form.
const STREET_WORDS: &[(&str, &str)] = &[
    ("st", "street"),
    ("str", "street"),
    ("rd", "road"),
    ("ave", "avenue"),
    ("av", "avenue"),
    ("dr", "drive"),
    ("ln", "lane"),
    ("ct", "court"),
    ("pl", "place"),
    ("blvd", "boulevard"),
    ("hwy", "highway"),
    ("pkwy", "parkway"),
    ("cres", "crescent"),
    ("cct", "circuit"),
    ("cl", "close"),
    ("pde", "parade"),
    ("tce", "terrace"),
    ("sq", "square"),
    ("cir", "circle"),
    ("ter", "terrace"),
    ("mt", "mount"),
    ("apt", "apartment"),
    ("n", "north"),
    ("s", "south"),
    ("e", "east"),
    ("w", "west"),
    ("ne", "northeast"),
    ("nw", "northwest"),
    ("se", "southeast"),
    ("sw", "southwest"),
];

/// An address line split into street number and street name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Street {
    /// The house number as written (`12`, `12a`), folded.
    pub number: Option<String>,
    /// The street name, folded, abbreviations written out.
    pub name: Option<String>,
}

/// Splits address lines: the first word with a digit on the first line that has one
/// is the number; the rest of that line is the street.
pub fn street(lines: &[String]) -> Street {
    let mut number = None;
    let mut words: Vec<String> = Vec::new();
    for line in lines {
        let folded = fold(line);
        let mut line_words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        if number.is_none()
            && let Some(i) = line_words
                .iter()
                .position(|w| w.chars().any(|c| c.is_ascii_digit()))
        {
            number = Some(line_words.remove(i).to_owned());
        }
        if words.is_empty() {
            words = line_words
                .iter()
                .map(|w| {
                    STREET_WORDS
                        .iter()
                        .find(|(short, _)| short == w)
                        .map_or(*w, |(_, long)| long)
                        .to_owned()
                })
                .collect();
        }
    }
    Street {
        number,
        name: (!words.is_empty()).then(|| words.join(" ")),
    }
}

/// A postal code: letters and digits only, upper case (`sw1a 1aa` → `SW1A1AA`).
pub fn postal_code(s: &str) -> Option<String> {
    let p: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (!p.is_empty()).then_some(p)
}

/// An identifier value: letters and digits only, upper case (`123-45-6789` →
/// `123456789`).
pub fn identifier_value(s: &str) -> Option<String> {
    postal_code(s)
}

/// Names that stand for "not known yet" and must never anchor a certain match.
const PLACEHOLDERS: &[&str] = &[
    "baby",
    "boy",
    "girl",
    "infant",
    "newborn",
    "unknown",
    "unk",
    "unnamed",
    "noname",
    "doe",
    "test",
    "patient",
    "twin",
    "male",
    "female",
    "nfn",
    "nln",
    "fnu",
    "lnu",
    "xxx",
    "zzz",
    "trauma",
    "anonymous",
    "john doe",
    "jane doe",
    "baby boy",
    "baby girl",
];

/// Whether a folded name is a placeholder (`Baby Boy`, `John Doe`, `Unknown`, test
/// patients).
pub fn is_placeholder(folded: &str) -> bool {
    folded.is_empty()
        || PLACEHOLDERS.contains(&folded)
        || folded.split(' ').any(|w| {
            matches!(
                w,
                "baby" | "unknown" | "test" | "doe" | "unnamed" | "newborn" | "anonymous" | "zzz"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_folded() {
        let cases = [
            ("José", "jose"),
            ("  MÜLLER ", "muller"),
            ("O'Brien", "obrien"),
            ("Smith-Jones", "smith jones"),
            ("de la  Cruz", "de la cruz"),
            ("Strauß", "strauss"),
            ("Łukasz", "lukasz"),
            ("Søren", "soren"),
            ("Anne.Marie", "anne marie"),
            ("", ""),
            ("--", ""),
        ];
        for (raw, folded) in cases {
            assert_eq!(fold(raw), folded, "{raw}");
        }
    }

    #[test]
    fn names_are_split_into_parts() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        type Case<'a> = (&'a [&'a str], Option<&'a str>, &'a [&'a str], Name);
        let cases: &[Case<'_>] = &[
            (
                &["Mary Ann", "Louise"],
                Some("Smith-Jones"),
                &[],
                Name {
                    given: Some("mary".into()),
                    middle: Some("ann louise".into()),
                    family: Some("smith jones".into()),
                    suffix: None,
                },
            ),
            (
                &["John"],
                Some("Smith Jr."),
                &[],
                Name {
                    given: Some("john".into()),
                    middle: None,
                    family: Some("smith".into()),
                    suffix: Some("jr".into()),
                },
            ),
            (
                &["Henry", "III"],
                Some("Ford"),
                &["Sr"],
                Name {
                    given: Some("henry".into()),
                    middle: None,
                    family: Some("ford".into()),
                    suffix: Some("sr".into()),
                },
            ),
            (&[], None, &[], Name::default()),
        ];
        for (given, family, suffix, expected) in cases {
            assert_eq!(&split_name(&s(given), *family, &s(suffix)), expected);
        }
    }

    #[test]
    fn compound_family_names_keep_their_parts() {
        assert_eq!(name_words("de la cruz").collect::<Vec<_>>(), ["cruz"]);
        assert_eq!(
            name_words("garcia lopez").collect::<Vec<_>>(),
            ["garcia", "lopez"]
        );
        assert_eq!(squashed("mary ann"), "maryann");
    }

    #[test]
    fn birth_dates_are_parsed() {
        let d = |year, month, day| Some(BirthDate { year, month, day });
        let cases = [
            ("1980-03-04", d(1980, 3, 4)),
            ("19800304", d(1980, 3, 4)),
            ("1980-03", d(1980, 3, 0)),
            ("1980", d(1980, 0, 0)),
            ("1980-13-01", None),
            ("80-03-04", None),
            ("1980/03/04", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(BirthDate::parse(raw), expected, "{raw}");
        }
        let date = BirthDate::parse("1980-03-04").unwrap();
        assert_eq!(BirthDate::unpack(date.packed()), Some(date));
    }

    #[test]
    fn birth_date_typos_and_transpositions_are_seen() {
        let p = |s| BirthDate::parse(s).unwrap();
        let cases = [
            ("1980-03-04", "1980-03-04", DateRelation::Same),
            ("1980-03-04", "1980-04-03", DateRelation::Transposed),
            ("1980-03-04", "1980-03-05", DateRelation::OneTypo),
            ("1980-03-04", "1908-03-04", DateRelation::OneTypo),
            ("1980-03-04", "1989-03-04", DateRelation::OneTypo),
            ("1980-03-04", "1981-04-04", DateRelation::Different),
            ("1980-12-25", "1975-06-01", DateRelation::Different),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_dates(p(a), p(b)), expected, "{a} {b}");
            assert_eq!(compare_dates(p(b), p(a)), expected, "{b} {a}");
        }
    }

    #[test]
    fn phones_become_e164_digits() {
        let cases = [
            ("(555) 123-4567", Some("15551234567")),
            ("+1 555 123 4567", Some("15551234567")),
            ("1-555-123-4567", Some("15551234567")),
            ("+44 20 7946 0958", Some("442079460958")),
            ("0044 20 7946 0958", Some("442079460958")),
            ("555-123-4567 x89", Some("15551234567")),
            ("123", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(phone(raw, "1").as_deref(), expected, "{raw}");
        }
        assert_eq!(phone("02 9876 5432", "61").as_deref(), Some("61298765432"));
    }

    #[test]
    fn emails_are_lower_cased() {
        assert_eq!(
            email(" Jane.Doe@Example.ORG ").as_deref(),
            Some("jane.doe@example.org")
        );
        assert_eq!(email("not an email"), None);
    }

    #[test]
    fn addresses_are_split_and_abbreviations_written_out() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        type Case<'a> = (&'a [&'a str], Option<&'a str>, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (&["12 Main St."], Some("12"), Some("main street")),
            (
                &["12a Main Street", "Apt 4"],
                Some("12a"),
                Some("main street"),
            ),
            (
                &["Kelly House", "5 Mansfield Pl"],
                Some("5"),
                Some("kelly house"),
            ),
            (&["PO Box"], None, Some("po box")),
            (
                &["1600 Pennsylvania Ave NW"],
                Some("1600"),
                Some("pennsylvania avenue northwest"),
            ),
            (&[], None, None),
        ];
        for (lines, number, name) in cases {
            let st = street(&s(lines));
            assert_eq!(st.number.as_deref(), *number, "{lines:?}");
            assert_eq!(st.name.as_deref(), *name, "{lines:?}");
        }
        assert_eq!(postal_code("sw1a 1aa").as_deref(), Some("SW1A1AA"));
        assert_eq!(postal_code(" "), None);
        assert_eq!(
            identifier_value("123-45-6789").as_deref(),
            Some("123456789")
        );
    }

    #[test]
    fn placeholder_names_are_recognised() {
        for p in [
            "baby boy", "john doe", "unknown", "test", "baby", "zzz test",
        ] {
            assert!(is_placeholder(p), "{p}");
        }
        for n in ["john", "dow", "testa", "smith"] {
            assert!(!is_placeholder(n), "{n}");
        }
    }
}
