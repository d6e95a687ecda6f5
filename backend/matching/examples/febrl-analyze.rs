//! Development aid: the FEBRL bench in process (no server), with a breakdown of
//! why queries go to review. `cargo run --release -p matching --example febrl-analyze DIR`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use matching::{Config, Grade, Identifier, Index, MatchOptions, PatientRecord, Thresholds};

struct Rec {
    id: String,
    entity: u32,
    record: PatientRecord,
}

fn read_csv(path: &Path, with_identifier: bool) -> Vec<Rec> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (id, given, surname, number, a1, a2, suburb, postcode, state, dob, ssn) = (
        col("rec_id"),
        col("given_name"),
        col("surname"),
        col("street_number"),
        col("address_1"),
        col("address_2"),
        col("suburb"),
        col("postcode"),
        col("state"),
        col("date_of_birth"),
        col("soc_sec_id"),
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
            let rec_id = get(id).unwrap().to_owned();
            let entity: u32 = rec_id.split('-').nth(1).unwrap().parse().unwrap();
            let line1 = [get(number), get(a1)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let mut address_lines = Vec::new();
            if !line1.is_empty() {
                address_lines.push(line1);
            }
            if let Some(l) = get(a2) {
                address_lines.push(l.to_owned());
            }
            let record = PatientRecord {
                given: get(given).map(|g| vec![g.to_owned()]).unwrap_or_default(),
                family: get(surname).map(str::to_owned),
                address_lines,
                city: get(suburb).map(str::to_owned),
                postal_code: get(postcode).map(str::to_owned),
                state: get(state).map(str::to_owned),
                birth_date: get(dob)
                    .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
                    .map(|d| format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8])),
                identifiers: if with_identifier {
                    get(ssn)
                        .map(|s| {
                            vec![Identifier {
                                system: "urn:febrl:soc_sec_id".into(),
                                value: s.into(),
                            }]
                        })
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
                ..PatientRecord::default()
            };
            Rec {
                id: rec_id,
                entity,
                record,
            }
        })
        .collect()
}

#[derive(Clone, Debug)]
struct Hit {
    id: String,
    log_odds: f64,
    held: Vec<&'static str>,
    grade: Grade,
    fields: String,
}

struct Answer {
    hits: Vec<Hit>,
    truth: HashSet<String>,
    query: String,
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
                    .iter()
                    .map(|c| Hit {
                        id: c.id.clone(),
                        log_odds: c.log_odds,
                        held: c.explanation.held.iter().map(|h| h.code()).collect(),
                        grade: c.grade,
                        fields: c
                            .explanation
                            .fields
                            .iter()
                            .filter(|f| f.level != matching::Level::Missing)
                            .map(|f| {
                                format!(
                                    "{}={}{}({:.1})",
                                    f.field.code(),
                                    f.level.code(),
                                    f.detail
                                        .map(|d| format!("/{}", d.code()))
                                        .unwrap_or_default(),
                                    f.weight
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                    })
                    .collect(),
                truth: truth
                    .get(&q.entity)
                    .into_iter()
                    .flatten()
                    .filter(|id| !dedup || **id != q.id)
                    .cloned()
                    .collect(),
                query: format!("{:?}", q.record),
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Figures {
    precision: f64,
    recall: f64,
    f1: f64,
    certain_precision: f64,
    certain_links: usize,
    review_share: f64,
}

fn figures(answers: &[Answer], certain: f64, probable: f64, possible: f64) -> Figures {
    let (mut tp, mut fp, mut fnn, mut ctp, mut cfp, mut review) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for a in answers {
        let mut top: Option<u8> = None;
        let mut linked = HashSet::new();
        for h in &a.hits {
            let grade = if h.log_odds >= certain && h.held.is_empty() {
                0
            } else if h.log_odds >= probable {
                1
            } else if h.log_odds >= possible {
                2
            } else {
                3
            };
            top = Some(top.map_or(grade, |t| t.min(grade)));
            if grade <= 1 {
                linked.insert(h.id.clone());
                let true_pair = a.truth.contains(&h.id);
                if true_pair {
                    tp += 1;
                } else {
                    fp += 1;
                }
                if grade == 0 {
                    if true_pair {
                        ctp += 1;
                    } else {
                        cfp += 1;
                    }
                }
            }
        }
        fnn += a.truth.iter().filter(|t| !linked.contains(*t)).count();
        if matches!(top, Some(1 | 2)) {
            review += 1;
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fnn).max(1) as f64;
    Figures {
        precision,
        recall,
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        certain_precision: if ctp + cfp == 0 {
            1.0
        } else {
            ctp as f64 / (ctp + cfp) as f64
        },
        certain_links: ctp + cfp,
        review_share: review as f64 / answers.len().max(1) as f64,
    }
}

fn fit(answers: &[Answer], buffer: f64) -> Thresholds {
    let mut values: Vec<f64> = answers
        .iter()
        .flat_map(|a| a.hits.iter().map(|h| h.log_odds))
        .filter(|x| x.is_finite())
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let mut best = (f64::NEG_INFINITY, 0.0);
    for v in &values {
        let f = figures(answers, f64::INFINITY, *v, *v).f1;
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
    println!("  worst false (unheld) in fit half: {worst_false:.2}; probable {probable:.2}");
    Thresholds {
        certain: (worst_false + buffer).max(probable),
        probable,
        possible: probable - 2.0,
    }
}

fn scenario(name: &str, load: &[Rec], queries: &[Rec], dedup: bool, verbose: bool) {
    let buffer: f64 = std::env::var("BUFFER")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(2.0);
    let mut truth: HashMap<u32, Vec<String>> = HashMap::new();
    for r in load {
        truth.entry(r.entity).or_default().push(r.id.clone());
    }
    let mut index = Index::new(Config {
        auto_refit: false,
        thresholds: Thresholds {
            certain: f64::INFINITY,
            probable: f64::INFINITY,
            possible: -30.0,
        },
        ..Config::default()
    });
    for r in load {
        index.upsert(&r.id, &r.record);
    }
    index.fit();
    let (fit_q, report_q): (Vec<&Rec>, Vec<&Rec>) = queries.iter().partition(|r| r.entity % 2 == 0);
    let fit_answers = ask(&index, &fit_q, &truth, dedup);
    let t = fit(&fit_answers, buffer);
    index.set_config(Config {
        auto_refit: false,
        thresholds: t,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let answers = ask(&index, &report_q, &truth, dedup);
    let per_query = started.elapsed().as_secs_f64() * 1e3 / report_q.len().max(1) as f64;
    let considered: usize = report_q
        .iter()
        .map(|q| index.find(&q.record, &MatchOptions::default()).considered)
        .sum();
    println!(
        "  mean {per_query:.3} ms/query, {:.1} candidates considered",
        considered as f64 / report_q.len().max(1) as f64
    );
    let f = figures(&answers, t.certain, t.probable, t.possible);
    // Pairs completeness.
    let (mut found, mut total) = (0usize, 0usize);
    for q in &report_q {
        let cands: HashSet<&str> = index.blocking_candidates(&q.record).into_iter().collect();
        for id in truth
            .get(&q.entity)
            .into_iter()
            .flatten()
            .filter(|id| !dedup || **id != q.id)
        {
            total += 1;
            let hit = cands.contains(id.as_str());
            found += usize::from(hit);
            if !hit && std::env::var("MISSED").is_ok() {
                let other = load.iter().find(|r| r.id == *id).unwrap();
                println!("   MISSED {:?}\n       vs {:?}", q.record, other.record);
            }
        }
    }
    println!(
        "{name}: certain ≥ {:.2} probable ≥ {:.2} | P {:.4} R {:.4} F1 {:.4} certainP {:.4} ({}) PC {:.4} review {:.2}%",
        t.certain,
        t.probable,
        f.precision,
        f.recall,
        f.f1,
        f.certain_precision,
        f.certain_links,
        found as f64 / total.max(1) as f64,
        100.0 * f.review_share
    );
    // Why review.
    let mut reasons: HashMap<String, usize> = HashMap::new();
    let mut shown = 0;
    for a in &answers {
        let top = a.hits.iter().map(|h| h.grade).min();
        if !matches!(top, Some(Grade::Probable | Grade::Possible)) {
            continue;
        }
        let h = &a.hits[0];
        let truth = a.truth.contains(&h.id);
        let reason = if !h.held.is_empty() {
            format!(
                "top {} held {:?}",
                if truth { "true" } else { "FALSE" },
                h.held
            )
        } else {
            format!("top {} below certain", if truth { "true" } else { "FALSE" })
        };
        *reasons.entry(reason).or_default() += 1;
        if verbose
            && shown
                < std::env::var("SHOW")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(40)
        {
            shown += 1;
            println!("   Q {}", a.query);
            for h in a.hits.iter().take(3) {
                println!(
                    "     {} {} {:.2} {:?} {:?} {}",
                    if a.truth.contains(&h.id) { "T" } else { "F" },
                    h.id,
                    h.log_odds,
                    h.grade,
                    h.held,
                    h.fields
                );
            }
        }
    }
    let mut r: Vec<_> = reasons.into_iter().collect();
    r.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (k, v) in r {
        println!("    {v:5} {k}");
    }
    if std::env::var("FALSE").is_ok() {
        // Wrong unheld candidates in the fit half, highest first.
        let mut wrong: Vec<(f64, &Answer, &Hit)> = fit_answers
            .iter()
            .flat_map(|a| {
                a.hits
                    .iter()
                    .filter(|h| !a.truth.contains(&h.id))
                    .map(move |h| (h.log_odds, a, h))
            })
            .collect();
        wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (lo, a, h) in wrong.iter().take(8) {
            println!(
                "   WRONG {lo:.2} {:?} {} {}\n      Q {}",
                h.held, h.id, h.fields, a.query
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(args.first().map_or(".", String::as_str));
    let which = args.get(1).map_or("all", String::as_str);
    let verbose = std::env::var("VERBOSE").is_ok();
    for with_id in [true, false] {
        let suffix = if with_id { "with id" } else { "without id" };
        if which == "all"
            || which == "4"
            || which == format!("4{}", if with_id { "i" } else { "n" })
        {
            let a = read_csv(&dir.join("febrl4a.csv"), with_id);
            let b = read_csv(&dir.join("febrl4b.csv"), with_id);
            scenario(&format!("FEBRL4 {suffix}"), &b, &a, false, verbose);
        }
        if which == "all"
            || which == "3"
            || which == format!("3{}", if with_id { "i" } else { "n" })
        {
            let all3 = read_csv(&dir.join("febrl3.csv"), with_id);
            scenario(&format!("FEBRL3 {suffix}"), &all3, &all3, true, verbose);
        }
    }
}
