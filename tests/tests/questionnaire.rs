//! Questionnaires in a real browser at phone size: every fixture renders, and a
//! form with a branch and a repeating group is answered, checked as it goes, and
//! accepted by the server; so are two real forms (Medplum's intake form, PHQ-9
//! with its score).

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use shared::i18n::EN;
use tests::{Browser, PATIENCE, PHONE, Server, fixture_questionnaires};

const BACKSPACE: &str = "\u{E003}";
const TAB: &str = "\u{E004}";

const BRANCHING: &str = r#"{
  "resourceType": "Questionnaire", "id": "branching", "status": "active", "title": "Smoking and family",
  "item": [
    {"linkId": "clinic", "type": "string", "text": "Clinic", "readOnly": true, "initial": [{"valueString": "Main St"}]},
    {"linkId": "phones", "type": "string", "text": "Phone numbers", "repeats": true},
    {"linkId": "card", "type": "attachment", "text": "Insurance card",
     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/maxSize", "valueDecimal": 200000}]},
    {"linkId": "smoker", "type": "boolean", "text": "Do you smoke?", "required": true},
    {"linkId": "packs", "type": "integer", "text": "Packs a day", "required": true,
     "enableWhen": [{"question": "smoker", "operator": "=", "answerBoolean": true}],
     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 10}]},
    {"linkId": "member", "type": "group", "text": "Family member", "repeats": true, "item": [
      {"linkId": "name", "type": "string", "text": "Name", "required": true},
      {"linkId": "relation", "type": "choice", "text": "Relation", "answerOption": [
        {"valueCoding": {"code": "parent", "display": "Parent"}},
        {"valueCoding": {"code": "sibling", "display": "Sibling"}}]}
    ]}
  ]
}"#;

#[tokio::test]
async fn a_form_with_a_branch_and_a_repeat_is_checked_as_answered_and_accepted_by_the_server() {
    let server = Server::start().await;
    server.import("branching", BRANCHING).await;
    let browser = Browser::start().await;
    browser
        .open(
            &format!("{}/preview/branching", server.base),
            "#q-smoker-true",
        )
        .await;
    assert_eq!(browser.text("main h1").await, "Smoking and family");
    // Initial values are filled in; a read-only one cannot be changed.
    assert_eq!(
        browser
            .js("return document.getElementById('q-clinic').value;")
            .await,
        "Main St"
    );
    assert_eq!(
        browser.attr("#q-clinic", "readonly").await.as_deref(),
        Some("true")
    );

    // A repeating question offers one more slot for each answer given.
    browser.type_into("#q-phones", "555 0100").await;
    browser.open_existing("#q-phones-1").await;
    browser.type_into("#q-phones-1", "555 0199").await;
    browser.open_existing("#q-phones-2").await;
    let slots = browser
        .js("return [...document.querySelectorAll('.repeat-answers input')].map(i => i.value);")
        .await;
    assert_eq!(slots, serde_json::json!(["555 0100", "555 0199", ""]));
    // Typing did not rebuild the input being typed in.
    assert_eq!(
        browser.js("return document.activeElement.id;").await,
        "q-phones-1"
    );

    // A photo: too large is refused at once, a small one is read and shown.
    let photos = tempfile::tempdir().unwrap();
    let big = photos.path().join("big.png");
    std::fs::write(&big, vec![0u8; 300_000]).unwrap();
    browser.type_into("#q-card", big.to_str().unwrap()).await;
    let too_large = (EN.answer_problem)(&shared::answers::AnswerProblem::FileTooLarge(200_000));
    browser
        .wait_for_text("#q-card-error", |t| t.contains(&too_large))
        .await;
    let card = tests::workspace_root().join("tests/screenshots/landing.png");
    browser.type_into("#q-card", card.to_str().unwrap()).await;
    browser.wait_for_text("#q-card-error", str::is_empty).await;
    let chosen = browser
        .wait_for_text(".attachment-chosen", |t| t.contains("landing.png"))
        .await;
    assert!(chosen.contains("kB"), "{chosen}");
    browser.open_existing("img.attachment-thumbnail").await;

    // The branch opens when its condition holds.
    let packs_shown = "return document.getElementById('q-packs') !== null;";
    assert_eq!(browser.js(packs_shown).await, false);
    browser.click("label[for=q-smoker-true]").await;
    browser
        .wait_for_text("label[for=q-packs]", |t| t.contains("Packs a day"))
        .await;

    // A wrong answer is flagged once the patient moves on, without a request.
    browser.type_into("#q-packs", &format!("12{TAB}")).await;
    let error = browser
        .wait_for_text("#q-packs-error", |t| !t.is_empty())
        .await;
    assert!(
        error.contains((EN.answer_problem)(&shared::answers::AnswerProblem::AboveMaximum).as_str()),
        "{error}"
    );
    assert_eq!(
        browser.attr("#q-packs", "aria-invalid").await.as_deref(),
        Some("true")
    );
    browser
        .type_into("#q-packs", &format!("{BACKSPACE}{BACKSPACE}1"))
        .await;
    browser.wait_for_text("#q-packs-error", str::is_empty).await;
    // Only the form itself has been fetched: every check so far ran in the browser.
    assert_eq!(browser.api_requests().await, ["/api/forms/branching"]);

    // A second family member, each instance its own.
    browser.type_into("#q-member_0__name", "Ann").await;
    browser.click("label[for=q-member_0__relation-0]").await;
    browser.click(".add-instance").await;
    browser.open_existing("#q-member_1__name").await;
    browser.type_into("#q-member_1__name", "Bob").await;
    browser.click("label[for=q-member_1__relation-1]").await;

    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    let answer = browser
        .wait_for_text("#server-answer", |t| !t.is_empty())
        .await;
    assert_eq!(answer, EN.form_server_valid);
    assert_eq!(
        browser.api_requests().await,
        [
            "/api/forms/branching",
            "/fhir/QuestionnaireResponse/$validate"
        ]
    );
    browser.scroll_to("#server-answer").await;
    browser.screenshot("preview-answered").await;

    // Switching the branch off drops its answer: the form is still valid.
    browser.click("label[for=q-smoker-false]").await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    assert_eq!(browser.js(packs_shown).await, false);
    browser.close().await;
}

#[tokio::test]
async fn a_required_question_left_empty_stops_the_form_being_sent() {
    let server = Server::start().await;
    server.import("branching", BRANCHING).await;
    let browser = Browser::start().await;
    browser
        .open(
            &format!("{}/preview/branching", server.base),
            "#q-smoker-true",
        )
        .await;
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#q-smoker-error", |t| !t.is_empty())
        .await;
    browser
        .wait_for_text("#q-member_0__name-error", |t| !t.is_empty())
        .await;
    assert_eq!(
        browser
            .js("return document.getElementById('form-problems').hidden;")
            .await,
        false
    );
    assert_eq!(browser.api_requests().await, ["/api/forms/branching"]);
    browser.close().await;
}

#[tokio::test]
async fn every_fixture_renders_at_phone_width() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    for (name, json) in fixture_questionnaires() {
        let id = server.import(&name, &json).await;
        browser
            .open(
                &format!("{}/preview/{id}", server.base),
                "form.questionnaire",
            )
            .await;
        let title: serde_json::Value = serde_json::from_str(&json).unwrap();
        let expected = title["title"]
            .as_str()
            .or(title["name"].as_str())
            .unwrap_or(&id)
            .to_owned();
        assert_eq!(browser.text("main h1").await, expected, "{name}");
        let controls = browser
            .js("return document.querySelectorAll('form.questionnaire input, form.questionnaire select, form.questionnaire textarea').length;")
            .await;
        assert!(
            controls.as_u64().is_some_and(|n| n > 0),
            "{name}: no inputs"
        );
        let width = browser
            .js("return document.documentElement.scrollWidth;")
            .await;
        assert!(
            width.as_u64().is_some_and(|w| w <= u64::from(PHONE.0)),
            "{name}: {width} px wide"
        );
        if name.contains("phq9") || name.contains("medplum") {
            browser.screenshot(&format!("preview-{name}")).await;
        }
    }
    browser.close().await;
}

const PAGED: &str = r#"{
  "resourceType": "Questionnaire", "id": "paged", "status": "active", "title": "Two pages",
  "item": [
    {"linkId": "p1", "type": "group", "text": "About you",
     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
       "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "page"}]}}],
     "item": [{"linkId": "name", "type": "string", "text": "Your name", "required": true}]},
    {"linkId": "p2", "type": "group", "text": "Health",
     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
       "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "page"}]}}],
     "item": [{"linkId": "allergies", "type": "boolean", "text": "Any allergies?"}]}
  ]
}"#;

#[tokio::test]
async fn a_paged_form_shows_one_page_at_a_time_and_stops_on_a_page_with_problems() {
    let server = Server::start().await;
    server.import("paged", PAGED).await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/preview/paged", server.base), "#q-p1_0__name")
        .await;
    let progress = |n: usize| format!("{} {n} {} 2", EN.page_label, EN.page_of);
    assert_eq!(browser.text("#page-progress").await, progress(1));
    let visible =
        |id: &'static str| format!("return document.getElementById('{id}').offsetParent !== null;");
    assert_eq!(browser.js(&visible("q-p2_0__allergies-true")).await, false);

    // Next with a required answer missing: the problem shows, the page stays.
    browser.click(".page-next").await;
    browser
        .wait_for_text("#q-p1_0__name-error", |t| !t.is_empty())
        .await;
    assert_eq!(browser.text("#page-progress").await, progress(1));

    browser.type_into("#q-p1_0__name", "Jane").await;
    browser.click(".page-next").await;
    browser
        .wait_for_text("#page-progress", |t| t == progress(2))
        .await;
    assert_eq!(browser.js(&visible("q-p2_0__allergies-true")).await, true);
    assert_eq!(
        browser.js("return document.activeElement.id;").await,
        "page-progress"
    );

    // Back keeps what was typed.
    browser.click(".page-back").await;
    browser
        .wait_for_text("#page-progress", |t| t == progress(1))
        .await;
    assert_eq!(
        browser
            .js("return document.getElementById('q-p1_0__name').value;")
            .await,
        "Jane"
    );
    browser.click(".page-next").await;
    browser.click("label[for=q-p2_0__allergies-false]").await;
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    browser.close().await;
}

/// The fixture file `name` (in `../shared/fixtures/questionnaires`), imported.
async fn import_fixture(server: &Server, file: &str) -> String {
    let (name, json) = fixture_questionnaires()
        .into_iter()
        .find(|(name, _)| name == &file.replace('_', "-"))
        .unwrap_or_else(|| panic!("no fixture {file}"));
    server.import(&name, &json).await
}

/// Every item with `link_id`, anywhere in a QuestionnaireResponse (or an item).
fn items_named<'a>(node: &'a Value, link_id: &str, out: &mut Vec<&'a Value>) {
    for item in node["item"].as_array().into_iter().flatten() {
        if item["linkId"] == link_id {
            out.push(item);
        }
        items_named(item, link_id, out);
        for answer in item["answer"].as_array().into_iter().flatten() {
            items_named(answer, link_id, out);
        }
    }
}

/// The answers to `link_id`, everywhere in the response, in order.
fn answers(response: &Value, link_id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    items_named(response, link_id, &mut items);
    items
        .iter()
        .flat_map(|i| i["answer"].as_array().cloned().unwrap_or_default())
        .map(|mut a| {
            // Only the value: nested items are checked on their own.
            if let Some(a) = a.as_object_mut() {
                a.remove("item");
            }
            a
        })
        .collect()
}

/// The response the page sent to `$validate`, after checking the server said 200
/// with no error.
async fn validated_response(browser: &Browser) -> Value {
    let sent = browser.sent().await;
    let validate: Vec<_> = sent
        .iter()
        .filter(|s| s.path == "/fhir/QuestionnaireResponse/$validate")
        .collect();
    assert_eq!(validate.len(), 1, "{sent:?}");
    let validate = validate[0];
    assert_eq!(validate.status, 200, "{:?}", validate.response);
    let outcome = validate.response.clone().unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let errors: Vec<&Value> = outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["severity"] != "information")
        .collect();
    assert!(errors.is_empty(), "the server found problems: {errors:?}");
    validate.request.clone().unwrap()
}

#[tokio::test]
async fn medplums_intake_form_is_filled_with_a_branch_and_a_repeat_and_accepted() {
    let server = Server::start().await;
    let id = import_fixture(&server, "medplum__patient-intake-questionnaire").await;
    let browser = Browser::start().await;
    browser
        .open(
            &format!("{}/preview/{id}", server.base),
            "#q-patient-demographics_0__first-name",
        )
        .await;
    browser.record_requests().await;

    // The required questions. The value sets are not expanded here, so a choice
    // from one is typed as text.
    let demographics = "#q-patient-demographics_0__";
    for (item, text) in [
        ("first-name", "Jane"),
        ("last-name", "Doe"),
        ("ssn", "000-12-3456"),
        ("gender-identity", "Female"),
    ] {
        browser
            .type_into(&format!("{demographics}{item}"), text)
            .await;
    }

    // A repeat: two emergency contacts.
    browser
        .type_into(
            "#q-emergency-contact_0__emergency-contact-first-name",
            "Ann",
        )
        .await;
    browser
        .type_into(
            "#q-emergency-contact_0__emergency-contact-phone",
            "555 0100",
        )
        .await;
    browser
        .scroll_to("#q-emergency-contact > .add-instance")
        .await;
    browser.click("#q-emergency-contact > .add-instance").await;
    browser
        .open_existing("#q-emergency-contact_1__emergency-contact-first-name")
        .await;
    browser
        .type_into(
            "#q-emergency-contact_1__emergency-contact-first-name",
            "Bob",
        )
        .await;
    browser
        .type_into(
            "#q-emergency-contact_1__emergency-contact-phone",
            "555 0199",
        )
        .await;

    // A branch: the subscriber's details are asked only when the subscriber is
    // someone other than the patient.
    let coverage = "#q-coverage-information_0__";
    browser
        .type_into(
            &format!("{coverage}insurance-provider"),
            "Organization/acme",
        )
        .await;
    browser
        .type_into(&format!("{coverage}subscriber-id"), "XZ-4471")
        .await;
    let subscriber = "q-coverage-information_0__related-person";
    assert_eq!(
        browser
            .js(&format!(
                "return document.getElementById('{subscriber}') !== null;"
            ))
            .await,
        false,
        "the subscriber's details show before the relationship is answered"
    );
    browser
        .type_into(&format!("{coverage}relationship-to-subscriber"), "Spouse")
        .await;
    let subscriber_name = format!("#{subscriber}_0__related-person-first-name");
    browser.open_existing(&subscriber_name).await;
    assert_eq!(
        browser.text(&format!("#{subscriber} > legend")).await,
        "Subscriber Information"
    );
    browser.type_into(&subscriber_name, "Sam").await;

    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    browser.scroll_to("#server-answer").await;
    browser.screenshot("preview-medplum-answered").await;

    // What the server checked holds the branch and both contacts.
    let response = validated_response(&browser).await;
    assert_eq!(response["resourceType"], "QuestionnaireResponse");
    assert_eq!(
        answers(&response, "first-name"),
        [json!({"valueString": "Jane"})]
    );
    assert_eq!(
        answers(&response, "relationship-to-subscriber"),
        [json!({"valueString": "Spouse"})]
    );
    assert_eq!(
        answers(&response, "related-person-first-name"),
        [json!({"valueString": "Sam"})]
    );
    let mut contacts = Vec::new();
    items_named(&response, "emergency-contact", &mut contacts);
    assert_eq!(contacts.len(), 2, "{response}");
    assert_eq!(
        answers(&response, "emergency-contact-first-name"),
        [json!({"valueString": "Ann"}), json!({"valueString": "Bob"})]
    );
    assert_eq!(
        answers(&response, "emergency-contact-phone"),
        [
            json!({"valueString": "555 0100"}),
            json!({"valueString": "555 0199"})
        ]
    );
    browser.close().await;
}

/// PHQ-9's nine questions, in order.
const PHQ9_QUESTIONS: [&str; 9] = [
    "/44250-9", "/44255-8", "/44259-0", "/44254-1", "/44251-7", "/44258-2", "/44252-5", "/44253-3",
    "/44260-8",
];
const PHQ9_TOTAL: &str = "#q-_44261-6";

/// Waits until the total score shows `expected`; panics with what it shows.
async fn wait_for_total(browser: &Browser, expected: u32) {
    let deadline = std::time::Instant::now() + PATIENCE;
    let script = format!(
        "const e = document.querySelector('{PHQ9_TOTAL}');
         return e ? (e.value !== undefined && e.tagName !== 'OUTPUT' ? e.value : e.textContent) : null;"
    );
    loop {
        let shown = browser.js(&script).await;
        let text = shown.as_str().unwrap_or_default().trim().to_owned();
        if text.parse::<f64>().ok() == Some(f64::from(expected)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the PHQ-9 total shows {shown} instead of {expected}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn phq9_shows_the_total_of_the_chosen_answers_and_is_accepted() {
    let server = Server::start().await;
    let id = import_fixture(&server, "lforms__phq9").await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/preview/{id}", server.base), PHQ9_TOTAL)
        .await;
    browser.record_requests().await;

    // Each option's ordinalValue is its position here (0 to 3).
    let chosen = [1u32, 2, 0, 3, 1, 2, 0, 1, 0];
    let mut sum = 0;
    for (n, (question, choice)) in PHQ9_QUESTIONS.iter().zip(chosen).enumerate() {
        let css = format!("#q-{}", question.replace('/', "_"));
        browser.scroll_to(&css).await;
        browser
            .client
            .find(fantoccini::Locator::Css(&css))
            .await
            .unwrap()
            .select_by_value(&choice.to_string())
            .await
            .unwrap();
        sum += choice;
        // The total follows the answers as they are chosen.
        if n == 1 || n == PHQ9_QUESTIONS.len() - 1 {
            wait_for_total(&browser, sum).await;
        }
    }
    assert_eq!(sum, 10);
    // Calculated, so not typed in.
    let total = browser
        .js(&format!(
            "const e = document.querySelector('{PHQ9_TOTAL}');
             return e.readOnly === true || e.tagName === 'OUTPUT';"
        ))
        .await;
    assert_eq!(total, true, "the total can be typed over");
    browser.scroll_to(PHQ9_TOTAL).await;
    browser.screenshot("preview-phq9-answered").await;

    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    let response = validated_response(&browser).await;
    assert_eq!(
        answers(&response, "/44255-8"),
        [
            json!({"valueCoding": {"system": "http://loinc.org", "code": "LA6570-1", "display": "More than half the days"}})
        ]
    );
    let score = answers(&response, "/44261-6");
    assert_eq!(score.len(), 1, "{response}");
    let value = score[0]["valueDecimal"]
        .as_f64()
        .or(score[0]["valueInteger"].as_f64());
    assert_eq!(value, Some(10.0), "{}", score[0]);
    browser.close().await;
}

const CONTROLS: &str = r#"{
  "resourceType": "Questionnaire", "id": "controls", "status": "active", "title": "Controls",
  "item": [{"linkId": "root", "type": "group", "text": "Visit", "item": [
    {"linkId": "about", "type": "group", "text": "About you",
     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
       "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "tab"}]}}],
     "item": [
       {"linkId": "pain", "type": "integer", "text": "Pain today",
        "extension": [
          {"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
           "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "slider"}]}},
          {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
          {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 10}]},
       {"linkId": "country", "type": "choice", "text": "Country of birth",
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
          "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "autocomplete"}]}}],
        "answerOption": [
          {"valueCoding": {"code": "MX", "display": "Mexico"}},
          {"valueCoding": {"code": "US", "display": "United States"}},
          {"valueCoding": {"code": "CA", "display": "Canada"}}]}]},
    {"linkId": "health", "type": "group", "text": "Health",
     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
       "valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "tab"}]}}],
     "item": [{"linkId": "allergies", "type": "string", "text": "Allergies"}]}
  ]}]
}"#;

#[tokio::test]
async fn tabs_a_slider_and_suggestions_answer_like_any_other_question() {
    use fantoccini::key::Key;
    let server = Server::start().await;
    server.import("controls", CONTROLS).await;
    let browser = Browser::start().await;
    let about = "#q-root_0__about";
    let health = "#q-root_0__health";
    browser
        .open(
            &format!("{}/preview/controls", server.base),
            &format!("{about}-tab"),
        )
        .await;
    browser.record_requests().await;
    let visible =
        |css: &str| format!("return document.querySelector('{css}').offsetParent !== null;");

    // Two tabs, the first shown; the arrow key moves to the second and shows it.
    assert_eq!(
        browser
            .attr(&format!("{about}-tab"), "aria-selected")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.js(&visible(&format!("{health}-panel"))).await,
        false
    );
    browser.click(&format!("{about}-tab")).await;
    browser.press(&[Key::Right]).await;
    assert_eq!(browser.focused_id().await, "q-root_0__health-tab");
    assert_eq!(
        browser
            .attr(&format!("{health}-tab"), "aria-selected")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(browser.js(&visible(&format!("{about}-panel"))).await, false);
    browser
        .type_into("#q-root_0__health_0__allergies", "Penicillin")
        .await;
    browser.press(&[Key::Left]).await;
    browser.click(&format!("{about}-tab")).await;
    assert_eq!(browser.js(&visible("#q-root_0__about_0__pain")).await, true);

    // The slider has no answer until it is moved, and says so.
    let slider = "#q-root_0__about_0__pain";
    assert_eq!(
        browser.text(&format!("{slider} + output")).await,
        EN.slider_unset
    );
    browser
        .js(&format!(
            "const s = document.querySelector('{slider}');
             s.value = '7'; s.dispatchEvent(new Event('input', {{bubbles: true}}));"
        ))
        .await;
    browser
        .wait_for_text(&format!("{slider} + output"), |t| t == "7")
        .await;

    // Typing an option's label (any case) chooses that option.
    let country = "#q-root_0__about_0__country";
    assert_eq!(
        browser
            .js(&format!(
                "return document.querySelectorAll('#{}-options option').length;",
                &country[1..]
            ))
            .await,
        3
    );
    browser.type_into(country, "mexico").await;

    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    let response = validated_response(&browser).await;
    assert_eq!(answers(&response, "pain"), [json!({"valueInteger": 7})]);
    assert_eq!(
        answers(&response, "country"),
        [json!({"valueCoding": {"code": "MX", "display": "Mexico"}})]
    );
    assert_eq!(
        answers(&response, "allergies"),
        [json!({"valueString": "Penicillin"})]
    );
    browser.close().await;
}

const SHORT: &str = r#"{
  "resourceType": "Questionnaire", "id": "short", "status": "active", "title": "Short", "version": "2",
  "item": [
    {"linkId": "name", "type": "string", "text": "Your name", "required": true},
    {"linkId": "smoker", "type": "boolean", "text": "Do you smoke?"}
  ]
}"#;

#[tokio::test]
async fn a_patient_who_comes_back_is_offered_the_answers_kept_on_the_phone() {
    let server = Server::start().await;
    server.import("short", SHORT).await;
    let browser = Browser::start().await;
    let url = format!("{}/preview/short", server.base);
    let kept_expr = "localStorage.getItem('intake.draft.short.2') !== null";
    let kept = &format!("return {kept_expr};");
    let kept_soon = &format!("return {kept_expr} || null;");
    browser.open(&url, "#q-name").await;
    assert_eq!(browser.js(kept).await, false);
    // Nothing to offer on a first visit.
    assert!(browser.attr("#resume-offer", "hidden").await.is_some());
    browser.type_into("#q-name", "Ana Ruiz").await;
    browser.wait_for_js(kept_soon).await;

    // Back later: offered, not imposed; taking it up brings the answers back.
    browser.open(&url, "#q-name").await;
    assert_eq!(browser.attr("#resume-offer", "hidden").await, None);
    assert_eq!(
        browser
            .js("return document.getElementById('q-name').value;")
            .await,
        ""
    );
    browser.click("#resume-continue").await;
    browser
        .wait_for_js("return document.getElementById('q-name').value === 'Ana Ruiz' || null;")
        .await;
    assert!(browser.attr("#resume-offer", "hidden").await.is_some());

    // Sent and accepted: nothing is left on the phone.
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    browser
        .wait_for_js("return localStorage.getItem('intake.draft.short.2') === null || null;")
        .await;

    // Starting again drops what was kept.
    browser.open(&url, "#q-name").await;
    browser.type_into("#q-name", "Someone else").await;
    browser.wait_for_js(kept_soon).await;
    browser.open(&url, "#q-name").await;
    browser.click("#resume-start-again").await;
    assert_eq!(browser.js(kept).await, false);
    assert!(browser.attr("#resume-offer", "hidden").await.is_some());
    browser.close().await;
}

#[tokio::test]
async fn a_form_with_spanish_translations_is_shown_in_spanish_and_records_the_same_codes() {
    let server = Server::start().await;
    let json = std::fs::read_to_string(
        tests::workspace_root().join("backend/tests/fixtures/phq-2-es.json"),
    )
    .unwrap();
    server.import("phq-2-es", &json).await;
    let browser = Browser::start().await;
    let url = format!("{}/preview/phq-2-es", server.base);
    browser.open(&url, "main h1").await;
    assert_eq!(
        browser.text("main h1").await,
        "Patient Health Questionnaire-2 (PHQ-2)"
    );
    // The patient picks Spanish: the form's own translations are used.
    browser.click(".language-switch").await;
    browser
        .wait_for_text("main h1", |t| {
            t == "Cuestionario sobre la salud del paciente-2 (PHQ-2)"
        })
        .await;
    browser.record_requests().await;
    let first = "#q-phq2_0__44250-9";
    let label = browser
        .js(&format!(
            "return [...document.querySelectorAll('{first} label, {first} option')]
                 .map(e => e.textContent).join('|');"
        ))
        .await;
    assert!(
        label.as_str().unwrap_or_default().contains("Ningún día"),
        "{label}"
    );
    browser.screenshot("preview-phq2-es").await;
    // Answered in Spanish, recorded with the form's own codes.
    browser.click(&format!("{first}-0")).await;
    browser.click("#q-phq2_0__44255-8-1").await;
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_text("#server-answer", |t| {
            t == shared::i18n::ES.form_server_valid
        })
        .await;
    let response = validated_response(&browser).await;
    let first_answer = answers(&response, "44250-9");
    assert_eq!(first_answer.len(), 1, "{response}");
    assert_eq!(first_answer[0]["valueCoding"]["code"], "LA6568-5");
    assert_eq!(first_answer[0]["valueCoding"]["display"], "Not at all");
    browser
        .js("localStorage.removeItem('intake.language');")
        .await;
    browser.close().await;
}
