//! Fellegi-Sunter: per field and level, `m` (how often true matches agree so) and
//! `u` (how often non-matches do); the weight of a level is `log2(m/u)`.

use std::collections::HashMap;

use crate::compare::Comparison;
use crate::{FIELDS, Field, Level};

/// `m` and `u` of one field, per level (exact, close, phonetic, different).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldParams {
    /// P(level | same patient).
    pub m: [f64; 4],
    /// P(level | different patients).
    pub u: [f64; 4],
}

impl FieldParams {
    const fn new(m: [f64; 4], u: [f64; 4]) -> Self {
        Self { m, u }
    }

    /// The weight of a level in bits (0 for missing). Agreeing levels never weigh
    /// less than nothing, so adding an agreeing field never lowers a score.
    pub fn weight(&self, level: Level) -> f64 {
        let i = level as usize;
        if i >= 4 {
            return 0.0;
        }
        let w = (self.m[i] / self.u[i]).log2();
        if level == Level::Different {
            w.min(0.0)
        } else {
            w.max(0.0)
        }
    }
}

/// The parameters of every field, and how many patients they were fitted on.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Per field, in [`FIELDS`] order.
    pub fields: [FieldParams; FIELDS.len()],
    /// Population size at the last fit (0: defaults).
    pub fitted_on: usize,
    /// Queries whose pairs `m` was learned from (0: the population's own pairs, or
    /// defaults).
    pub learned_from_queries: u64,
    /// Counts the fits: shown with each explanation, so a reviewer knows which
    /// model scored it.
    pub version: u64,
    /// The chance that a query is a returning patient (one of the population),
    /// learned from the queries: EM's expected matched pairs per query, from 0.05
    /// to 1. The prior of one given patient is `returning / population`. 1 until
    /// learned.
    pub returning: f64,
}

/// Levels a field does not use get m = u, weight 0.
const UNUSED: f64 = 1e-3;

impl Default for Model {
    /// Defaults that work before there is data: typical error rates of registration
    /// data (m) and chance agreement in a population of many thousands (u).
    fn default() -> Self {
        let p = FieldParams::new;
        Self {
            fields: [
                // Given
                p([0.86, 0.07, 0.03, 0.04], [0.004, 0.002, 0.01, 0.984]),
                // Family
                p([0.88, 0.06, 0.02, 0.04], [0.002, 0.001, 0.004, 0.993]),
                // BirthDate
                p([0.92, 0.05, 0.005, 0.025], [0.00005, 0.0006, 0.01, 0.989]),
                // Gender
                p([0.97, UNUSED, UNUSED, 0.03], [0.5, UNUSED, UNUSED, 0.5]),
                // Phone
                p(
                    [0.8, 0.05, UNUSED, 0.15],
                    [0.000_001, 0.000_02, UNUSED, 0.999],
                ),
                // Email
                p(
                    [0.85, 0.05, UNUSED, 0.1],
                    [0.000_001, 0.000_01, UNUSED, 0.999],
                ),
                // StreetNumber
                p([0.85, 0.05, UNUSED, 0.1], [0.02, 0.04, UNUSED, 0.94]),
                // Street
                p([0.8, 0.1, 0.02, 0.08], [0.001, 0.001, 0.003, 0.995]),
                // City
                p([0.85, 0.07, 0.02, 0.06], [0.01, 0.005, 0.01, 0.975]),
                // PostalCode
                p([0.85, 0.07, UNUSED, 0.08], [0.005, 0.02, UNUSED, 0.975]),
                // State
                p([0.95, UNUSED, UNUSED, 0.05], [0.3, UNUSED, UNUSED, 0.7]),
                // Identifier
                p(
                    [0.9, 0.05, UNUSED, 0.05],
                    [0.000_000_1, 0.000_01, UNUSED, 0.999],
                ),
                // Middle: "close" is mostly an initial against a name, which a
                // stranger's middle name shares one time in fifteen.
                p([0.7, 0.2, 0.02, 0.08], [0.004, 0.07, 0.01, 0.916]),
            ],
            fitted_on: 0,
            learned_from_queries: 0,
            version: 0,
            returning: 1.0,
        }
    }
}

/// Fields whose exact agreement is adjusted by how common the value is.
pub(crate) fn term_frequency_field(field: Field) -> bool {
    matches!(
        field,
        Field::Given | Field::Family | Field::Street | Field::City | Field::PostalCode
    )
}

/// Pseudo-pairs that hold an estimate near its default when data is thin.
const U_PRIOR_PAIRS: f64 = 2_000.0;
/// Pseudo-pairs of the default m in every estimate of m.
pub(crate) const M_PRIOR_PAIRS: f64 = 200.0;
const TF_PRIOR_PATIENTS: f64 = 50.0;
/// Pairs of known class one staff decision weighs.
pub const LABEL_WEIGHT: f64 = 25.0;
/// The least an m-probability may be.
pub const M_FLOOR: f64 = 0.001;

impl Model {
    /// The weight of exact agreement on a value `count` of `population` patients
    /// have: `log2(m / tf)`, where tf is the value's smoothed frequency.
    pub(crate) fn exact_tf_weight(&self, field: Field, count: u32, population: usize) -> f64 {
        let params = &self.fields[field as usize];
        let u_exact = params.u[0];
        let tf = (f64::from(count) + TF_PRIOR_PATIENTS * u_exact)
            / (population as f64 + TF_PRIOR_PATIENTS);
        // Never below nothing: agreement is never evidence against a match. (It may
        // fall below the "close" weight: agreeing on the commonest name says little.)
        (params.m[0] / tf.max(1e-12)).log2().max(0.0)
    }

    /// Sets `u` from comparison level counts of random pairs.
    pub(crate) fn set_u(&mut self, counts: &[[u64; 4]; FIELDS.len()]) {
        let defaults = Model::default();
        for (f, field_counts) in counts.iter().enumerate() {
            let total: u64 = field_counts.iter().sum();
            let mut u = [0.0; 4];
            for (l, c) in field_counts.iter().enumerate() {
                u[l] = (*c as f64 + U_PRIOR_PAIRS * defaults.fields[f].u[l])
                    / (total as f64 + U_PRIOR_PAIRS);
            }
            self.fields[f].u = u;
        }
    }

    /// Estimates `m` by expectation-maximisation over the comparison patterns of
    /// blocked pairs (`u` held fixed). Deterministic: patterns are visited in order.
    /// Returns the expected number of matched pairs among them.
    #[cfg(test)]
    pub(crate) fn fit_m(&mut self, patterns: &HashMap<u64, u64>) -> f64 {
        self.fit_m_labelled(patterns, &HashMap::new())
    }

    /// `m` by expectation-maximisation over the comparison patterns of blocked
    /// pairs (`u` held fixed), corrected by staff decisions: per pattern, how many pairs
    /// staff said were the same person and how many not. Each decision weighs
    /// [`LABEL_WEIGHT`] pairs of known class: a "same" adds them as matches; a "not
    /// the same" takes as many of the pattern's observed pairs out of the matches.
    /// With the `M_PRIOR_PAIRS` (200) pseudo-pairs, one decision moves an m-probability
    /// by at most `LABEL_WEIGHT / (LABEL_WEIGHT + M_PRIOR_PAIRS)` (0.11), and m never
    /// falls under [`M_FLOOR`]: no one decision makes a level impossible.
    pub(crate) fn fit_m_labelled(
        &mut self,
        patterns: &HashMap<u64, u64>,
        labels: &HashMap<u64, (u64, u64)>,
    ) -> f64 {
        let mut list: Vec<(u64, f64, f64, f64)> = patterns
            .iter()
            .map(|(p, n)| {
                let (same, not_same) = labels.get(p).copied().unwrap_or((0, 0));
                let n = *n as f64;
                let known_not = (not_same as f64 * LABEL_WEIGHT).min(n);
                (*p, n - known_not, same as f64 * LABEL_WEIGHT, known_not)
            })
            .collect();
        for (p, (same, _)) in labels {
            if *same > 0 && !patterns.contains_key(p) {
                list.push((*p, 0.0, *same as f64 * LABEL_WEIGHT, 0.0));
            }
        }
        list.sort_unstable_by_key(|(p, ..)| *p);
        let levels = |pattern: u64| {
            let mut out = [Level::Missing; FIELDS.len()];
            for (i, l) in out.iter_mut().enumerate() {
                let shift = 3 * (FIELDS.len() - 1 - i);
                *l = match (pattern >> shift) & 7 {
                    0 => Level::Exact,
                    1 => Level::Close,
                    2 => Level::Phonetic,
                    3 => Level::Different,
                    _ => Level::Missing,
                };
            }
            out
        };
        let decoded: Vec<([Level; FIELDS.len()], f64, f64)> = list
            .iter()
            .map(|(p, n, same, _)| (levels(*p), *n, *same))
            .collect();
        let total: f64 = list.iter().map(|(_, n, _, not)| n + not).sum();
        let labelled: f64 = decoded.iter().map(|(_, _, same)| same).sum();
        if total + labelled < 1.0 {
            return 0.0;
        }
        let defaults = Model::default();
        let mut lambda: f64 = 0.01;
        for _ in 0..15 {
            let mut sums = [[0.0f64; 4]; FIELDS.len()];
            let mut matched = 0.0;
            for (levels, n, same) in &decoded {
                let mut log_odds = (lambda / (1.0 - lambda)).log2();
                for (f, l) in levels.iter().enumerate() {
                    let i = *l as usize;
                    if i < 4 {
                        let params = &self.fields[f];
                        log_odds += (params.m[i] / params.u[i]).log2();
                    }
                }
                let p = 1.0 / (1.0 + (-log_odds).exp2());
                matched += p * n;
                for (f, l) in levels.iter().enumerate() {
                    let i = *l as usize;
                    if i < 4 {
                        sums[f][i] += p * n + same;
                    }
                }
            }
            for (f, field_sums) in sums.iter().enumerate() {
                let seen: f64 = field_sums.iter().sum();
                for (l, s) in field_sums.iter().enumerate() {
                    self.fields[f].m[l] = ((s + M_PRIOR_PAIRS * defaults.fields[f].m[l])
                        / (seen + M_PRIOR_PAIRS))
                        .max(M_FLOOR);
                }
            }
            lambda = (matched / total.max(1.0)).clamp(1e-6, 0.5);
        }
        lambda * total
    }
}

/// Adds a comparison's levels to per-field counts.
pub(crate) fn count_levels(counts: &mut [[u64; 4]; FIELDS.len()], c: &Comparison) {
    for (f, l) in c.levels.iter().enumerate() {
        let i = *l as usize;
        if i < 4 {
            counts[f][i] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_weights_agree_positive_and_disagree_negative() {
        let model = Model::default();
        for (f, params) in model.fields.iter().enumerate() {
            assert!(params.weight(Level::Exact) > 0.0, "{:?}", FIELDS[f]);
            assert!(params.weight(Level::Exact) >= params.weight(Level::Close));
            assert!(params.weight(Level::Different) <= 0.0);
            assert_eq!(params.weight(Level::Missing), 0.0);
        }
    }

    /// Pairs whose levels are drawn from known m (matches, share `lambda`) and u
    /// (the rest), on four fields; EM, with u from the non-matches as random pairs
    /// would give it, recovers m.
    #[test]
    fn em_recovers_known_m_on_a_generated_population() {
        use crate::rng::SplitMix;
        let fields = [Field::Given, Field::Family, Field::BirthDate, Field::Street];
        let m = [
            [0.80, 0.10, 0.04, 0.06],
            [0.70, 0.15, 0.05, 0.10],
            [0.90, 0.06, 0.01, 0.03],
            [0.60, 0.20, 0.05, 0.15],
        ];
        let u = [
            [0.01, 0.01, 0.03, 0.95],
            [0.005, 0.005, 0.02, 0.97],
            [0.001, 0.01, 0.02, 0.969],
            [0.002, 0.003, 0.01, 0.985],
        ];
        let lambda = 0.05;
        let mut rng = SplitMix(7);
        let draw = |rng: &mut SplitMix, p: &[f64; 4]| {
            let x = rng.unit();
            let mut acc = 0.0;
            for (i, q) in p.iter().enumerate() {
                acc += q;
                if x < acc {
                    return i as u64;
                }
            }
            3
        };
        let mut patterns: HashMap<u64, u64> = HashMap::new();
        let mut u_counts = [[0u64; 4]; FIELDS.len()];
        for _ in 0..400_000 {
            let matched = rng.unit() < lambda;
            let mut levels = [4u64; FIELDS.len()];
            for (k, f) in fields.iter().enumerate() {
                let l = draw(&mut rng, if matched { &m[k] } else { &u[k] });
                levels[*f as usize] = l;
                if !matched {
                    u_counts[*f as usize][l as usize] += 1;
                }
            }
            let pattern = levels.iter().fold(0u64, |acc, l| (acc << 3) | l);
            *patterns.entry(pattern).or_default() += 1;
        }
        let mut model = Model::default();
        model.set_u(&u_counts);
        model.fit_m(&patterns);
        for (k, f) in fields.iter().enumerate() {
            for l in 0..4 {
                let got = model.fields[*f as usize].m[l];
                assert!(
                    (got - m[k][l]).abs() < 0.02,
                    "{f:?} level {l}: m {got:.3}, true {:.3}",
                    m[k][l]
                );
                let got_u = model.fields[*f as usize].u[l];
                assert!((got_u - u[k][l]).abs() < 0.003, "{f:?} {l}: u {got_u:.4}");
            }
        }
    }

    /// "Not the same person" takes pairs of that pattern the queries met out of
    /// the matches: the levels it holds become less likely among matches.
    #[test]
    fn not_the_same_decisions_lower_m_of_their_pattern() {
        let pack = |given: Level, family: Level, birth: Level| {
            let mut levels = [Level::Missing; FIELDS.len()];
            levels[Field::Given as usize] = given;
            levels[Field::Family as usize] = family;
            levels[Field::BirthDate as usize] = birth;
            levels.iter().fold(0u64, |acc, l| (acc << 3) | *l as u64)
        };
        let (e, d) = (Level::Exact, Level::Different);
        let doubtful = pack(e, d, e);
        let patterns: HashMap<u64, u64> = [
            (pack(e, e, e), 400),
            (doubtful, 60),
            (pack(d, d, d), 20_000),
            (pack(e, d, d), 300),
        ]
        .into_iter()
        .collect();
        let family_different = |labels: &HashMap<u64, (u64, u64)>| {
            let mut model = Model::default();
            model.fit_m_labelled(&patterns, labels);
            model.fields[Field::Family as usize].m[Level::Different as usize]
        };
        let plain = family_different(&HashMap::new());
        let not_same = family_different(&[(doubtful, (0, 2))].into_iter().collect());
        let same = family_different(&[(doubtful, (2, 0))].into_iter().collect());
        assert!(not_same < plain - 0.01, "{plain} {not_same}");
        assert!(same > plain + 0.01, "{plain} {same}");
        // A floor: however many say "not the same", m stays possible.
        let many = family_different(&[(doubtful, (0, 1_000))].into_iter().collect());
        assert!(many >= M_FLOOR);
    }

    #[test]
    fn a_common_name_weighs_less_than_a_rare_one() {
        let model = Model::default();
        let smith = model.exact_tf_weight(Field::Family, 1_000, 100_000);
        let linacre = model.exact_tf_weight(Field::Family, 2, 100_000);
        assert!(linacre > smith + 5.0, "{linacre} {smith}");
        assert!(smith >= 0.0);
    }
}
