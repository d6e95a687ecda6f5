//! The in-memory index over the EMR's patients: compact records (strings interned
//! per field, with their term frequency), blocking keys, and the fitted model.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use crate::compare::{Side, Tok, compare};
use crate::model::{Model, count_levels, term_frequency_field};
use crate::normalize::{self, BirthDate};
use crate::rng::SplitMix;
use crate::{
    Candidate, Config, Explanation, FIELDS, Field, FieldExplanation, Grade, Hold, Level,
    MatchOptions, MatchOutcome, Pass, PatientRecord, nicknames, phonetic,
};

const NONE: u32 = u32::MAX;

/// Interned values of one field, each with its phonetic code, nickname groups and
/// how many live patients have it.
#[derive(Debug, Default)]
struct Vocab {
    ids: HashMap<Box<str>, u32>,
    entries: Vec<Entry>,
    names: bool,
}

#[derive(Debug)]
struct Entry {
    s: Box<str>,
    dm: [u32; 2],
    nick: &'static [u16],
    count: u32,
}

impl Vocab {
    fn names() -> Self {
        Self {
            names: true,
            ..Self::default()
        }
    }

    fn intern(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return NONE };
        if let Some(id) = self.ids.get(s) {
            self.entries[*id as usize].count += 1;
            return *id;
        }
        let id = u32::try_from(self.entries.len()).unwrap_or(NONE);
        let (dm, nick) = if self.names {
            (phonetic(s), nicknames::groups_of(s))
        } else {
            ([0, 0], &[][..])
        };
        self.entries.push(Entry {
            s: s.into(),
            dm,
            nick,
            count: 1,
        });
        self.ids.insert(s.into(), id);
        id
    }

    fn release(&mut self, id: u32) {
        if let Some(e) = self.entries.get_mut(id as usize) {
            e.count = e.count.saturating_sub(1);
        }
    }

    fn tok(&self, id: u32) -> Option<Tok<'_>> {
        self.entries.get(id as usize).map(|e| Tok {
            s: &e.s,
            dm: e.dm,
            nick: e.nick,
            count: e.count,
        })
    }

    fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.entries.iter().map(|e| 2 * e.s.len()).sum::<usize>()
            + self.ids.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
    }
}

/// A query or a record being stored, normalized, with owned strings.
#[derive(Debug, Default)]
struct Normalized {
    given: Option<String>,
    /// Every given name run together (`ale xander` → `alexander`), when there is
    /// more than one.
    given_joined: Option<String>,
    /// The first middle name.
    middle: Option<String>,
    family: Option<String>,
    birth: u32,
    gender: u8,
    phones: Vec<Box<str>>,
    emails: Vec<Box<str>>,
    street_no: Option<String>,
    street: Option<String>,
    city: Option<String>,
    postal: Option<String>,
    state: Option<String>,
    ids: Vec<(String, Box<str>)>,
    placeholder: bool,
}

fn normalize(r: &PatientRecord, config: &Config) -> Normalized {
    let name = normalize::split_name(&r.given, r.family.as_deref(), &r.suffix);
    // A missing name is no evidence either way; a placeholder is a claim to be
    // doubted.
    let placeholder = [&name.given, &name.family]
        .iter()
        .any(|n| n.as_deref().is_some_and(normalize::is_placeholder))
        || normalize::is_placeholder(&format!(
            "{} {}",
            name.given.as_deref().unwrap_or_default(),
            name.family.as_deref().unwrap_or_default()
        ));
    let street = normalize::street(&r.address_lines);
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    let mut phones: Vec<Box<str>> = r
        .phones
        .iter()
        .filter_map(|p| normalize::phone(p, &config.default_country))
        .map(Into::into)
        .collect();
    phones.sort_unstable();
    phones.dedup();
    let mut emails: Vec<Box<str>> = r
        .emails
        .iter()
        .filter_map(|e| normalize::email(e))
        .map(Into::into)
        .collect();
    emails.sort_unstable();
    emails.dedup();
    let mut ids: Vec<(String, Box<str>)> = r
        .identifiers
        .iter()
        .filter_map(|i| {
            Some((
                i.system.trim().to_owned(),
                normalize::identifier_value(&i.value)?.into(),
            ))
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let given_joined = name.middle.as_deref().map(|m| {
        normalize::squashed(&format!(
            "{} {m}",
            name.given.as_deref().unwrap_or_default()
        ))
    });
    Normalized {
        // Only a second given name is a middle name: one written as `Alexa-Rose`
        // or `Mary Ann` is one first name (compared run together).
        middle: r.given.get(1).and_then(|m| {
            normalize::fold(m)
                .split(' ')
                .find(|w| !w.is_empty())
                .map(str::to_owned)
        }),
        given: name.given,
        given_joined,
        family: name.family,
        birth: r
            .birth_date
            .as_deref()
            .and_then(BirthDate::parse)
            .map_or(0, BirthDate::packed),
        gender: match r.gender.as_deref().map(str::trim) {
            Some("male") => 1,
            Some("female") => 2,
            _ => 0,
        },
        phones,
        emails,
        street_no: street.number,
        street: street.name,
        city: r.city.as_deref().map(normalize::fold).and_then(non_empty),
        postal: r.postal_code.as_deref().and_then(normalize::postal_code),
        state: r.state.as_deref().map(normalize::fold).and_then(non_empty),
        ids,
        placeholder,
    }
}

/// One stored patient, compact: interned symbols and small boxed slices.
#[derive(Debug)]
struct Stored {
    id: Box<str>,
    given: u32,
    given_joined: u32,
    middle: u32,
    family: u32,
    birth: u32,
    gender: u8,
    placeholder: bool,
    street_no: u32,
    street: u32,
    city: u32,
    postal: u32,
    state: u32,
    phones: Box<[Box<str>]>,
    emails: Box<[Box<str>]>,
    ids: Box<[(u32, Box<str>)]>,
}

/// What the index holds, in bytes (an estimate from capacities and lengths).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// Live patients.
    pub patients: usize,
    /// Everything: records, interned values, blocking keys, the id map.
    pub total_bytes: usize,
    /// `total_bytes / patients`.
    pub bytes_per_patient: usize,
}

/// The in-memory patient index. Build with [`Index::upsert`] for every patient,
/// then [`Index::fit`]; query with [`Index::find`].
#[derive(Debug)]
pub struct Index {
    config: Config,
    model: Model,
    records: Vec<Option<Stored>>,
    by_id: HashMap<Box<str>, u32>,
    blocks: HashMap<u64, Vec<u32>>,
    given: Vocab,
    given_joined: Vocab,
    middle: Vocab,
    family: Vocab,
    street_no: Vocab,
    street: Vocab,
    city: Vocab,
    postal: Vocab,
    state: Vocab,
    systems: Vocab,
    live: usize,
    /// The comparison patterns of the queries' blocked pairs, for EM (see
    /// [`Index::fit`]).
    observed: Mutex<Observed>,
}

/// What the queries have shown: how often each comparison pattern was seen between
/// a query and a candidate blocking brought, and how many queries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Pattern (levels packed 3 bits per field, in [`FIELDS`] order) → pairs.
    pub patterns: HashMap<u64, u64>,
    /// Queries counted.
    pub queries: u64,
    /// Staff decisions: pattern → (pairs said to be the same person, pairs said
    /// not to be).
    pub labels: HashMap<u64, (u64, u64)>,
}

/// Queries from which EM learns `m` from them, rather than from the population's
/// own blocked pairs (which hold only the EMR's duplicates, often none).
pub const QUERIES_TO_LEARN: u64 = 500;

/// A deterministic hash of a blocking key (SipHash with fixed keys).
fn key(pass: Pass, nums: &[u32], strs: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    (pass as u8).hash(&mut h);
    nums.hash(&mut h);
    strs.hash(&mut h);
    h.finish()
}

/// The blocking keys of a record, with their pass. Phonetic keys use both Double
/// Metaphone codes, so a query and a record agreeing on either code meet.
fn blocking_keys(s: &Side<'_>, ids: &[(&str, &str)]) -> Vec<(Pass, u64)> {
    let mut keys = Vec::with_capacity(16);
    let date = BirthDate::unpack(s.birth);
    let year = date.map(|d| u32::from(d.year));
    let codes = |t: Option<Tok<'_>>| -> Vec<u32> {
        t.map(|t| t.dm.iter().copied().filter(|c| *c != 0).collect())
            .unwrap_or_default()
    };
    let (family_dm, given_dm) = (codes(s.family), codes(s.given));
    if let Some(y) = year {
        for c in &family_dm {
            keys.push((
                Pass::FamilyPhoneticYear,
                key(Pass::FamilyPhoneticYear, &[*c, y], &[]),
            ));
        }
    }
    if let Some(d) = date.filter(|d| d.is_full()) {
        keys.push((Pass::BirthDate, key(Pass::BirthDate, &[d.packed()], &[])));
        for c in &given_dm {
            let ym = u32::from(d.year) * 100 + u32::from(d.month);
            keys.push((
                Pass::GivenPhoneticYearMonth,
                key(Pass::GivenPhoneticYearMonth, &[*c, ym], &[]),
            ));
        }
    }
    for (system, value) in ids {
        keys.push((
            Pass::Identifier,
            key(Pass::Identifier, &[], &[system, value]),
        ));
    }
    for p in s.phones {
        keys.push((Pass::Phone, key(Pass::Phone, &[], &[p])));
    }
    for e in s.emails {
        keys.push((Pass::Email, key(Pass::Email, &[], &[e])));
    }
    if let (Some(postal), Some(initial)) = (s.postal, s.given.and_then(|g| g.s.chars().next())) {
        keys.push((
            Pass::PostalInitial,
            key(Pass::PostalInitial, &[u32::from(initial)], &[postal.s]),
        ));
    }
    for g in &given_dm {
        for f in &family_dm {
            let (a, b) = if g <= f { (g, f) } else { (f, g) };
            keys.push((
                Pass::NamesPhonetic,
                key(Pass::NamesPhonetic, &[*a, *b], &[]),
            ));
        }
    }
    // Keys without the birth date, for records where it is missing or wrong.
    if let Some(postal) = s.postal {
        for c in &family_dm {
            keys.push((
                Pass::FamilyPostal,
                key(Pass::FamilyPostal, &[*c], &[postal.s]),
            ));
        }
        if let Some(no) = s.street_no {
            keys.push((
                Pass::StreetNumberPostal,
                key(Pass::StreetNumberPostal, &[], &[no.s, postal.s]),
            ));
        }
    }
    if let Some(city) = s.city.map(|t| normalize::squashed(t.s)) {
        for c in &family_dm {
            keys.push((Pass::FamilyCity, key(Pass::FamilyCity, &[*c], &[&city])));
        }
        for c in &given_dm {
            keys.push((Pass::GivenCity, key(Pass::GivenCity, &[*c], &[&city])));
        }
    }
    // The house number and the street name's first four letters, spaces dropped: a
    // typo later in the name, or a space typed or lost (`copland drive`,
    // `coplanddrive`), still meets.
    if let (Some(no), Some(street)) = (s.street_no, s.street) {
        let prefix: String = street.s.chars().filter(|c| *c != ' ').take(4).collect();
        keys.push((
            Pass::StreetAddress,
            key(Pass::StreetAddress, &[], &[no.s, &prefix]),
        ));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

impl Index {
    /// An empty index with default model parameters.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            model: Model::default(),
            records: Vec::new(),
            by_id: HashMap::new(),
            blocks: HashMap::new(),
            given: Vocab::names(),
            given_joined: Vocab::default(),
            middle: Vocab::names(),
            family: Vocab::names(),
            street_no: Vocab::default(),
            street: Vocab::default(),
            city: Vocab::names(),
            postal: Vocab::default(),
            state: Vocab::default(),
            systems: Vocab::default(),
            live: 0,
            observed: Mutex::new(Observed::default()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the settings (thresholds take effect on the next query).
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The model in use.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Live patients.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no patient is stored.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn side<'a>(&'a self, r: &'a Stored) -> Side<'a> {
        Side {
            given: self.given.tok(r.given),
            given_joined: self.given_joined.tok(r.given_joined).map(|t| t.s),
            middle: self.middle.tok(r.middle),
            family: self.family.tok(r.family),
            birth: r.birth,
            gender: r.gender,
            phones: &r.phones,
            emails: &r.emails,
            street_no: self.street_no.tok(r.street_no),
            street: self.street.tok(r.street),
            city: self.city.tok(r.city),
            postal: self.postal.tok(r.postal),
            state: self.state.tok(r.state),
            ids: &r.ids,
        }
    }

    fn stored_keys(&self, r: &Stored) -> Vec<(Pass, u64)> {
        let ids: Vec<(&str, &str)> = r
            .ids
            .iter()
            .filter_map(|(sys, v)| Some((self.systems.tok(*sys)?.s, &**v)))
            .collect();
        blocking_keys(&self.side(r), &ids)
    }

    /// Adds a patient, or replaces the one stored under `id`.
    pub fn upsert(&mut self, id: &str, record: &PatientRecord) {
        self.remove(id);
        let n = normalize(record, &self.config);
        let stored = Stored {
            id: id.into(),
            given: self.given.intern(n.given.as_deref()),
            given_joined: self.given_joined.intern(n.given_joined.as_deref()),
            middle: self.middle.intern(n.middle.as_deref()),
            family: self.family.intern(n.family.as_deref()),
            birth: n.birth,
            gender: n.gender,
            placeholder: n.placeholder,
            street_no: self.street_no.intern(n.street_no.as_deref()),
            street: self.street.intern(n.street.as_deref()),
            city: self.city.intern(n.city.as_deref()),
            postal: self.postal.intern(n.postal.as_deref()),
            state: self.state.intern(n.state.as_deref()),
            phones: n.phones.into(),
            emails: n.emails.into(),
            ids: n
                .ids
                .iter()
                .map(|(sys, v)| (self.systems.intern(Some(sys)), v.clone()))
                .collect(),
        };
        let slot = u32::try_from(self.records.len()).unwrap_or(NONE);
        for (_, k) in self.stored_keys(&stored) {
            self.blocks.entry(k).or_default().push(slot);
        }
        self.records.push(Some(stored));
        self.by_id.insert(id.into(), slot);
        self.live += 1;
        if self.config.auto_refit && self.live >= 1_000 && self.live >= 2 * self.model.fitted_on {
            self.fit();
        }
    }

    /// Removes the patient stored under `id`, if any.
    pub fn remove(&mut self, id: &str) {
        let Some(slot) = self.by_id.remove(id) else {
            return;
        };
        let Some(stored) = self.records.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        for (_, k) in self.stored_keys(&stored) {
            if let Some(list) = self.blocks.get_mut(&k) {
                list.retain(|s| *s != slot);
                if list.is_empty() {
                    self.blocks.remove(&k);
                }
            }
        }
        self.given.release(stored.given);
        self.given_joined.release(stored.given_joined);
        self.middle.release(stored.middle);
        self.family.release(stored.family);
        self.street_no.release(stored.street_no);
        self.street.release(stored.street);
        self.city.release(stored.city);
        self.postal.release(stored.postal);
        self.state.release(stored.state);
        self.live -= 1;
    }

    /// The stored candidates blocking brings for `record` (slots, sorted), and the
    /// passes whose cap was hit.
    fn block(&self, q: &Side<'_>, ids: &[(&str, &str)]) -> (Vec<u32>, Vec<Pass>) {
        let mut out = Vec::new();
        let mut capped = Vec::new();
        for (pass, k) in blocking_keys(q, ids) {
            if let Some(list) = self.blocks.get(&k) {
                if list.len() > self.config.block_cap {
                    capped.push(pass);
                }
                out.extend(list.iter().take(self.config.block_cap));
            }
        }
        out.sort_unstable();
        out.dedup();
        capped.dedup();
        (out, capped)
    }

    /// The ids blocking brings for `record`, for measuring pairs completeness.
    pub fn blocking_candidates(&self, record: &PatientRecord) -> Vec<&str> {
        let n = normalize(record, &self.config);
        let q = self.query_side(&n);
        let ids = n
            .ids
            .iter()
            .map(|(s, v)| (s.as_str(), &**v))
            .collect::<Vec<_>>();
        self.block(&q.side(&n), &ids)
            .0
            .into_iter()
            .filter_map(|slot| self.records[slot as usize].as_ref().map(|r| &*r.id))
            .collect()
    }

    fn query_side<'a>(&'a self, n: &'a Normalized) -> QuerySide<'a> {
        let tok = |vocab: &'a Vocab, s: &'a Option<String>| {
            s.as_deref()
                .map(|s| match vocab.ids.get(s).and_then(|id| vocab.tok(*id)) {
                    Some(t) => t,
                    None => Tok {
                        s,
                        dm: if vocab.names { phonetic(s) } else { [0, 0] },
                        nick: if vocab.names {
                            nicknames::groups_of(s)
                        } else {
                            &[]
                        },
                        count: 0,
                    },
                })
        };
        QuerySide {
            given: tok(&self.given, &n.given),
            middle: tok(&self.middle, &n.middle),
            family: tok(&self.family, &n.family),
            street_no: tok(&self.street_no, &n.street_no),
            street: tok(&self.street, &n.street),
            city: tok(&self.city, &n.city),
            postal: tok(&self.postal, &n.postal),
            state: tok(&self.state, &n.state),
            ids: n
                .ids
                .iter()
                .map(|(sys, v)| {
                    (
                        self.systems
                            .ids
                            .get(sys.as_str())
                            .copied()
                            .unwrap_or(NONE - 1),
                        v.clone(),
                    )
                })
                .collect(),
        }
    }

    /// Scores a pair; `b` is the stored side, whose counts give term frequencies.
    fn score(&self, a: &Side<'_>, b: &Side<'_>) -> (f64, Vec<FieldExplanation>) {
        let c = compare(a, b);
        let mut total = 0.0;
        let mut fields = Vec::with_capacity(FIELDS.len());
        for field in FIELDS {
            let level = c.levels[field as usize];
            let params = &self.model.fields[field as usize];
            let weight = if level == Level::Exact
                && term_frequency_field(field)
                && self.config.population.is_none()
            {
                let count = match field {
                    Field::Given => b.given.map(|t| t.count),
                    Field::Family => b.family.map(|t| t.count),
                    Field::Street => b.street.map(|t| t.count),
                    Field::City => b.city.map(|t| t.count),
                    Field::PostalCode => b.postal.map(|t| t.count),
                    _ => None,
                }
                .unwrap_or(1)
                .max(1);
                self.model.exact_tf_weight(field, count, self.live.max(1))
            } else {
                params.weight(level)
            };
            total += weight;
            fields.push(FieldExplanation {
                field,
                level,
                detail: c.details[field as usize],
                weight,
            });
        }
        (total, fields)
    }

    /// The prior log-odds in bits that a query is one given patient of the
    /// population (the index's, unless [`Config::population`] says otherwise): the
    /// chance it is a returning patient at all ([`Model::returning`], learned from
    /// the queries) spread over the population.
    fn prior(&self) -> f64 {
        let n = self.config.population.unwrap_or(self.live).max(2) as f64;
        let p = (self.model.returning.clamp(0.05, 1.0) / n).min(0.5);
        (p / (1.0 - p)).log2()
    }

    /// Finds the stored patients that may be `record`, best first, graded and
    /// explained. `exclude` leaves out one stored id (deduplication).
    pub fn find(&self, record: &PatientRecord, options: &MatchOptions) -> MatchOutcome {
        self.find_excluding(record, options, None)
    }

    /// [`Index::find`], leaving out the stored patient `exclude` (a record looked up
    /// against the others).
    pub fn find_excluding(
        &self,
        record: &PatientRecord,
        options: &MatchOptions,
        exclude: Option<&str>,
    ) -> MatchOutcome {
        let n = normalize(record, &self.config);
        let qs = self.query_side(&n);
        let q = qs.side(&n);
        let ids = n
            .ids
            .iter()
            .map(|(s, v)| (s.as_str(), &**v))
            .collect::<Vec<_>>();
        let (slots, capped) = self.block(&q, &ids);
        let prior = self.prior();
        let t = self.config.thresholds;
        let mut patterns = Vec::with_capacity(slots.len());
        let mut scored: Vec<(f64, u32, Vec<FieldExplanation>)> = slots
            .iter()
            .filter_map(|slot| {
                let r = self.records[*slot as usize].as_ref()?;
                if exclude == Some(&*r.id) {
                    return None;
                }
                let (w, fields) = self.score(&q, &self.side(r));
                patterns.push(
                    fields
                        .iter()
                        .fold(0u64, |acc, f| (acc << 3) | f.level as u64),
                );
                (w + prior >= t.possible && !another_person(&fields)).then_some((w, *slot, fields))
            })
            .collect();
        if self.config.learn {
            let mut observed = self
                .observed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            observed.queries += 1;
            for p in patterns {
                *observed.patterns.entry(p).or_default() += 1;
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let considered = slots.len();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(scored.len());
        for (i, (weight, slot, fields)) in scored.iter().enumerate() {
            let Some(r) = self.records[*slot as usize].as_ref() else {
                continue;
            };
            let log_odds = weight + prior;
            let mut grade = if log_odds >= t.certain {
                Grade::Certain
            } else if log_odds >= t.probable {
                Grade::Probable
            } else {
                Grade::Possible
            };
            let mut held = Vec::new();
            if n.placeholder || r.placeholder {
                held.push(Hold::Placeholder);
            }
            if possible_twin(fields) {
                held.push(Hold::PossibleTwin);
            }
            // Another candidate close in score: ambiguous unless the two are
            // themselves the same person (a duplicate chart), or this one has a
            // sibling with the same birth date and family name (a twin) and the
            // query's given name does not match this one exactly.
            for (j, (other_w, other_slot, other_fields)) in scored.iter().enumerate() {
                if j == i || (weight - other_w).abs() > self.config.ambiguity_margin {
                    continue;
                }
                let Some(other) = self.records[*other_slot as usize].as_ref() else {
                    continue;
                };
                let (between, between_fields) = self.score(&self.side(r), &self.side(other));
                let twins = possible_twin(&between_fields);
                if twins && other_fields[Field::Given as usize].level != Level::Different {
                    held.push(Hold::PossibleTwin);
                } else if between + prior < t.certain {
                    held.push(Hold::Ambiguous);
                }
                if j > 3 {
                    break;
                }
            }
            held.sort_unstable_by_key(|h| *h as u8);
            held.dedup();
            if grade == Grade::Certain && !held.is_empty() {
                grade = Grade::Probable;
            }
            if options.only_certain && grade != Grade::Certain {
                continue;
            }
            candidates.push(Candidate {
                id: r.id.to_string(),
                weight: *weight,
                log_odds,
                score: 1.0 / (1.0 + (-log_odds).exp2()),
                grade,
                explanation: Explanation {
                    fields: fields.clone(),
                    prior,
                    held,
                    model: self.model.version,
                },
            });
            if candidates.len() >= options.count {
                break;
            }
        }
        MatchOutcome {
            candidates,
            considered,
            capped,
        }
    }

    /// Estimates `u` from random pairs of the population and `m` by EM on the
    /// queries' blocked pairs (once [`QUERIES_TO_LEARN`] were seen), else on the
    /// population's own. Deterministic for the same patients inserted in the same
    /// order and the same queries. The version goes up by one.
    pub fn fit(&mut self) {
        let mut model = self.fit_model();
        model.version = self.model.version + 1;
        self.model = model;
    }

    /// [`Index::fit`]'s model, without installing it (the caller holds only a read
    /// lock while it runs, then sets it with [`Index::set_model`]). Its version is
    /// the current model's.
    pub fn fit_model(&self) -> Model {
        let live: Vec<u32> = (0..self.records.len())
            .filter(|i| self.records[*i].is_some())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        if live.len() < 2 {
            return self.model.clone();
        }
        let mut model = Model {
            fitted_on: live.len(),
            version: self.model.version,
            ..Model::default()
        };
        let mut rng = SplitMix(0x5EED);
        let mut counts = [[0u64; 4]; FIELDS.len()];
        let pairs = 200_000.min(live.len() * (live.len() - 1) / 2);
        let pick = |rng: &mut SplitMix| live[(rng.next_u64() % live.len() as u64) as usize];
        for _ in 0..pairs {
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            if a == b {
                continue;
            }
            if let (Some(ra), Some(rb)) = (
                self.records[a as usize].as_ref(),
                self.records[b as usize].as_ref(),
            ) {
                count_levels(&mut counts, &compare(&self.side(ra), &self.side(rb)));
            }
        }
        model.set_u(&counts);
        let observed = self.observed();
        if observed.queries >= QUERIES_TO_LEARN {
            // EM over the pairs the queries (intakes) met: they hold the returning
            // patients, where the population's own pairs hold only its duplicates.
            let matched = model.fit_m_labelled(&observed.patterns, &observed.labels);
            model.learned_from_queries = observed.queries;
            model.returning = (matched / observed.queries as f64).clamp(0.05, 1.0);
            return model;
        }
        // EM over the blocked pairs of (about) 5,000 patients spread over the index.
        let step = (live.len() / 5_000).max(1);
        let mut patterns: HashMap<u64, u64> = HashMap::new();
        for &slot in live.iter().step_by(step) {
            let Some(r) = self.records[slot as usize].as_ref() else {
                continue;
            };
            let side = self.side(r);
            let ids: Vec<(&str, &str)> = r
                .ids
                .iter()
                .filter_map(|(sys, v)| Some((self.systems.tok(*sys)?.s, &**v)))
                .collect();
            for other in self.block(&side, &ids).0 {
                if other <= slot && step == 1 {
                    continue;
                }
                if other == slot {
                    continue;
                }
                if let Some(o) = self.records[other as usize].as_ref() {
                    *patterns
                        .entry(compare(&side, &self.side(o)).pattern())
                        .or_default() += 1;
                }
            }
        }
        model.fit_m_labelled(&patterns, &observed.labels);
        model
    }

    /// What the queries have shown so far (to keep across restarts).
    pub fn observed(&self) -> Observed {
        self.observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds what earlier queries showed (kept from before a restart).
    pub fn add_observed(&mut self, more: &Observed) {
        let observed = self
            .observed
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        observed.queries += more.queries;
        for (p, n) in &more.patterns {
            *observed.patterns.entry(*p).or_default() += n;
        }
        for (p, (same, not_same)) in &more.labels {
            let entry = observed.labels.entry(*p).or_default();
            entry.0 += same;
            entry.1 += not_same;
        }
    }

    /// A staff decision: `record` (an intake's patient) is, or is not, the stored
    /// patient `id`. Kept as a labelled comparison pattern that corrects `m` at the
    /// next fit. `false` if `id` is not stored.
    pub fn teach(&self, record: &PatientRecord, id: &str, same: bool) -> bool {
        let Some(r) = self
            .by_id
            .get(id)
            .and_then(|slot| self.records.get(*slot as usize))
            .and_then(Option::as_ref)
        else {
            return false;
        };
        let n = normalize(record, &self.config);
        let qs = self.query_side(&n);
        let pattern = compare(&qs.side(&n), &self.side(r)).pattern();
        let mut observed = self
            .observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = observed.labels.entry(pattern).or_default();
        if same {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        true
    }

    /// Sets the model directly (tests, or parameters fitted elsewhere).
    pub fn set_model(&mut self, model: Model) {
        self.model = model;
    }

    /// An estimate of the memory the index holds.
    pub fn memory(&self) -> MemoryReport {
        let records = self.records.capacity() * std::mem::size_of::<Option<Stored>>()
            + self
                .records
                .iter()
                .flatten()
                .map(|r| {
                    r.id.len()
                        + r.phones.iter().map(|p| 16 + p.len()).sum::<usize>()
                        + r.emails.iter().map(|e| 16 + e.len()).sum::<usize>()
                        + r.ids.iter().map(|(_, v)| 24 + v.len()).sum::<usize>()
                })
                .sum::<usize>();
        let by_id = self.by_id.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
            + self.by_id.keys().map(|k| k.len()).sum::<usize>();
        let blocks = self.blocks.capacity() * (std::mem::size_of::<(u64, Vec<u32>)>() + 1)
            + self
                .blocks
                .values()
                .map(|v| v.capacity() * 4)
                .sum::<usize>();
        let vocabs = [
            &self.given,
            &self.given_joined,
            &self.middle,
            &self.family,
            &self.street_no,
            &self.street,
            &self.city,
            &self.postal,
            &self.state,
            &self.systems,
        ]
        .iter()
        .map(|v| v.heap_bytes())
        .sum::<usize>();
        let total_bytes = records + by_id + blocks + vocabs;
        MemoryReport {
            patients: self.live,
            total_bytes,
            bytes_per_patient: total_bytes / self.live.max(1),
        }
    }
}

/// Twins share a birth date, a family name, an address and a phone, but not an
/// identifier: an agreeing identifier rules a twin out, and the address, phone and
/// postal code agreeing is no evidence against a twin. Their given names are
/// unrelated (the comparator already calls a nickname, initial, sound-alike, typo
/// or the other's middle name something other than different), or, for a boy and
/// a girl, nearly the same (Alexander and Alexandra): with the recorded sexes
/// different, a given name short of equal but related holds too.
fn possible_twin(fields: &[FieldExplanation]) -> bool {
    let level = |f: Field| fields[f as usize].level;
    level(Field::BirthDate) == Level::Exact
        && matches!(level(Field::Family), Level::Exact | Level::Close)
        && level(Field::Identifier) != Level::Exact
        && match (level(Field::Given), level(Field::Gender)) {
            (Level::Different, Level::Different) => false,
            (Level::Different, _) => true,
            (given, Level::Different) => given != Level::Exact && given != Level::Missing,
            _ => false,
        }
}

/// Never the query's patient, whatever else agrees: with no agreeing identifier,
/// - the recorded sexes differ and the given names are unrelated (a boy and a girl
///   twin, or siblings);
/// - the given names are unrelated and the birth dates differ (a household member:
///   same family name, address and phone, another person).
fn another_person(fields: &[FieldExplanation]) -> bool {
    let level = |f: Field| fields[f as usize].level;
    level(Field::Identifier) != Level::Exact
        && level(Field::Given) == Level::Different
        && (level(Field::Gender) == Level::Different || level(Field::BirthDate) == Level::Different)
}

/// The query's interned-or-not tokens, held while its [`Side`] is borrowed.
#[derive(Debug)]
struct QuerySide<'a> {
    given: Option<Tok<'a>>,
    middle: Option<Tok<'a>>,
    family: Option<Tok<'a>>,
    street_no: Option<Tok<'a>>,
    street: Option<Tok<'a>>,
    city: Option<Tok<'a>>,
    postal: Option<Tok<'a>>,
    state: Option<Tok<'a>>,
    ids: Vec<(u32, Box<str>)>,
}

impl<'a> QuerySide<'a> {
    fn side(&'a self, n: &'a Normalized) -> Side<'a> {
        Side {
            given: self.given,
            given_joined: n.given_joined.as_deref(),
            middle: self.middle,
            family: self.family,
            birth: n.birth,
            gender: n.gender,
            phones: &n.phones,
            emails: &n.emails,
            street_no: self.street_no,
            street: self.street,
            city: self.city,
            postal: self.postal,
            state: self.state,
            ids: &self.ids,
        }
    }
}
