//! Patient matching: is this person already a patient, and which one?
//!
//! Pure logic, no I/O: the backend maps FHIR Patients to [`PatientRecord`], keeps an
//! [`Index`] of the EMR's patients and asks it [`Index::find`].
//!
//! The pipeline, per query:
//! 1. **Normalize** ([`normalize`]): case, accents, punctuation; name parts,
//!    nicknames, Double Metaphone codes; dates, phones (E.164), e-mails, addresses,
//!    identifiers by system.
//! 2. **Block** ([`Pass`]): several cheap keys (phonetic family name + birth year,
//!    birth date, identifier, phone, e-mail, postal code + initial, …), unioned,
//!    each capped so that a common key cannot make a query slow.
//! 3. **Score** (Fellegi-Sunter): each field's agreement [`Level`] has a weight
//!    `log2(m/u)`; exact agreement on a rare value weighs more than on a common one
//!    (term frequency). `u` comes from random pairs of the population, `m` from EM
//!    on its blocked pairs, both starting from defaults that work without data.
//! 4. **Decide** ([`Grade`]): thresholds on the posterior log-odds, and rules that
//!    never let a doubtful match be `certain` (two close candidates that are not the
//!    same person, placeholder names, likely twins).
//! 5. **Explain** ([`Explanation`]): each field's level, how it was reached, weight.
//!
//! The same inputs give the same scores: no randomness but seeded, no clock, no
//! iteration over hash order where it would change a result.

mod compare;
mod index;
mod model;
pub mod nicknames;
pub mod normalize;
pub mod rng;

pub use index::{Index, MemoryReport, Observed, QUERIES_TO_LEARN};
pub use model::{FieldParams, LABEL_WEIGHT, M_FLOOR, Model};

/// A patient as the engine sees it: raw values, as typed or as stored in FHIR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatientRecord {
    /// Given names in order (first, then middle names).
    pub given: Vec<String>,
    /// Family name (compound names as written: `Smith-Jones`, `de la Cruz`).
    pub family: Option<String>,
    /// Name suffixes (`Jr`, `III`).
    pub suffix: Vec<String>,
    /// Birth date, `YYYY-MM-DD` (or `YYYY`, `YYYY-MM`).
    pub birth_date: Option<String>,
    /// Administrative gender: `male`, `female`, `other`, `unknown`.
    pub gender: Option<String>,
    /// Phone numbers as written.
    pub phones: Vec<String>,
    /// E-mail addresses.
    pub emails: Vec<String>,
    /// Street address lines.
    pub address_lines: Vec<String>,
    /// City or suburb.
    pub city: Option<String>,
    /// State or region.
    pub state: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Identifiers (MRN, insurance member id, SSN…), each with its system.
    pub identifiers: Vec<Identifier>,
}

/// An identifier and the system that issued it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identifier {
    /// The issuing system's URI (e.g. `http://hl7.org/fhir/sid/us-ssn`).
    pub system: String,
    /// The value.
    pub value: String,
}

/// The fields compared, in the order of [`FIELDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// First given name.
    Given,
    /// Family name.
    Family,
    /// Birth date.
    BirthDate,
    /// Administrative gender.
    Gender,
    /// Any phone number.
    Phone,
    /// Any e-mail address.
    Email,
    /// House number.
    StreetNumber,
    /// Street name.
    Street,
    /// City.
    City,
    /// Postal code.
    PostalCode,
    /// State.
    State,
    /// Any identifier of a system both have.
    Identifier,
    /// The first middle name (the second given name), or its initial.
    Middle,
}

/// Every field, in index order.
pub const FIELDS: [Field; 13] = [
    Field::Given,
    Field::Family,
    Field::BirthDate,
    Field::Gender,
    Field::Phone,
    Field::Email,
    Field::StreetNumber,
    Field::Street,
    Field::City,
    Field::PostalCode,
    Field::State,
    Field::Identifier,
    Field::Middle,
];

impl Field {
    /// The field's code in explanations.
    pub fn code(self) -> &'static str {
        match self {
            Field::Given => "given",
            Field::Family => "family",
            Field::BirthDate => "birthDate",
            Field::Gender => "gender",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::StreetNumber => "streetNumber",
            Field::Street => "street",
            Field::City => "city",
            Field::PostalCode => "postalCode",
            Field::State => "state",
            Field::Identifier => "identifier",
            Field::Middle => "middle",
        }
    }
}

/// How well one field agrees. The third level is "sounds alike" for names and a
/// weaker partial agreement for other fields (same year of a partial date, a
/// shared street word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// The same value.
    Exact,
    /// Nearly the same: a typo, a nickname, a transposed day and month.
    Close,
    /// Sounds alike, or agrees in part.
    Phonetic,
    /// Disagrees.
    Different,
    /// One side or both have no value: no evidence either way.
    Missing,
}

impl Level {
    /// The level's code in explanations.
    pub fn code(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::Close => "close",
            Level::Phonetic => "phonetic",
            Level::Different => "different",
            Level::Missing => "missing",
        }
    }
}

/// How a level was reached, for the review screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Detail {
    /// One edit apart (or two adjacent characters swapped).
    Typo,
    /// Known nicknames of the same name.
    Nickname,
    /// Similar spelling (Jaro-Winkler).
    Similar,
    /// Same Double Metaphone code.
    SoundsAlike,
    /// An initial matching a name.
    Initial,
    /// Equal but for spaces (`Mary Ann`, `Maryann`).
    Spacing,
    /// One part of a compound value is the other.
    CompoundPart,
    /// Given and family names swapped.
    Swapped,
    /// Day and month swapped.
    Transposed,
    /// Only part of a date is known.
    Partial,
    /// Last four digits of an identifier.
    LastFour,
    /// One's given name is the other's middle name (someone who goes by it).
    MiddleName,
    /// The same day and month, the year one apart.
    YearOff,
}

impl Detail {
    /// The detail's code in explanations.
    pub fn code(self) -> &'static str {
        match self {
            Detail::Typo => "typo",
            Detail::Nickname => "nickname",
            Detail::Similar => "similar",
            Detail::SoundsAlike => "sounds-alike",
            Detail::Initial => "initial",
            Detail::Spacing => "spacing",
            Detail::CompoundPart => "compound-part",
            Detail::Swapped => "swapped",
            Detail::Transposed => "day-month-transposed",
            Detail::Partial => "partial",
            Detail::LastFour => "last-four",
            Detail::MiddleName => "middle-name",
            Detail::YearOff => "year-off-by-one",
        }
    }
}

/// FHIR's match-grade, plus "not returned".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    /// The same patient: link automatically.
    Certain,
    /// Likely the same: a person reviews.
    Probable,
    /// Maybe the same: a person reviews.
    Possible,
    /// Not the same.
    CertainlyNot,
}

impl Grade {
    /// FHIR's `match-grade` code.
    pub fn code(self) -> &'static str {
        match self {
            Grade::Certain => "certain",
            Grade::Probable => "probable",
            Grade::Possible => "possible",
            Grade::CertainlyNot => "certainly-not",
        }
    }
}

/// Why a candidate was held below `certain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hold {
    /// Another candidate, a different person, scores nearly as high.
    Ambiguous,
    /// The query's or the candidate's name is a placeholder.
    Placeholder,
    /// Same birth date and family name, an unrelated given name (not a nickname,
    /// initial, sound-alike, typo or the other's middle name), the same recorded sex
    /// or one missing, and no agreeing identifier: maybe a twin. With the recorded
    /// sexes different, a given name short of equal but related (Alexander and
    /// Alexandra) holds too; an unrelated one is another person, not returned. An
    /// agreeing address, phone or postal code does not lift it: twins share those.
    PossibleTwin,
}

impl Hold {
    /// The reason's code in explanations.
    pub fn code(self) -> &'static str {
        match self {
            Hold::Ambiguous => "ambiguous",
            Hold::Placeholder => "placeholder-name",
            Hold::PossibleTwin => "possible-twin",
        }
    }
}

/// Score thresholds, in bits of posterior log-odds (`log2(p / (1 - p))`, with the
/// prior that a query is one given patient of the population). Higher is stricter.
/// Configured as match probabilities ([`Thresholds::from_probabilities`]), so a
/// threshold means the same risk whether four fields or ten are shared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// At or above: `certain`.
    pub certain: f64,
    /// At or above: `probable`.
    pub probable: f64,
    /// At or above: `possible`; below, not returned.
    pub possible: f64,
}

/// A probability's log-odds in bits.
pub fn log_odds(p: f64) -> f64 {
    (p / (1.0 - p)).log2()
}

/// Log-odds in bits as a probability.
pub fn probability(log_odds: f64) -> f64 {
    1.0 / (1.0 + (-log_odds).exp2())
}

impl Thresholds {
    /// The default match probabilities: `certain` from 0.999, `probable` from 0.8,
    /// `possible` from 0.06.
    pub const DEFAULT_PROBABILITIES: [f64; 3] = [0.999, 0.8, 0.06];

    /// Thresholds from match probabilities, each strictly between 0 and 1 and none
    /// below the next (`certain` ≥ `probable` ≥ `possible`). `None` otherwise.
    pub fn from_probabilities(certain: f64, probable: f64, possible: f64) -> Option<Self> {
        let ok = |p: f64| p > 0.0 && p < 1.0;
        (ok(certain) && ok(probable) && ok(possible) && certain >= probable && probable >= possible)
            .then(|| Self {
                certain: log_odds(certain),
                probable: log_odds(probable),
                possible: log_odds(possible),
            })
    }

    /// The thresholds as match probabilities (certain, probable, possible).
    pub fn probabilities(&self) -> [f64; 3] {
        [
            probability(self.certain),
            probability(self.probable),
            probability(self.possible),
        ]
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        let [c, p, q] = Self::DEFAULT_PROBABILITIES;
        Self {
            certain: log_odds(c),
            probable: log_odds(p),
            possible: log_odds(q),
        }
    }
}

/// The engine's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Grade thresholds.
    pub thresholds: Thresholds,
    /// Most candidates one blocking key may bring; more are cut and reported.
    pub block_cap: usize,
    /// Two candidates, not the same person, within this many bits of each other
    /// make the top one ambiguous (never `certain`).
    pub ambiguity_margin: f64,
    /// Country calling code for phone numbers written without one.
    pub default_country: String,
    /// Re-estimate `u` and `m` when the population has doubled since the last fit
    /// (from 1,000 patients on).
    pub auto_refit: bool,
    /// The population the index's patients are drawn from, when it holds only some
    /// of them (candidates fetched from a remote EMR's search): the prior is then
    /// `-log2(population)`, and exact agreement on a name or place weighs its
    /// model weight, since counts among a few candidates say nothing of how common
    /// a value is. `None`: the index holds the whole population.
    pub population: Option<usize>,
    /// Count the comparison patterns each query meets, for the model to learn `m`
    /// from ([`Index::fit`]). Off for lookups that are not intakes (a deduplication
    /// scan, where each query is a stored chart meeting itself).
    pub learn: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            thresholds: Thresholds::default(),
            block_cap: 200,
            ambiguity_margin: 6.0,
            default_country: "1".into(),
            auto_refit: true,
            population: None,
            learn: true,
        }
    }
}

/// What a query asks besides the patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchOptions {
    /// Return only `certain` candidates.
    pub only_certain: bool,
    /// Return at most this many.
    pub count: usize,
}

impl Default for MatchOptions {
    fn default() -> Self {
        Self {
            only_certain: false,
            count: 10,
        }
    }
}

/// The blocking passes: each finds candidates sharing one cheap key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pass {
    /// Family name's Double Metaphone code and birth year.
    FamilyPhoneticYear,
    /// Full birth date.
    BirthDate,
    /// An identifier (system and value).
    Identifier,
    /// A phone number.
    Phone,
    /// An e-mail address.
    Email,
    /// Postal code and the given name's initial.
    PostalInitial,
    /// Both names' Double Metaphone codes, in either order (swaps included).
    NamesPhonetic,
    /// Given name's Double Metaphone code and birth year and month.
    GivenPhoneticYearMonth,
    /// House number and the street name's first four letters (spaces dropped): a
    /// typo later in the name, or a space lost, still meets.
    StreetAddress,
    /// Family name's Double Metaphone code and postal code.
    FamilyPostal,
    /// House number and postal code.
    StreetNumberPostal,
    /// Family name's Double Metaphone code and city (spaces dropped).
    FamilyCity,
    /// Given name's Double Metaphone code and city (spaces dropped).
    GivenCity,
}

impl Pass {
    /// The pass's code in logs.
    pub fn code(self) -> &'static str {
        match self {
            Pass::FamilyPhoneticYear => "family-phonetic+birth-year",
            Pass::BirthDate => "birth-date",
            Pass::Identifier => "identifier",
            Pass::Phone => "phone",
            Pass::Email => "email",
            Pass::PostalInitial => "postal-code+given-initial",
            Pass::NamesPhonetic => "names-phonetic",
            Pass::GivenPhoneticYearMonth => "given-phonetic+birth-year-month",
            Pass::StreetAddress => "street-number+street-prefix",
            Pass::FamilyPostal => "family-phonetic+postal-code",
            Pass::StreetNumberPostal => "street-number+postal-code",
            Pass::FamilyCity => "family-phonetic+city",
            Pass::GivenCity => "given-phonetic+city",
        }
    }
}

/// One field's part in a score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldExplanation {
    /// Which field.
    pub field: Field,
    /// How well it agrees.
    pub level: Level,
    /// How that was seen, if more than plain equality or difference.
    pub detail: Option<Detail>,
    /// Its weight in bits (`log2(m/u)`, term-frequency adjusted for exact names and
    /// places); 0 when missing.
    pub weight: f64,
}

/// Why a candidate scored what it did.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// Every field, in [`FIELDS`] order.
    pub fields: Vec<FieldExplanation>,
    /// The prior log-odds in bits (`-log2(population)`).
    pub prior: f64,
    /// What keeps it from ever being `certain`, whatever its score.
    pub held: Vec<Hold>,
    /// The version of the model that scored it ([`Model::version`]).
    pub model: u64,
}

/// One stored patient that may be the query's.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The stored patient's id.
    pub id: String,
    /// Sum of the field weights, in bits.
    pub weight: f64,
    /// Posterior log-odds in bits: `weight + prior`.
    pub log_odds: f64,
    /// Posterior probability, 0..1.
    pub score: f64,
    /// The grade.
    pub grade: Grade,
    /// Why.
    pub explanation: Explanation,
}

/// The answer to a query.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchOutcome {
    /// Candidates at `possible` or better, best first.
    pub candidates: Vec<Candidate>,
    /// How many stored patients blocking brought for scoring.
    pub considered: usize,
    /// The passes whose candidate cap was hit (to log).
    pub capped: Vec<Pass>,
}

/// Double Metaphone (primary, alternate) of a folded word, packed in a `u32` each
/// (up to 4 letters, 0 when empty).
pub fn phonetic(folded: &str) -> [u32; 2] {
    use std::sync::OnceLock;
    static DM: OnceLock<rphonetic::DoubleMetaphone> = OnceLock::new();
    let letters: String = folded.chars().filter(char::is_ascii_alphabetic).collect();
    if letters.is_empty() {
        return [0, 0];
    }
    let result = DM
        .get_or_init(rphonetic::DoubleMetaphone::default)
        .double_metaphone(&letters);
    let pack = |code: String| {
        code.bytes()
            .take(4)
            .fold(0u32, |acc, b| (acc << 8) | u32::from(b))
    };
    let (primary, alternate) = (pack(result.primary()), pack(result.alternate()));
    [primary, if alternate == primary { 0 } else { alternate }]
}
