//! `cargo xtask bench match`: the patient matching engine measured on FEBRL (through
//! the FHIR API of a real server) and on a synthetic population of a million.
//!
//! ```text
//! bench-match febrl DIR [SET]    # DIR holds febrl4a.csv, febrl4b.csv, febrl3.csv;
//!                                # SET: only the sets whose name contains it
//! bench-match synthetic N        # N generated patients (default 1,000,000)
//! ```
//!
//! FEBRL: each scenario loads its patients with `POST /fhir` transactions into a fresh
//! server, restarts it (the index is built and fitted at start, as in production),
//! and splits the queries in two halves by entity: the first half's queries teach
//! the model (EM over their blocked pairs, kept across the restart), thresholds are
//! fitted on the first half's labels, and figures reported on the second half only.
//! Figures only, no asserts.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backend::{Application, Config};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("febrl") => {
            febrl(
                Path::new(args.get(1).map_or(".", String::as_str)),
                args.get(2).map(String::as_str),
            )
            .await
        }
        Some("synthetic") => {
            let n = args
                .get(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000);
            synthetic(n).await
        }
        _ => {
            println!("usage: bench-match febrl DIR [SET] | synthetic [N]");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- FEBRL ----------

/// One FEBRL record: its id, its entity (the number in `rec-N-…`) and its Patient.
#[derive(Clone)]
struct Rec {
    id: String,
    entity: u32,
    patient: Value,
}

/// Which of a FEBRL record's fields a scenario keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Everything.
    Full,
    /// Everything but the identifier.
    NoIdentifier,
    /// The EMR's side of the asymmetric sets: names, birth date and identifier, no address.
    Emr,
    /// The intake's side: names, birth date and address, no identifier.
    Intake,
}

fn read_csv(path: &Path, shape: Shape) -> anyhow::Result<Vec<Rec>> {
    let with_identifier = matches!(shape, Shape::Full | Shape::Emr);
    let with_address = shape != Shape::Emr;
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
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
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
        let rec_id = get(id).unwrap().to_owned();
        let entity: u32 = rec_id.split('-').nth(1).unwrap().parse()?;
        let mut patient = json!({"resourceType": "Patient", "id": rec_id});
        let mut name = json!({});
        if let Some(g) = get(given) {
            name["given"] = json!([g]);
        }
        if let Some(s) = get(surname) {
            name["family"] = json!(s);
        }
        patient["name"] = json!([name]);
        let mut address = json!({});
        let line1 = [get(number), get(a1)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let mut lines = Vec::new();
        if !line1.is_empty() {
            lines.push(line1);
        }
        if let Some(l) = get(a2) {
            lines.push(l.to_owned());
        }
        if !lines.is_empty() {
            address["line"] = json!(lines);
        }
        if let Some(c) = get(suburb) {
            address["city"] = json!(c);
        }
        if let Some(p) = get(postcode) {
            address["postalCode"] = json!(p);
        }
        if let Some(s) = get(state) {
            address["state"] = json!(s);
        }
        if with_address {
            patient["address"] = json!([address]);
        }
        // A date FEBRL corrupted past the calendar (month 92) is left out: FHIR (and
        // the store) refuse it, as an intake form would.
        if let Some(d) = get(dob).filter(|d| calendar_date(d)) {
            patient["birthDate"] = json!(format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]));
        }
        if with_identifier && let Some(s) = get(ssn) {
            patient["identifier"] = json!([{"system": "urn:febrl:soc_sec_id", "value": s}]);
        }
        out.push(Rec {
            id: rec_id,
            entity,
            patient,
        });
    }
    Ok(out)
}

/// Whether `YYYYMMDD` is a date of the calendar.
fn calendar_date(d: &str) -> bool {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (y, m, day): (u32, u32, u32) = (
        d[0..4].parse().unwrap_or(0),
        d[4..6].parse().unwrap_or(0),
        d[6..8].parse().unwrap_or(0),
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    y >= 1 && day >= 1 && day <= days
}

/// A server on 127.0.0.1:0 over `data`, and a way to stop it.
struct Server {
    base: String,
    /// Sends a system token: `/fhir` needs one.
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    build: Duration,
}

async fn start(data: &Path, matching: matching::Config) -> anyhow::Result<Server> {
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data: data.to_owned(),
        dist: data.join("no-dist"),
        max_body_bytes: 256 * 1024,
        matching: Default::default(),
        delivery: Default::default(),
        emr: Default::default(),
        guard: Default::default(),
        public_url: None,
    };
    let started = Instant::now();
    let app = Application::build_with_matching(&config, matching).await?;
    let build = started.elapsed();
    let base = format!("http://{}", app.local_addr()?);
    // One token per start: a scenario starts several times over one folder.
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = backend::auth::tokens::create(
        app.db(),
        std::time::SystemTime::now(),
        &format!("bench-{n}"),
        backend::auth::Role::System,
    )
    .await?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Ok(Server {
        base,
        client,
        stop,
        task,
        build,
    })
}

impl Server {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let res = client
        .post(url)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await?;
    let status = res.status();
    let value: Value = res.json().await?;
    anyhow::ensure!(status.is_success(), "{url}: {status} {value}");
    Ok(value)
}

async fn load(client: &reqwest::Client, base: &str, recs: &[&Rec]) -> anyhow::Result<()> {
    for chunk in recs.chunks(500) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| json!({"resource": r.patient, "request": {"method": "PUT", "url": format!("Patient/{}", r.id)}}))
            .collect();
        post(
            client,
            &format!("{base}/fhir"),
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await?;
    }
    Ok(())
}

/// One returned candidate, as read from the searchset.
#[derive(Clone, Debug)]
struct Hit {
    id: String,
    grade: String,
    log_odds: f64,
    held: bool,
    /// Held only because the candidate may be the query's twin (the issue's rule).
    twin: bool,
    /// Each field's code and agreement level, from the explanation.
    fields: Vec<(String, String)>,
}

fn hits(bundle: &Value) -> Vec<Hit> {
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            let ext = e["search"]["extension"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let grade = ext
                .iter()
                .find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade")
                .map(|x| x["valueCode"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            let explanation = ext
                .iter()
                .find(|x| x["url"] == "urn:intake:fhir:StructureDefinition:match-explanation")
                .cloned()
                .unwrap_or_default();
            let parts = explanation["extension"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let log_odds = parts
                .iter()
                .find(|p| p["url"] == "logOdds")
                .and_then(|p| p["valueDecimal"].as_f64())
                .unwrap_or(f64::NEG_INFINITY);
            let held = parts.iter().any(|p| p["url"] == "held");
            let twin = parts
                .iter()
                .filter(|p| p["url"] == "held")
                .all(|p| p["valueCode"] == "possible-twin");
            let fields = parts
                .iter()
                .filter(|p| p["url"] == "field")
                .map(|p| {
                    let sub = p["extension"].as_array().cloned().unwrap_or_default();
                    let get = |url: &str| {
                        sub.iter()
                            .find(|x| x["url"] == url)
                            .and_then(|x| x["valueCode"].as_str())
                            .unwrap_or("")
                            .to_owned()
                    };
                    (get("name"), get("level"))
                })
                .collect();
            Hit {
                id: e["resource"]["id"].as_str().unwrap_or("").to_owned(),
                grade,
                log_odds,
                held,
                twin: held && twin,
                fields,
            }
        })
        .collect()
}

/// A query's results, its true matches and its latency.
struct Answer {
    hits: Vec<Hit>,
    truth: HashSet<String>,
    latency: Duration,
}

async fn ask(
    client: &reqwest::Client,
    base: &str,
    queries: &[&Rec],
    truth: &HashMap<u32, Vec<String>>,
    exclude_self: bool,
) -> anyhow::Result<Vec<Answer>> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let params = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": q.patient}, {"name": "count", "valueInteger": 10}]});
        let started = Instant::now();
        let bundle = post(client, &format!("{base}/fhir/Patient/$match"), &params).await?;
        let latency = started.elapsed();
        let mut h = hits(&bundle);
        if exclude_self {
            h.retain(|x| x.id != q.id);
        }
        let t = truth
            .get(&q.entity)
            .into_iter()
            .flatten()
            .filter(|id| !exclude_self || **id != q.id)
            .cloned()
            .collect();
        out.push(Answer {
            hits: h,
            truth: t,
            latency,
        });
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Figures {
    precision: f64,
    recall: f64,
    f1: f64,
    certain_precision: f64,
    certain_links: usize,
    /// `certain` links to another patient.
    false_certain: usize,
    /// Share of the true pairs linked as `certain`.
    certain_recall: f64,
    review_share: f64,
    /// Review share leaving out queries whose top candidate the twin rule held.
    review_share_not_twin: f64,
}

/// Figures under thresholds applied to the returned log-odds (`certain` also needs
/// no hold), as the server would grade with them.
fn figures(answers: &[Answer], certain: f64, probable: f64, possible: f64) -> Figures {
    let (mut tp, mut fp, mut fnn, mut ctp, mut cfp, mut review, mut twin_review) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for a in answers {
        let mut top: Option<u8> = None;
        let mut linked = HashSet::new();
        for h in &a.hits {
            let grade = if h.log_odds >= certain && !h.held {
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
            if a.hits.first().is_some_and(|h| h.twin) {
                twin_review += 1;
            }
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
        false_certain: cfp,
        certain_recall: ctp as f64 / (tp + fnn).max(1) as f64,
        review_share: review as f64 / answers.len().max(1) as f64,
        review_share_not_twin: (review - twin_review) as f64 / answers.len().max(1) as f64,
    }
}

/// For the queries sent to review whose top candidate the twin rule did not hold:
/// how many, how many of those top candidates are the true patient, and per field
/// how often that candidate's field was missing or disagreed (other than exactly).
fn review_diagnostics(answers: &[Answer]) -> String {
    let mut cases = 0usize;
    let mut true_top = 0usize;
    let mut twins = 0usize;
    let mut missing: Vec<(String, usize)> = Vec::new();
    let mut partial: Vec<(String, usize)> = Vec::new();
    let mut different: Vec<(String, usize)> = Vec::new();
    let bump = |list: &mut Vec<(String, usize)>, field: &str| match list
        .iter_mut()
        .find(|(f, _)| f == field)
    {
        Some((_, n)) => *n += 1,
        None => list.push((field.to_owned(), 1)),
    };
    for a in answers {
        let Some(top) = a.hits.first() else { continue };
        // In review: no candidate `certain`, the best one probable or possible.
        if a.hits.iter().any(|h| h.grade == "certain")
            || !matches!(top.grade.as_str(), "probable" | "possible")
        {
            continue;
        }
        if top.twin {
            twins += 1;
            continue;
        }
        cases += 1;
        true_top += usize::from(a.truth.contains(&top.id));
        for (field, level) in &top.fields {
            match level.as_str() {
                "missing" => bump(&mut missing, field),
                "different" => bump(&mut different, field),
                "close" | "phonetic" => bump(&mut partial, field),
                _ => {}
            }
        }
    }
    let show = |list: &mut Vec<(String, usize)>| {
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list.iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{twins} twin holds; {cases} other review cases, top candidate the true patient in {true_top}; its fields missing: {}; close or phonetic: {}; different: {}",
        show(&mut missing),
        show(&mut partial),
        show(&mut different)
    )
}

/// Fits thresholds on labelled answers: `probable` maximises F1; `certain` is the
/// lowest at which no false candidate would be certain, plus a 2-bit margin;
/// `possible` sits 2 bits under `probable`.
fn fit(answers: &[Answer]) -> matching::Thresholds {
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
                .filter(|h| !a.truth.contains(&h.id) && !h.held)
                .map(|h| h.log_odds)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    matching::Thresholds {
        certain: (worst_false + 2.0).max(probable),
        probable,
        possible: probable - 2.0,
    }
}

fn percentile(latencies: &mut [Duration], p: f64) -> f64 {
    latencies.sort();
    let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

struct Scenario<'a> {
    name: &'a str,
    load: Vec<&'a Rec>,
    queries: Vec<&'a Rec>,
    dedup: bool,
}

async fn run_scenario(s: &Scenario<'_>) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let mut truth: HashMap<u32, Vec<String>> = HashMap::new();
    for r in &s.load {
        truth.entry(r.entity).or_default().push(r.id.clone());
    }
    // Load through the API, then restart: the index is built and fitted at start.
    let server = start(dir.path(), matching::Config::default()).await?;
    let started = Instant::now();
    load(&server.client, &server.base, &s.load).await?;
    let load_time = started.elapsed();
    server.stop().await?;
    // Half 1 (even entities) for fitting, half 2 (odd) for the report.
    let (fit_q, report_q): (Vec<&Rec>, Vec<&Rec>) =
        s.queries.iter().partition(|r| r.entity % 2 == 0);
    let open = matching::Config {
        thresholds: matching::Thresholds {
            certain: f64::INFINITY,
            probable: f64::INFINITY,
            possible: -30.0,
        },
        ..matching::Config::default()
    };
    // The first half's intakes teach the model (kept at stop, learned at the next
    // start), as a clinic's intakes would; then the thresholds are fitted on the
    // first half's scores under the model learned. (In FEBRL3 each query is a
    // stored chart and meets itself too.)
    let server = start(dir.path(), open.clone()).await?;
    ask(&server.client, &server.base, &fit_q, &truth, s.dedup).await?;
    server.stop().await?;
    let server = start(dir.path(), open).await?;
    let fit_answers = ask(&server.client, &server.base, &fit_q, &truth, s.dedup).await?;
    server.stop().await?;
    let thresholds = fit(&fit_answers);
    let server = start(
        dir.path(),
        matching::Config {
            thresholds,
            ..matching::Config::default()
        },
    )
    .await?;
    let build = server.build;
    let answers = ask(&server.client, &server.base, &report_q, &truth, s.dedup).await?;
    server.stop().await?;
    // The server graded with the fitted thresholds: count its own grades.
    let mut graded = answers;
    for a in &mut graded {
        for h in &mut a.hits {
            h.log_odds = match h.grade.as_str() {
                "certain" => f64::INFINITY,
                "probable" => 1.0,
                "possible" => 0.0,
                _ => -1.0,
            };
            h.held = false;
        }
    }
    let f = figures(&graded, f64::INFINITY, 1.0, 0.0);
    let diagnostics = review_diagnostics(&graded);
    // Every false `certain`, by record id (FEBRL's, not a person's) and levels.
    for (a, q) in graded.iter().zip(&report_q) {
        for h in a
            .hits
            .iter()
            .filter(|h| h.grade == "certain" && !a.truth.contains(&h.id))
        {
            let levels: Vec<String> = h
                .fields
                .iter()
                .filter(|(_, l)| l != "missing")
                .map(|(f, l)| format!("{f} {l}"))
                .collect();
            println!(
                "{}: false certain {} → {}: {}",
                s.name,
                q.id,
                h.id,
                levels.join(", ")
            );
        }
    }
    let mut lat: Vec<Duration> = graded.iter().map(|a| a.latency).collect();
    // Pairs completeness and in-process latency, on the same records and queries.
    let mut index = matching::Index::new(matching::Config {
        auto_refit: false,
        thresholds,
        ..matching::Config::default()
    });
    for r in &s.load {
        index.upsert(&r.id, &backend::fhir::patient::to_record(&r.patient));
    }
    index.fit();
    let (mut found, mut total) = (0usize, 0usize);
    let mut inproc = Vec::new();
    for q in &report_q {
        let record = backend::fhir::patient::to_record(&q.patient);
        let cands: HashSet<&str> = index.blocking_candidates(&record).into_iter().collect();
        for t in truth
            .get(&q.entity)
            .into_iter()
            .flatten()
            .filter(|id| !s.dedup || **id != q.id)
        {
            total += 1;
            found += usize::from(cands.contains(t.as_str()));
        }
        let started = Instant::now();
        let _ = index.find_excluding(
            &record,
            &matching::MatchOptions::default(),
            s.dedup.then_some(q.id.as_str()),
        );
        inproc.push(started.elapsed());
    }
    let pc = found as f64 / total.max(1) as f64;
    println!(
        "{}: loaded {} in {:.1}s (index build at start {:.0} ms); fitted on {} queries: certain ≥ {:.1}, probable ≥ {:.1}, possible ≥ {:.1} bits",
        s.name,
        s.load.len(),
        load_time.as_secs_f64(),
        build.as_secs_f64() * 1e3,
        fit_q.len(),
        thresholds.certain,
        thresholds.probable,
        thresholds.possible
    );
    println!("{}: {diagnostics}", s.name);
    Ok(format!(
        "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} ({} links, {} false) | {:.4} | {:.4} | {:.2}% | {:.2}% | {:.2}% | {:.2} / {:.2} ms | {:.3} / {:.3} ms |",
        s.name,
        report_q.len(),
        f.precision,
        f.recall,
        f.f1,
        f.certain_precision,
        f.certain_links,
        f.false_certain,
        f.certain_recall,
        pc,
        100.0 * f.review_share,
        100.0 * (f.review_share - f.review_share_not_twin),
        100.0 * f.review_share_not_twin,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        percentile(&mut inproc, 0.5),
        percentile(&mut inproc, 0.99)
    ))
}

async fn febrl(dir: &Path, only: Option<&str>) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let read = |name: &str, shape| read_csv(&dir.join(name), shape);
    let mut scenarios = Vec::new();
    for (shape, suffix) in [
        (Shape::Full, "with identifier"),
        (Shape::NoIdentifier, "without identifier"),
    ] {
        let three = read("febrl3.csv", shape)?;
        scenarios.push((
            format!("FEBRL4 {suffix}"),
            read("febrl4b.csv", shape)?,
            read("febrl4a.csv", shape)?,
            false,
        ));
        scenarios.push((format!("FEBRL3 {suffix}"), three.clone(), three, true));
    }
    // The asymmetric sets: the EMR keeps the identifier and has no address; the
    // intake has the address and no identifier. Only names and birth date are shared.
    scenarios.push((
        "FEBRL4 asymmetric".to_owned(),
        read("febrl4b.csv", Shape::Emr)?,
        read("febrl4a.csv", Shape::Intake)?,
        false,
    ));
    scenarios.push((
        "FEBRL3 asymmetric".to_owned(),
        read("febrl3.csv", Shape::Emr)?,
        read("febrl3.csv", Shape::Intake)?,
        true,
    ));
    for (name, load, queries, dedup) in &scenarios {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let s = Scenario {
            name,
            load: load.iter().collect(),
            queries: queries.iter().collect(),
            dedup: *dedup,
        };
        rows.push(run_scenario(&s).await?);
    }
    println!(
        "\nReported on the second half of the queries (odd entity numbers); thresholds fitted on the first half.\n\
         \"Twin holds\": queries whose top candidate was held only by the twin rule (same birth date and\n\
         family name, an unrelated given name), which is never `certain`. Certain recall: share of the true\n\
         pairs linked as `certain`.\n"
    );
    println!(
        "| set | queries | precision | recall | F1 | certain precision | certain recall | pairs completeness | review share | twin holds | review besides twin holds | HTTP p50 / p99 | in-process p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

// ------------------------------------------------------------ synthetic ----------

/// Seeded: the same population every run.
use matching::rng::SplitMix as Rng;

/// Draws ranks with Zipf-like weights (frequency ∝ 1/rank^s), as name frequencies
/// are: the commonest surname about 1% of people, a long tail of rare ones.
struct Zipf {
    cumulative: Vec<f64>,
}
impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                acc += 1.0 / (r as f64).powf(s);
                acc
            })
            .collect();
        Self { cumulative }
    }
    fn draw(&self, rng: &mut Rng) -> usize {
        let x = rng.unit() * self.cumulative.last().copied().unwrap_or(1.0);
        self.cumulative.partition_point(|c| *c < x)
    }
}

const SYLLABLES: &[&str] = &[
    "an", "ber", "cal", "dan", "el", "far", "gar", "hal", "in", "jo", "kel", "lin", "mar", "nor",
    "ol", "par", "quin", "ros", "sten", "tor", "ul", "van", "wil", "xan", "yor", "zel", "ton",
    "son", "ley", "man", "berg", "ford", "field", "wood", "ridge", "well", "ham", "by", "stein",
    "ez",
];

fn surname(rank: usize) -> String {
    // Rank → a pronounceable, distinct name of two or three syllables.
    let n = SYLLABLES.len();
    let mut s = String::new();
    s.push_str(SYLLABLES[rank % n]);
    s.push_str(SYLLABLES[(rank / n) % n]);
    if rank >= n * n {
        s.push_str(SYLLABLES[(rank / (n * n)) % n]);
    }
    s
}

fn given_names() -> Vec<String> {
    let mut names: Vec<String> = matching::nicknames::csv()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_owned))
        .collect();
    names.dedup();
    names
}

fn typo(rng: &mut Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() > 2 {
        let i = 1 + rng.below(c.len() - 2);
        match rng.below(3) {
            0 => {
                c.remove(i);
            }
            1 => c.swap(i, i - 1),
            _ => c[i] = 'e',
        }
    }
    c.into_iter().collect()
}

fn synthetic_record(
    rng: &mut Rng,
    given: &[String],
    gz: &Zipf,
    sz: &Zipf,
) -> matching::PatientRecord {
    let g = &given[gz.draw(rng) % given.len()];
    let f = surname(sz.draw(rng));
    let year = 1930 + rng.below(90);
    let (month, day) = (1 + rng.below(12), 1 + rng.below(28));
    let postal = format!("{:05}", 10_000 + rng.below(30_000));
    matching::PatientRecord {
        given: vec![g.clone()],
        family: Some(f),
        birth_date: Some(format!("{year}-{month:02}-{day:02}")),
        gender: Some(if rng.below(2) == 0 { "male" } else { "female" }.into()),
        phones: vec![format!(
            "+1 {:03} {:03} {:04}",
            200 + rng.below(800),
            rng.below(1000),
            rng.below(10_000)
        )],
        address_lines: vec![format!(
            "{} {} St",
            1 + rng.below(9999),
            surname(rng.below(5000))
        )],
        city: Some(surname(rng.below(2000))),
        state: Some("ca".into()),
        postal_code: Some(postal),
        identifiers: vec![matching::Identifier {
            system: "urn:mrn".into(),
            value: format!("M{:09}", rng.next_u64() % 1_000_000_000),
        }],
        ..matching::PatientRecord::default()
    }
}

fn to_fhir(id: &str, r: &matching::PatientRecord) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": r.identifiers.iter().map(|i| json!({"system": i.system, "value": i.value})).collect::<Vec<_>>(),
        "name": [{"family": r.family, "given": r.given}],
        "gender": r.gender,
        "birthDate": r.birth_date,
        "telecom": r.phones.iter().map(|p| json!({"system": "phone", "value": p})).collect::<Vec<_>>(),
        "address": [{"line": r.address_lines, "city": r.city, "state": r.state, "postalCode": r.postal_code}],
    })
}

/// A query for a stored patient as registration data often differs: a typo in one
/// name, no identifier, often no phone.
fn corrupt(rng: &mut Rng, r: &matching::PatientRecord) -> matching::PatientRecord {
    let mut q = r.clone();
    q.identifiers.clear();
    if rng.below(2) == 0 {
        q.phones.clear();
    }
    match rng.below(3) {
        0 => q.family = q.family.as_deref().map(|f| typo(rng, f)),
        1 => q.given = q.given.iter().map(|g| typo(rng, g)).collect(),
        _ => {}
    }
    q
}

fn memory_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn synthetic(n: usize) -> anyhow::Result<()> {
    let given = given_names();
    let (gz, sz) = (Zipf::new(given.len(), 1.0), Zipf::new(150_000, 1.0));
    let mut rng = Rng(2026);
    let started = Instant::now();
    let population: Vec<matching::PatientRecord> = (0..n)
        .map(|_| synthetic_record(&mut rng, &given, &gz, &sz))
        .collect();
    println!(
        "generated {n} patients in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // In-process: build, fit, memory.
    let rss_before = memory_rss_mib();
    let started = Instant::now();
    let mut index = matching::Index::new(matching::Config {
        auto_refit: false,
        ..matching::Config::default()
    });
    for (i, r) in population.iter().enumerate() {
        index.upsert(&format!("p{i}"), r);
    }
    let insert = started.elapsed();
    index.fit();
    let build = started.elapsed();
    let mem = index.memory();
    let rss_after = memory_rss_mib();
    let queries: Vec<(usize, matching::PatientRecord)> = (0..2_000)
        .map(|_| {
            let i = rng.below(n);
            (i, corrupt(&mut rng, &population[i]))
        })
        .collect();
    let mut lat = Vec::new();
    let mut top_hit = 0;
    for (i, q) in &queries {
        let t = Instant::now();
        let out = index.find(q, &matching::MatchOptions::default());
        lat.push(t.elapsed());
        top_hit += usize::from(
            out.candidates
                .first()
                .is_some_and(|c| c.id == format!("p{i}")),
        );
    }
    println!(
        "in-process: index build {:.1}s ({:.1}s inserts + fit), {} patients, {:.0} MiB by the index's own count ({} B/patient), RSS grew {:.0} MiB; $match p50 {:.3} ms, p99 {:.3} ms; true patient on top for {:.1}% of corrupted queries",
        build.as_secs_f64(),
        insert.as_secs_f64(),
        mem.patients,
        mem.total_bytes as f64 / 1048576.0,
        mem.bytes_per_patient,
        rss_after - rss_before,
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99),
        100.0 * top_hit as f64 / queries.len() as f64
    );
    drop(index);
    // Over HTTP: the store written in bulk (the same code as POST /fhir), then a server
    // started on it builds its index from the store.
    let dir: PathBuf = tempfile::tempdir()?.keep();
    {
        let db = backend::db::open(&dir).await?;
        let store = backend::store::Store::new(
            db.clone(),
            std::sync::Arc::new(backend::clock::SystemClock),
            std::sync::Arc::new(backend::store::patients::PatientIndex::empty(
                matching::Config {
                    auto_refit: false,
                    ..matching::Config::default()
                },
            )),
        );
        let started = Instant::now();
        for (c, chunk) in population.chunks(10_000).enumerate() {
            let writes = chunk
                .iter()
                .enumerate()
                .map(|(j, r)| backend::store::Request::Update {
                    id: format!("p{}", c * 10_000 + j),
                    resource: to_fhir(&format!("p{}", c * 10_000 + j), r),
                    if_match: None,
                    full_url: None,
                })
                .collect();
            store
                .transaction(writes)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        println!(
            "stored {n} patients in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        db.close().await;
    }
    let server = start(&dir, matching::Config::default()).await?;
    println!(
        "server start with index build from the store: {:.1}s",
        server.build.as_secs_f64()
    );
    let client = server.client.clone();
    let mut lat = Vec::new();
    for (_, q) in queries.iter().take(1_000) {
        let body = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": to_fhir("q", q)}]});
        let t = Instant::now();
        post(
            &client,
            &format!("{}/fhir/Patient/$match", server.base),
            &body,
        )
        .await?;
        lat.push(t.elapsed());
    }
    println!(
        "over HTTP: $match p50 {:.3} ms, p99 {:.3} ms",
        percentile(&mut lat.clone(), 0.5),
        percentile(&mut lat, 0.99)
    );
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
