//! Issue 21's fuzz target: the QuestionnaireResponse reader and the answers check,
//! fed valid responses mutated with arbitrary bytes, for `FUZZ_SECONDS` (default
//! 60). Not part of CI: `cargo xtask fuzz [SECONDS]` runs it (`--ignored`).
//! A panic anywhere fails it, with proptest's smallest input that panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// The run's report is its output.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use shared::answers;
use shared::form::{Constraints, Form, Item, ItemKind, Value};
use shared::response::QuestionnaireResponse;

/// A form with an item of every kind the answers check reads text of.
fn form() -> Form {
    let mut code = Item::new("code", ItemKind::String);
    code.constraints = Constraints {
        regex: Some("^[A-Z]{2}[0-9]{4}$".into()),
        max_length: Some(20),
        ..Constraints::default()
    };
    let mut age = Item::new("age", ItemKind::Integer);
    age.constraints.min_value = Some(Value::Integer(0));
    age.constraints.max_value = Some(Value::Integer(130));
    let mut group = Item::new("group", ItemKind::Group);
    group.repeats = true;
    group.items = vec![
        Item::new("born", ItemKind::Date),
        Item::new("when", ItemKind::DateTime),
        Item::new("at", ItemKind::Time),
        Item::new("weight", ItemKind::Decimal),
        Item::new("note", ItemKind::Text),
        Item::new("ok", ItemKind::Boolean),
    ];
    let json = serde_json::json!({"id": "fuzz", "title": "Fuzz", "items": []});
    let mut form: Form = serde_json::from_value(json).unwrap();
    form.items = vec![code, age, group];
    form
}

/// Valid responses to [`form`], as a client sends them.
const SEEDS: &[&str] = &[
    r#"{"resourceType":"QuestionnaireResponse","questionnaire":"Questionnaire/fuzz","status":"completed","item":[{"linkId":"code","answer":[{"valueString":"AB1234"}]},{"linkId":"age","answer":[{"valueInteger":42}]},{"linkId":"group","item":[{"linkId":"born","answer":[{"valueDate":"1980-02-29"}]},{"linkId":"when","answer":[{"valueDateTime":"2026-11-30T09:30:00+03:00"}]},{"linkId":"at","answer":[{"valueTime":"13:30:00.5"}]},{"linkId":"weight","answer":[{"valueDecimal":70.25}]},{"linkId":"note","answer":[{"valueString":"Wanjiru é २०२०"}]},{"linkId":"ok","answer":[{"valueBoolean":true}]}]}]}"#,
    r#"{"resourceType":"QuestionnaireResponse","status":"in-progress","item":[{"linkId":"group","item":[{"linkId":"born","answer":[{"valueDate":"2020"}]}]},{"linkId":"group","item":[{"linkId":"weight","answer":[{"valueDecimal":1e3}]},{"linkId":"note","answer":[{"valueCoding":{"system":"s","code":"c"}}]}]}]}"#,
];

/// A seed with bytes overwritten, inserted and removed at arbitrary places.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        any::<prop::sample::Index>(),
        0_u8..3,
        any::<u8>(),
        any::<char>(),
    );
    (
        prop::sample::select(SEEDS),
        prop::collection::vec(edit, 0..12),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for (at, kind, byte, c) in edits {
                let i = at.index(bytes.len().max(1)).min(bytes.len());
                match kind {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => {
                        let mut buf = [0_u8; 4];
                        bytes.splice(i..i, c.encode_utf8(&mut buf).bytes());
                    }
                    _ if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => bytes.push(byte),
                }
            }
            bytes
        })
}

#[test]
#[ignore = "a fuzz run: cargo xtask fuzz"]
fn fuzz_the_response_reader_and_the_answers_check() {
    use proptest::strategy::ValueTree as _;
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let form = form();
    // One runner: its random source moves on with every input drawn.
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = mutated();
    let (mut inputs, mut parsed) = (0_u64, 0_u64);
    while Instant::now() < deadline {
        for _ in 0..1_000 {
            let bytes = strategy.new_tree(&mut runner).unwrap().current();
            inputs += 1;
            let checked = std::panic::catch_unwind(|| {
                let mut read = false;
                if let Ok(response) = serde_json::from_slice::<QuestionnaireResponse>(&bytes) {
                    read = true;
                    let _ = answers::validate(&form, &response);
                    let _ = answers::evaluate(&form, &response);
                }
                let _ = shared::json::Json::parse(&String::from_utf8_lossy(&bytes));
                read
            });
            match checked {
                Ok(read) => parsed += u64::from(read),
                Err(_) => panic!(
                    "panicked on input {inputs}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
    }
    println!(
        "fuzz: {inputs} inputs in {seconds} s, {parsed} read as a QuestionnaireResponse and checked, no panic"
    );
}
