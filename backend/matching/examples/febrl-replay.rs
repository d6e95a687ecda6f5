//! The FEBRL scenarios of `cargo xtask bench match`, in process and without the
//! server: the same records (read as the bench's FHIR mapping reads them), the same
//! split (thresholds fitted on even entities, figures on odd ones), the same
//! figures. For iterating on the engine in seconds; the figures to report are the
//! bench's, through `$match`.
//!
//! ```text
//! cargo run --release -p matching --example febrl-replay -- DIR [SET]
//! ```

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    clippy::semicolon_if_nothing_returned,
    clippy::unnecessary_sort_by
)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use matching::{Config, Grade, Hold, Identifier, Index, MatchOptions, PatientRecord, Thresholds};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Full,
    NoIdentifier,
    Emr,
    Intake,
}

struct Rec {
    id: String,
    entity: u32,
    record: PatientRecord,
}

fn read_csv(path: &Path, shape: Shape) -> Vec<Rec> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let cols = [
        "rec_id",
        "given_name",
        "surname",
        "street_number",
        "address_1",
        "address_2",
        "suburb",
        "postcode",
        "state",
        "date_of_birth",
        "soc_sec_id",
    ]
    .map(col);
    let with_identifier = matches!(shape, Shape::Full | Shape::Emr);
    let with_address = shape != Shape::Emr;
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize| {
            f.get(cols[i])
                .copied()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let id = get(0).unwrap();
        let entity: u32 = id.split('-').nth(1).unwrap().parse().unwrap();
        let mut r = PatientRecord {
            given: get(1).into_iter().collect(),
            family: get(2),
            ..PatientRecord::default()
        };
        if with_address {
            let line1 = [get(3), get(4)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if !line1.is_empty() {
                r.address_lines.push(line1);
            }
            r.address_lines.extend(get(5));
            r.city = get(6);
            r.postal_code = get(7);
            r.state = get(8);
        }
        r.birth_date = get(9)
            .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
            .map(|d| format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]));
        if with_identifier && let Some(s) = get(10) {
            r.identifiers.push(Identifier {
                system: "urn:febrl:soc_sec_id".into(),
                value: s,
            });
        }
        out.push(Rec {
            id,
            entity,
            record: r,
        });
    }
    out
}

struct Hit {
    id: String,
    log_odds: f64,
    grade: Grade,
    held: Vec<Hold>,
    fields: Vec<(&'static str, &'static str)>,
}

struct Answer {
    hits: Vec<Hit>,
    truth: HashSet<String>,
}

fn ask(
    index: &Index,
    queries: &[&Rec],
    truth: &HashMap<u32, Vec<String>>,
    dedup: bool,
) -> Vec<Answer> {
    queries
        .iter()
        .map(|q| {
            let out = index.find_excluding(
                &q.record,
                &MatchOptions::default(),
                dedup.then_some(q.id.as_str()),
            );
            Answer {
                hits: out
                    .candidates
                    .into_iter()
                    .map(|c| Hit {
                        fields: c
                            .explanation
                            .fields
                            .iter()
                            .map(|f| (f.field.code(), f.level.code()))
                            .collect(),
                        id: c.id,
                        log_odds: c.log_odds,
                        grade: c.grade,
                        held: c.explanation.held,
                    })
                    .collect(),
                truth: truth
                    .get(&q.entity)
                    .into_iter()
                    .flatten()
                    .filter(|id| !dedup || **id != q.id)
                    .cloned()
                    .collect(),
            }
        })
        .collect()
}

#[derive(Default, Debug)]
struct Figures {
    f1: f64,
    precision: f64,
    recall: f64,
    certain_links: usize,
    false_certain: usize,
    certain_recall: f64,
    review: usize,
    twin: usize,
    queries: usize,
}

/// Grades: 0 certain, 1 probable, 2 possible, 3 not returned.
fn figures(answers: &[Answer], grade: impl Fn(&Hit) -> u8) -> Figures {
    let (mut tp, mut fp, mut fnn, mut ctp, mut cfp, mut review, mut twin) = (0, 0, 0, 0, 0, 0, 0);
    for a in answers {
        let mut top: Option<u8> = None;
        let mut linked = HashSet::new();
        for h in &a.hits {
            let g = grade(h);
            top = Some(top.map_or(g, |t| t.min(g)));
            if g <= 1 {
                linked.insert(h.id.clone());
                let t = a.truth.contains(&h.id);
                if t {
                    tp += 1
                } else {
                    fp += 1
                }
                if g == 0 {
                    if t { ctp += 1 } else { cfp += 1 }
                }
            }
        }
        fnn += a.truth.iter().filter(|t| !linked.contains(*t)).count();
        if matches!(top, Some(1 | 2)) {
            review += 1;
            if a.hits.first().is_some_and(|h| {
                !h.held.is_empty() && h.held.iter().all(|x| *x == Hold::PossibleTwin)
            }) {
                twin += 1;
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fnn).max(1) as f64;
    Figures {
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        precision,
        recall,
        certain_links: ctp + cfp,
        false_certain: cfp,
        certain_recall: ctp as f64 / (tp + fnn).max(1) as f64,
        review,
        twin,
        queries: answers.len(),
    }
}

fn fit(answers: &[Answer]) -> Thresholds {
    let mut values: Vec<f64> = answers
        .iter()
        .flat_map(|a| a.hits.iter().map(|h| h.log_odds))
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let mut best = (f64::NEG_INFINITY, 0.0);
    for v in &values {
        let f = figures(answers, |h| if h.log_odds >= *v { 1 } else { 3 }).f1;
        if f > best.0 + 1e-12 {
            best = (f, *v);
        }
    }
    let probable = best.1;
    let worst_false = answers
        .iter()
        .flat_map(|a| {
            a.hits
                .iter()
                .filter(|h| !a.truth.contains(&h.id) && h.held.is_empty())
                .map(|h| h.log_odds)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    Thresholds {
        certain: (worst_false + 2.0).max(probable),
        probable,
        possible: probable - 2.0,
    }
}

fn scenario(name: &str, load: &[Rec], queries: &[Rec], dedup: bool) {
    let mut truth: HashMap<u32, Vec<String>> = HashMap::new();
    let mut index = Index::new(Config {
        auto_refit: false,
        ..Config::default()
    });
    for r in load {
        truth.entry(r.entity).or_default().push(r.id.clone());
        index.upsert(&r.id, &r.record);
    }
    index.fit();
    let (fit_q, report_q): (Vec<&Rec>, Vec<&Rec>) = queries.iter().partition(|r| r.entity % 2 == 0);
    index.set_config(Config {
        thresholds: Thresholds {
            certain: f64::INFINITY,
            probable: f64::INFINITY,
            possible: -30.0,
        },
        auto_refit: false,
        ..Config::default()
    });
    if !dedup && std::env::var_os("NO_LEARN").is_none() {
        // The fit half's intakes teach the model, as a clinic's intakes would.
        let _ = ask(&index, &fit_q, &truth, dedup);
        index.fit();
    }
    let fit_answers = ask(&index, &fit_q, &truth, dedup);
    let t = fit(&fit_answers);
    if std::env::var_os("SHOW").is_some() {
        for (f, p) in matching::FIELDS.iter().zip(&index.model().fields) {
            println!("    {:?} m {:.3?} u {:.5?}", f, p.m, p.u);
        }
        let mut worst: Vec<(f64, &str, &str, &Vec<(&str, &str)>)> = fit_answers
            .iter()
            .zip(&fit_q)
            .flat_map(|(a, q)| {
                a.hits
                    .iter()
                    .filter(|h| !a.truth.contains(&h.id) && h.held.is_empty())
                    .map(move |h| (h.log_odds, q.id.as_str(), h.id.as_str(), &h.fields))
            })
            .collect();
        worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (lo, q, c, fields) in worst.iter().take(8) {
            let rq = queries.iter().find(|r| r.id == *q).unwrap();
            let rc = load.iter().find(|r| r.id == *c).unwrap();
            let f: Vec<String> = fields
                .iter()
                .filter(|(_, l)| *l != "missing")
                .map(|(f, l)| format!("{f}:{l}"))
                .collect();
            println!(
                "    false {lo:.1} {q} {:?} {:?} {:?} | {c} {:?} {:?} {:?} | {}",
                rq.record.given,
                rq.record.family,
                rq.record.birth_date,
                rc.record.given,
                rc.record.family,
                rc.record.birth_date,
                f.join(" ")
            );
        }
    }
    index.set_config(Config {
        thresholds: t,
        auto_refit: false,
        ..Config::default()
    });
    let answers = ask(&index, &report_q, &truth, dedup);
    let f = figures(&answers, |h| match h.grade {
        Grade::Certain => 0,
        Grade::Probable => 1,
        Grade::Possible => 2,
        Grade::CertainlyNot => 3,
    });
    println!(
        "{name}: thresholds {:.1}/{:.1}/{:.1}; F1 {:.4} (P {:.4} R {:.4}); certain {} links, {} false, recall {:.4}; review {:.2}% (twin holds {:.2}% = {} of {}, besides {:.2}%)",
        t.certain,
        t.probable,
        t.possible,
        f.f1,
        f.precision,
        f.recall,
        f.certain_links,
        f.false_certain,
        f.certain_recall,
        100.0 * f.review as f64 / f.queries as f64,
        100.0 * f.twin as f64 / f.queries as f64,
        f.twin,
        f.queries,
        100.0 * (f.review - f.twin) as f64 / f.queries as f64,
    );
    // Diagnostics of the review cases besides twin holds.
    let mut tally: HashMap<(&str, &str), usize> = HashMap::new();
    let (mut cases, mut true_top) = (0, 0);
    for a in &answers {
        let Some(top) = a.hits.first() else { continue };
        if !matches!(top.grade, Grade::Probable | Grade::Possible) {
            continue;
        }
        if !top.held.is_empty() && top.held.iter().all(|x| *x == Hold::PossibleTwin) {
            continue;
        }
        cases += 1;
        true_top += usize::from(a.truth.contains(&top.id));
        for (f, l) in &top.fields {
            if *l != "exact" {
                *tally.entry((f, l)).or_default() += 1;
            }
        }
        for h in &top.held {
            *tally.entry(("held", h.code())).or_default() += 1;
        }
    }
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort_by(|a, b| b.1.cmp(&a.1));
    println!(
        "  review besides twins: {cases}, true top {true_top}; {}",
        tally
            .iter()
            .filter(|(k, _)| !matches!(k.0, "phone" | "email"))
            .map(|((f, l), n)| format!("{f}:{l} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (a, q) in answers.iter().zip(&report_q) {
        for h in a
            .hits
            .iter()
            .filter(|h| h.grade == Grade::Certain && !a.truth.contains(&h.id))
        {
            let stored = load.iter().find(|r| r.id == h.id).unwrap();
            let f: Vec<String> = h
                .fields
                .iter()
                .filter(|(_, l)| *l != "missing")
                .map(|(f, l)| format!("{f}:{l}"))
                .collect();
            println!(
                "  FALSE CERTAIN {} {:?} {:?} {:?} | {} {:?} {:?} {:?} | {:.1} {}",
                q.id,
                q.record.given,
                q.record.family,
                q.record.birth_date,
                stored.id,
                stored.record.given,
                stored.record.family,
                stored.record.birth_date,
                h.log_odds,
                f.join(" ")
            );
        }
    }
    if std::env::var_os("SHOW").is_some() {
        for (a, q) in answers.iter().zip(&report_q) {
            let Some(top) = a.hits.first() else { continue };
            if matches!(top.grade, Grade::Probable | Grade::Possible) {
                let stored = load.iter().find(|r| r.id == top.id).unwrap();
                println!(
                    "    {} {:?} {:?} {:?} | {} {:?} {:?} {:?} | {:.1} {:?} true={}",
                    q.id,
                    q.record.given,
                    q.record.family,
                    q.record.birth_date,
                    stored.id,
                    stored.record.given,
                    stored.record.family,
                    stored.record.birth_date,
                    top.log_odds,
                    top.held,
                    a.truth.contains(&top.id)
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(args.first().map_or("/tmp/febrl", String::as_str));
    let only = args.get(1).map(String::as_str);
    let read = |n: &str, s| read_csv(&dir.join(n), s);
    let sets: Vec<(&str, Vec<Rec>, Vec<Rec>, bool)> = vec![
        (
            "FEBRL4 with identifier",
            read("febrl4b.csv", Shape::Full),
            read("febrl4a.csv", Shape::Full),
            false,
        ),
        (
            "FEBRL3 with identifier",
            read("febrl3.csv", Shape::Full),
            read("febrl3.csv", Shape::Full),
            true,
        ),
        (
            "FEBRL4 without identifier",
            read("febrl4b.csv", Shape::NoIdentifier),
            read("febrl4a.csv", Shape::NoIdentifier),
            false,
        ),
        (
            "FEBRL3 without identifier",
            read("febrl3.csv", Shape::NoIdentifier),
            read("febrl3.csv", Shape::NoIdentifier),
            true,
        ),
        (
            "FEBRL4 asymmetric",
            read("febrl4b.csv", Shape::Emr),
            read("febrl4a.csv", Shape::Intake),
            false,
        ),
        (
            "FEBRL3 asymmetric",
            read("febrl3.csv", Shape::Emr),
            read("febrl3.csv", Shape::Intake),
            true,
        ),
    ];
    for (name, load, queries, dedup) in &sets {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        scenario(name, load, queries, *dedup);
    }
}
