//! The official FHIRPath R4 test suite (`../shared/fixtures/fhirpath/`, relative
//! to the repository root) run through our engine over the example resources as
//! raw JSON, as the server evaluates them.
//!
//! In the normal test run it fails if a case listed in `fhirpath-passing.txt`
//! (the cases that passed when the list was last written) no longer passes, if
//! the suite is not read whole (935 cases), or if a skipped case has no reason.
//! `cargo xtask conformance fhirpath` runs it with `FHIRPATH_CONFORMANCE=report`
//! to print passed, failed and skipped per group and, last, one JSON line;
//! `FHIRPATH_CONFORMANCE=write` also rewrites the list of passing cases.

// The report is this test's output, read by `cargo xtask conformance fhirpath`.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use shared::date::Date;
use shared::fhirpath::{Env, Node, parse_full as parse};
use shared::json::Json;

/// One test case of the suite.
struct Case {
    group: String,
    name: String,
    input: Option<String>,
    expression: String,
    /// `syntax`, `semantic` or `execution`: the expression must be refused.
    invalid: Option<String>,
    /// `predicate="true"`: the result is taken as `exists()`.
    predicate: bool,
    /// Expected values: type (may be empty) and text.
    outputs: Vec<(String, String)>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/fhirpath")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the start tag `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The suite's cases, comments left out. The file's shape is fixed and simple
/// (groups of tests, each an expression and outputs), so a small reader does.
fn cases(xml: &str) -> Vec<Case> {
    let mut text = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find("<!--") {
        text.push_str(&rest[..at]);
        rest = rest[at..]
            .find("-->")
            .map_or("", |end| &rest[at + end + 3..]);
    }
    text.push_str(rest);
    let mut out = Vec::new();
    let mut group = String::new();
    let mut at = 0;
    while let Some(open) = text[at..].find('<').map(|i| i + at) {
        let close = text[open..].find('>').map_or(text.len(), |i| i + open);
        let tag = &text[open..close];
        at = close;
        if tag.starts_with("<group ") {
            group = attribute(tag, "name").unwrap_or_default();
        } else if tag.starts_with("<test ") {
            let end = text[close..]
                .find("</test>")
                .map_or(text.len(), |i| i + close);
            let body = &text[close + 1..end];
            at = end;
            let mut case = Case {
                group: group.clone(),
                name: attribute(tag, "name").unwrap_or_default(),
                input: attribute(tag, "inputfile"),
                expression: String::new(),
                invalid: None,
                predicate: attribute(tag, "predicate").as_deref() == Some("true"),
                outputs: Vec::new(),
            };
            let mut inner = 0;
            while let Some(open) = body[inner..].find('<').map(|i| i + inner) {
                let close = body[open..].find('>').map_or(body.len(), |i| i + open);
                let tag = &body[open..close];
                inner = close;
                for element in ["expression", "output"] {
                    if tag.starts_with(&format!("<{element}")) && !tag.ends_with('/') {
                        let end_tag = format!("</{element}>");
                        let end = body[close..]
                            .find(&end_tag)
                            .map_or(body.len(), |i| i + close);
                        let value = unescape(&body[close + 1..end]);
                        if element == "expression" {
                            case.expression = value;
                            case.invalid = attribute(tag, "invalid");
                        } else {
                            case.outputs
                                .push((attribute(tag, "type").unwrap_or_default(), value));
                        }
                        inner = end;
                    }
                }
            }
            out.push(case);
        }
    }
    out
}

fn decimal(text: &str) -> Option<f64> {
    shared::float::parse_f64(text.trim())
}

/// Whether `got` is the expected output `(kind, text)`.
fn same(got: &Node<'_>, kind: &str, text: &str) -> bool {
    let text = text.trim();
    let shown = shared::fhirpath::display(got);
    match kind {
        "decimal" | "integer" => match shared::fhirpath::number_of(got) {
            Some(x) => decimal(text).is_some_and(|y| (x - y).abs() < 1e-9),
            None => false,
        },
        "boolean" => matches!(got, Node::Bool(b) if b.to_string() == text),
        "date" | "dateTime" | "time" => {
            shown.as_deref() == Some(text.trim_start_matches('@').trim_start_matches('T'))
        }
        "Quantity" => shown.as_deref() == Some(text),
        // Untyped: the same text, or the same number (`1.58650000`).
        _ => {
            let text = text.trim_start_matches('@').trim_start_matches('T');
            shown.as_deref() == Some(text)
                || (decimal(text).is_some()
                    && shared::fhirpath::number_of(got)
                        .zip(decimal(text))
                        .is_some_and(|(x, y)| (x - y).abs() < 1e-9))
                || matches!((got, text.split_once(' ')), (Node::Qty(v, u), Some((n, unit)))
                    if decimal(n).is_some_and(|n| (n - v).abs() < 1e-9) && format!("'{u}'") == unit)
        }
    }
}

enum Outcome {
    Pass,
    Fail(String),
}

fn run(case: &Case, resources: &BTreeMap<String, Json>) -> Outcome {
    let parsed = parse(&case.expression);
    let empty = Json::Object(Vec::new());
    let resource = match &case.input {
        Some(file) => match resources.get(file) {
            Some(r) => r,
            None => return Outcome::Fail(format!("input {file} not read")),
        },
        None => &empty,
    };
    let mut env = Env::json(resource, Date::new(2026, 1, 1).ok());
    env.now = Some("2026-01-01T10:00:00.000+00:00");
    let root = [Node::Json(resource)];
    let result = parsed
        .map_err(|e| format!("parse: {}", e.0))
        .and_then(|e| env.eval(&e, &root).map_err(|e| format!("eval: {e:?}")));
    match (&case.invalid, result) {
        (Some(_), Err(_)) => Outcome::Pass,
        (Some(kind), Ok(got)) => Outcome::Fail(format!("expected a {kind} error, got {got:?}")),
        (None, Err(e)) => Outcome::Fail(e),
        (None, Ok(mut got)) => {
            if case.predicate {
                got = vec![Node::Bool(!got.is_empty())];
            }
            let ok = got.len() == case.outputs.len()
                && got
                    .iter()
                    .zip(&case.outputs)
                    .all(|(g, (kind, text))| same(g, kind, text));
            if ok {
                Outcome::Pass
            } else {
                let got: Vec<_> = got.iter().map(shared::fhirpath::display).collect();
                Outcome::Fail(format!("got {got:?}, expected {:?}", case.outputs))
            }
        }
    }
}

/// `name reason…` lines; `#` starts a comment.
fn listed(file: &str) -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(file);
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_official_suite_does_not_regress() {
    let dir = fixtures();
    let xml = std::fs::read_to_string(dir.join("tests-fhir-r4.xml"))
        .expect("the FHIRPath suite is at ../shared/fixtures/fhirpath/ from the repository root");
    let cases = cases(&xml);
    assert_eq!(cases.len(), 935, "the whole suite is read");
    let mut resources = BTreeMap::new();
    for case in &cases {
        if let Some(file) = &case.input
            && !resources.contains_key(file)
        {
            let json_name = file.replace(".xml", ".json");
            if let Some(json) = std::fs::read_to_string(dir.join("r4").join(&json_name))
                .ok()
                .and_then(|t| Json::parse(&t))
            {
                resources.insert(file.clone(), json);
            }
        }
    }
    let skips: BTreeMap<String, String> = listed("fhirpath-skips.txt").into_iter().collect();
    for (name, reason) in &skips {
        assert!(!reason.is_empty(), "skip {name} gives no reason");
        assert!(
            cases.iter().any(|c| &c.name == name),
            "skip {name} is not a case of the suite"
        );
    }
    let mode = std::env::var("FHIRPATH_CONFORMANCE").unwrap_or_default();
    // group → (passed, failed, skipped)
    let mut groups: Vec<(String, [usize; 3])> = Vec::new();
    let mut passing = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let slot = match groups.iter().position(|(g, _)| *g == case.group) {
            Some(i) => i,
            None => {
                groups.push((case.group.clone(), [0; 3]));
                groups.len() - 1
            }
        };
        if skips.contains_key(&case.name) {
            groups[slot].1[2] += 1;
            continue;
        }
        match run(case, &resources) {
            Outcome::Pass => {
                groups[slot].1[0] += 1;
                passing.push(case.name.clone());
            }
            Outcome::Fail(why) => {
                groups[slot].1[1] += 1;
                failures.push(format!("{} {}: {why}", case.name, case.expression));
            }
        }
    }
    let [passed, failed, skipped] = groups
        .iter()
        .fold([0; 3], |t, (_, c)| [t[0] + c[0], t[1] + c[1], t[2] + c[2]]);
    if mode == "report" || mode == "write" {
        println!();
        println!(
            "{:<40} {:>6} {:>6} {:>7}",
            "group", "passed", "failed", "skipped"
        );
        for (group, [p, f, s]) in &groups {
            println!("{group:<40} {p:>6} {f:>6} {s:>7}");
        }
        if std::env::var("FHIRPATH_CONFORMANCE_FAILURES").is_ok() {
            for f in &failures {
                println!("FAIL {f}");
            }
        }
    }
    if mode == "write" {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fhirpath-passing.txt");
        let text = format!(
            "# Cases of the FHIRPath suite that pass: a test fails if one stops passing.\n\
             # Rewritten by FHIRPATH_CONFORMANCE=write (cargo xtask conformance fhirpath --write).\n{}\n",
            passing.join("\n")
        );
        std::fs::write(path, text).expect("write the passing list");
    }
    let required = listed("fhirpath-passing.txt");
    let regressed: Vec<&String> = required
        .iter()
        .filter(|(name, _)| !passing.contains(name))
        .map(|(name, _)| {
            failures
                .iter()
                .find(|f| f.starts_with(&format!("{name} ")))
                .unwrap_or(name)
        })
        .collect();
    if mode == "report" || mode == "write" {
        println!(
            "{{\"total\": {}, \"passed\": {passed}, \"failed\": {failed}, \"skipped\": {skipped}}}",
            cases.len()
        );
    }
    assert!(
        regressed.is_empty(),
        "cases that passed before now fail:\n{}",
        regressed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
