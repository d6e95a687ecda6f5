//! A form's FHIRPath in a real browser and on the server (issue 14): a PHQ-9
//! scored with `aggregate()`, a BMI from weight and height, and an
//! `enableWhenExpression` with `iif()`, `today()` and date arithmetic. Each case
//! is answered in Chromium, what the page shows is checked, and the response it
//! sends is checked by the server's `$validate`, which evaluates the same
//! expressions itself: a score or BMI the server computes otherwise, or an item
//! it enables or hides otherwise, is an error there.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use shared::i18n::EN;
use tests::{Browser, PATIENCE, Server};

const CALCULATED: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression";
const ENABLE_WHEN: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression";
const VARIABLE: &str = "http://hl7.org/fhir/StructureDefinition/variable";
const ORDINAL: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";

fn expression(url: &str, text: &str) -> Value {
    json!({"url": url, "valueExpression": {"language": "text/fhirpath", "expression": text}})
}

fn variable(name: &str, text: &str) -> Value {
    json!({"url": VARIABLE, "valueExpression": {"name": name, "language": "text/fhirpath", "expression": text}})
}

/// PHQ-9 as SDC scores it: nine questions whose options carry ordinal values,
/// the total an `aggregate()` of the answers' `ordinal()`s.
fn phq9(id: &str) -> String {
    let options: Vec<Value> = [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]
    .iter()
    .enumerate()
    .map(|(n, display)| {
        json!({"valueCoding": {"system": "http://loinc.org", "code": format!("LA{n}"), "display": display},
               "extension": [{"url": ORDINAL, "valueDecimal": n}]})
    })
    .collect();
    let mut items: Vec<Value> = (1..=9)
        .map(|n| json!({"linkId": format!("q{n}"), "type": "choice", "text": format!("Question {n}"), "answerOption": options}))
        .collect();
    items.push(json!({
        "linkId": "total", "type": "integer", "text": "Total score", "readOnly": true,
        "extension": [expression(CALCULATED,
            "%resource.item.where(linkId.startsWith('q')).answer.value.ordinal().aggregate($this + $total, 0)")]
    }));
    json!({"resourceType": "Questionnaire", "id": id, "status": "active", "title": "PHQ-9", "item": items})
        .to_string()
}

/// Weight in kg and height in cm; the BMI from form variables, rounded.
fn bmi(id: &str) -> String {
    json!({
        "resourceType": "Questionnaire", "id": id, "status": "active", "title": "BMI",
        "extension": [
            variable("w", "%resource.item.where(linkId = 'weight').answer.value"),
            variable("h", "%resource.item.where(linkId = 'height').answer.value / 100")
        ],
        "item": [
            {"linkId": "weight", "type": "decimal", "text": "Weight (kg)"},
            {"linkId": "height", "type": "decimal", "text": "Height (cm)"},
            {"linkId": "bmi", "type": "decimal", "text": "BMI", "readOnly": true,
             "extension": [expression(CALCULATED,
                "iif(%w.exists() and %h.exists(), (%w / %h.power(2)).round(1), {})")]}
        ]
    })
    .to_string()
}

/// A guardian's name, asked (and then required) only of a minor: an
/// `enableWhenExpression` with `iif()`, `today()` and a calendar duration.
fn guardian(id: &str) -> String {
    json!({
        "resourceType": "Questionnaire", "id": id, "status": "active", "title": "Guardian",
        "item": [
            {"linkId": "dob", "type": "date", "text": "Date of birth"},
            {"linkId": "guardian", "type": "string", "text": "Guardian's name", "required": true,
             "extension": [expression(ENABLE_WHEN,
                "iif(%resource.item.where(linkId = 'dob').answer.value.exists(), \
                 %resource.item.where(linkId = 'dob').answer.value > today() - 18 years, false)")]}
        ]
    })
    .to_string()
}

/// Opens the form's preview with requests recorded.
async fn open(server: &Server, browser: &Browser, id: &str, json: &str, first: &str) {
    server.import(id, json).await;
    browser
        .open(&format!("{}/preview/{id}", server.base), first)
        .await;
    browser.record_requests().await;
}

/// What the page shows for the calculated item `css`, once it equals
/// `expected` (as a number); fails after [`PATIENCE`] with what it showed.
async fn wait_for_number(browser: &Browser, css: &str, expected: Option<f64>) {
    let deadline = std::time::Instant::now() + PATIENCE;
    let script = format!(
        "const e = document.querySelector('{css}');
         return e ? (e.value !== undefined && e.tagName !== 'OUTPUT' ? e.value : e.textContent) : null;"
    );
    loop {
        let shown = browser.js(&script).await;
        let text = shown.as_str().unwrap_or_default().trim().to_owned();
        if text.parse::<f64>().ok() == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} shows {shown} instead of {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends the form and returns the response the server's `$validate` accepted
/// with no error or warning.
async fn sent_and_valid(browser: &Browser) -> Value {
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| !t.is_empty())
        .await;
    let sent = browser.sent().await;
    let validate: Vec<_> = sent
        .iter()
        .filter(|s| s.path == "/fhir/QuestionnaireResponse/$validate")
        .collect();
    assert_eq!(validate.len(), 1, "{sent:?}");
    assert_eq!(validate[0].status, 200, "{:?}", validate[0].response);
    let outcome = validate[0].response.clone().unwrap();
    let problems: Vec<&Value> = outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["severity"] != "information")
        .collect();
    assert!(problems.is_empty(), "the server disagrees: {problems:?}");
    assert_eq!(browser.text("#server-answer").await, EN.form_server_valid);
    validate[0].request.clone().unwrap()
}

/// The answers to the top-level item `link_id` in a response.
fn answers(response: &Value, link_id: &str) -> Vec<Value> {
    response["item"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["linkId"] == link_id)
        .flat_map(|i| i["answer"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn number(answer: &Value) -> Option<f64> {
    answer["valueInteger"]
        .as_f64()
        .or_else(|| answer["valueDecimal"].as_f64())
}

#[tokio::test]
async fn phq9_scored_with_aggregate_shows_the_score_the_server_computes() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    // The options chosen (0 to 3, none for unanswered) and the score.
    let cases: [([Option<u8>; 9], u32); 3] = [
        (
            [
                Some(1),
                Some(2),
                Some(0),
                Some(3),
                Some(1),
                Some(2),
                Some(0),
                Some(1),
                Some(0),
            ],
            10,
        ),
        ([Some(3); 9], 27),
        (
            [Some(2), None, None, None, Some(1), None, None, None, None],
            3,
        ),
    ];
    for (n, (chosen, score)) in cases.iter().enumerate() {
        let id = format!("phq9-aggregate-{n}");
        open(&server, &browser, &id, &phq9(&id), "#q-q1-0").await;
        wait_for_number(&browser, "#q-total", Some(0.0)).await;
        for (q, choice) in chosen.iter().enumerate() {
            if let Some(choice) = choice {
                let label = format!("label[for=q-q{}-{choice}]", q + 1);
                browser.scroll_to(&label).await;
                browser.click(&label).await;
            }
        }
        wait_for_number(&browser, "#q-total", Some(f64::from(*score))).await;
        let response = sent_and_valid(&browser).await;
        let total = answers(&response, "total");
        assert_eq!(total.len(), 1, "{response}");
        assert_eq!(number(&total[0]), Some(f64::from(*score)), "{response}");
    }
    browser.close().await;
}

#[tokio::test]
async fn a_bmi_from_weight_and_height_is_shown_and_the_server_agrees() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    // Weight (kg), height (cm), the BMI rounded to one place.
    let cases = [
        ("70", "175", 22.9),
        ("95.5", "180", 29.5),
        ("50", "160", 19.5),
    ];
    for (n, (weight, height, expected)) in cases.into_iter().enumerate() {
        let id = format!("bmi-{n}");
        open(&server, &browser, &id, &bmi(&id), "#q-weight").await;
        browser.type_into("#q-weight", weight).await;
        // Weight alone gives no BMI.
        wait_for_number(&browser, "#q-bmi", None).await;
        browser.type_into("#q-height", height).await;
        wait_for_number(&browser, "#q-bmi", Some(expected)).await;
        let response = sent_and_valid(&browser).await;
        let bmi = answers(&response, "bmi");
        assert_eq!(bmi.len(), 1, "{response}");
        assert_eq!(
            bmi[0]["valueDecimal"].as_f64(),
            Some(expected),
            "{response}"
        );
    }
    browser.close().await;
}

#[tokio::test]
async fn enable_when_expression_with_iif_and_today_shows_the_item_only_to_a_minor() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952;
    let shown = "return document.getElementById('q-guardian') !== null;";
    // A birth date, and whether the guardian's name is asked. Far from the
    // 18th birthday, so the browser's and the server's clocks agree on it.
    let cases = [
        (None, false),
        (Some(format!("{}-06-15", year - 40)), false),
        (Some(format!("{}-06-15", year - 10)), true),
    ];
    for (n, (dob, asked)) in cases.iter().enumerate() {
        let id = format!("guardian-{n}");
        open(&server, &browser, &id, &guardian(&id), "#q-dob").await;
        assert_eq!(browser.js(shown).await, false);
        if let Some(dob) = dob {
            browser
                .js(&format!(
                    "const e = document.getElementById('q-dob'); e.value = '{dob}';
                     e.dispatchEvent(new Event('input', {{bubbles: true}}));
                     e.dispatchEvent(new Event('change', {{bubbles: true}}));"
                ))
                .await;
        }
        if *asked {
            browser
                .wait_for_text("label[for=q-guardian]", |t| t.contains("Guardian"))
                .await;
            browser.type_into("#q-guardian", "Ann Doe").await;
        } else {
            // Give the page time to show it, were it going to.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert_eq!(browser.js(shown).await, false, "{dob:?}");
        }
        let response = sent_and_valid(&browser).await;
        let dob_sent: Vec<Value> = dob.iter().map(|d| json!({"valueDate": d})).collect();
        assert_eq!(answers(&response, "dob"), dob_sent, "{response}");
        let guardian_sent = if *asked {
            vec![json!({"valueString": "Ann Doe"})]
        } else {
            vec![]
        };
        assert_eq!(answers(&response, "guardian"), guardian_sent, "{response}");
    }
    browser.close().await;
}
