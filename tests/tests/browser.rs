//! Journeys in a real browser (headless Chromium at phone size) against the real
//! server serving the release build of the app.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use shared::answers::AnswerProblem;
use shared::i18n::{EN, STAFF_EN};
use tests::{Browser, PHONE, Server};

const TAB: &str = "\u{E004}";

/// The registration form's inputs (Intake's own `Questionnaire/registration`).
const FAMILY: &str = "#q-name_0__family";
const GIVEN: &str = "#q-name_0__given";
const BIRTH_DATE: &str = "#q-birth-date";
const EMAIL: &str = "#q-email";
const PHONE_NUMBER: &str = "#q-phone";
const SUBMIT: &str = "form.questionnaire button[type=submit]";

/// The Patients the clinic's store holds with this family name.
async fn patients_named(
    server: &Server,
    browser: &Browser,
    family: &str,
) -> Vec<serde_json::Value> {
    let token = &server.token;
    let bundle = browser
        .js(&format!(
            "return fetch('/fhir/Patient?family={family}', \
             {{headers: {{Authorization: 'Bearer {token}'}}}}).then(r => r.json());"
        ))
        .await;
    bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_patient_registers_on_their_phone_and_the_clinic_has_their_chart() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/intake", server.base), FAMILY)
        .await;
    browser.record_requests().await;

    browser.type_into(FAMILY, "Doe").await;
    browser.type_into(GIVEN, "Jane").await;
    browser.type_into(EMAIL, &format!("jane@{TAB}")).await;

    // The error appears as the patient leaves the field, with no request made.
    let expected = (EN.answer_problem)(&AnswerProblem::PatternMismatch);
    let error = browser
        .wait_for_text("#q-email-error", |t| t.contains(&expected))
        .await;
    assert!(error.contains(&expected), "{error}");
    // ...with the form's example of the format (its entryFormat).
    assert!(error.contains("name@example.com"), "{error}");
    assert_eq!(browser.sent().await, Vec::new());
    // ...and it is tied to the input for screen readers, and announced.
    assert_eq!(
        browser.attr(EMAIL, "aria-invalid").await.as_deref(),
        Some("true")
    );
    let described_by = browser.attr(EMAIL, "aria-describedby").await;
    assert!(
        described_by
            .unwrap_or_default()
            .split(' ')
            .any(|id| id == "q-email-error"),
    );
    assert_eq!(
        browser.attr("#q-email-error", "aria-live").await.as_deref(),
        Some("polite")
    );
    browser.scroll_to(PHONE_NUMBER).await;
    browser.screenshot("intake-error").await;

    // Fixing it clears the error, still without a request.
    browser.type_into(EMAIL, "example.org").await;
    browser.wait_for_text("#q-email-error", str::is_empty).await;
    assert_eq!(browser.attr(EMAIL, "aria-invalid").await, None);

    browser.type_into(BIRTH_DATE, "03271980").await;
    browser.click("label[for=q-gender-0]").await;
    browser.type_into(PHONE_NUMBER, "+1 617 555 0100").await;
    assert_eq!(browser.sent().await, Vec::new());

    browser.click(SUBMIT).await;
    let thanks = browser
        .wait_for_text("#intake-sent", |t| t.contains(EN.sent_title))
        .await;
    assert!(thanks.contains(EN.sent_phone), "{thanks}");
    // The form gives way to the thank-you, which has the focus.
    assert_eq!(
        browser
            .attr("form.questionnaire", "hidden")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.js("return document.activeElement.tagName;").await,
        "H2"
    );
    let sent = browser.sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].path.as_str(), sent[0].status),
        ("/api/intakes", 201)
    );
    browser.screenshot("intake-sent").await;

    // One chart, with what the patient typed.
    let patients = patients_named(&server, &browser, "Doe").await;
    assert_eq!(patients.len(), 1, "{patients:?}");
    let patient = &patients[0];
    assert_eq!(patient["name"][0]["given"][0], "Jane");
    assert_eq!(patient["birthDate"], "1980-03-27");
    assert_eq!(patient["gender"], "female");
    let telecom = patient["telecom"].to_string();
    assert!(
        telecom.contains("+1 617 555 0100") && telecom.contains("jane@example.org"),
        "{telecom}"
    );
    // Nothing of it is left on the phone.
    assert_eq!(
        browser.js("return localStorage.length;").await,
        serde_json::json!(0)
    );
    browser.close().await;
}

#[tokio::test]
async fn a_send_that_gets_no_answer_is_retried_under_the_same_key() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    // The first send is lost on its way back (the clinic got it: the network
    // dropped the answer), so the patient sees "could not reach" and sends again.
    let first = register(&browser, &server, ("Roe", "Rita", "11021975", 0), true).await;
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0], first[1]);
    assert_eq!(first[0].len(), 32, "128 bits, in hex: {first:?}");
    assert_eq!(patients_named(&server, &browser, "Roe").await.len(), 1);

    // A new patient on the same phone gets a new key.
    let next = register(&browser, &server, ("Poe", "Pia", "01011990", 1), false).await;
    assert_eq!(next.len(), 1);
    assert_ne!(next[0], first[0]);
    assert_eq!(patients_named(&server, &browser, "Poe").await.len(), 1);
    browser.close().await;
}

/// Opens `/intake`, registers (family, given, birth date as typed, gender option)
/// and waits for the thank-you; returns the `Idempotency-Key` of each send. If
/// `lose_first`, the first answer is lost on its way back and the patient sends again.
async fn register(
    browser: &Browser,
    server: &Server,
    (family, given, birth, gender): (&str, &str, &str, usize),
    lose_first: bool,
) -> Vec<String> {
    browser
        .open(&format!("{}/intake", server.base), FAMILY)
        .await;
    browser
        .client
        .execute(
            "window.__keys = [];
             const original = window.fetch;
             let lose = arguments[0];
             window.fetch = async (input, init) => {
                 const request = new Request(input, init);
                 if (new URL(request.url).pathname !== '/api/intakes') return original(request);
                 window.__keys.push(request.headers.get('idempotency-key'));
                 const response = await original(request);
                 if (lose) { lose = false; throw new TypeError('network'); }
                 return response;
             };",
            vec![lose_first.into()],
        )
        .await
        .unwrap();
    browser.type_into(FAMILY, family).await;
    browser.type_into(GIVEN, given).await;
    browser.type_into(BIRTH_DATE, birth).await;
    browser
        .click(&format!("label[for=q-gender-{gender}]"))
        .await;
    browser.click(SUBMIT).await;
    if lose_first {
        browser
            .wait_for_text("#server-answer", |t| t.contains(EN.server_unreachable))
            .await;
        browser.click(SUBMIT).await;
    }
    browser
        .wait_for_text("#intake-sent", |t| t.contains(EN.sent_title))
        .await;
    serde_json::from_value(browser.js("return window.__keys;").await).unwrap()
}

#[tokio::test]
async fn sending_an_incomplete_form_marks_every_problem_and_sends_nothing() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/intake", server.base), FAMILY)
        .await;
    browser.record_requests().await;
    browser.type_into(EMAIL, "jane@").await;

    browser.click(SUBMIT).await;
    browser
        .wait_for_js("return !document.querySelector('#form-problems').hidden || null;")
        .await;
    assert_eq!(
        browser.attr("#form-problems", "role").await.as_deref(),
        Some("alert")
    );
    let required = (EN.answer_problem)(&AnswerProblem::Required);
    for id in [
        "q-name_0__family",
        "q-name_0__given",
        "q-birth-date",
        "q-gender",
    ] {
        let error = browser.text(&format!("#{id}-error")).await;
        assert!(error.contains(&required), "{id}: {error}");
    }
    let pattern = (EN.answer_problem)(&AnswerProblem::PatternMismatch);
    assert!(browser.text("#q-email-error").await.contains(&pattern));
    // The optional questions left empty are not marked.
    assert_eq!(browser.text("#q-phone-error").await, "");
    assert_eq!(browser.sent().await, Vec::new());
    browser.close().await;
}

#[tokio::test]
async fn every_screen_renders_on_a_phone_with_large_touch_targets() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let code = server
        .add_kiosk("Front desk 1", &["registration"], 60, 20)
        .await;
    browser.enrol_kiosk(&server.base, &code, FAMILY).await;
    let screens = [
        ("/", EN.landing_title, "landing", "main h1"),
        ("/intake", EN.intake_title, "intake", "form.questionnaire"),
        ("/kiosk", EN.kiosk_title, "kiosk", "form.questionnaire"),
        ("/staff", STAFF_EN.signin_title, "staff", "#signin"),
        ("/no/such/page", EN.not_found_title, "not-found", "main h1"),
    ];
    for (path, title, name, ready) in screens {
        browser.open(&format!("{}{path}", server.base), ready).await;
        assert_eq!(browser.text("main h1").await, title, "{path}");
        // Phone-first: nothing wider than the screen...
        let width = browser
            .js("return document.documentElement.scrollWidth;")
            .await;
        assert!(
            width.as_u64().is_some_and(|w| w <= u64::from(PHONE.0)),
            "{path}: {width} px wide"
        );
        // ...and every control at least 44 px tall.
        let small = browser
            .js("return [...document.querySelectorAll('input:not([type=radio]), button, .choice, .button, header a')]
                   .filter(e => e.getClientRects().length > 0 && e.getBoundingClientRect().height < 44)
                   .map(e => e.id || e.className || e.textContent);")
            .await;
        assert_eq!(small, serde_json::json!([]), "{path}: small touch targets");
        browser.screenshot(name).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn the_app_switches_to_spanish_and_remembers_it() {
    use shared::i18n::ES;
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser.open(&format!("{}/", server.base), "main h1").await;
    assert_eq!(browser.text("main h1").await, EN.landing_title);
    browser.click(".language-switch").await;
    browser
        .wait_for_text("main h1", |t| t == ES.landing_title)
        .await;
    assert_eq!(
        browser.js("return document.documentElement.lang;").await,
        "es"
    );

    // Another page, later: still Spanish, the form's own text and messages included.
    browser
        .open(&format!("{}/intake", server.base), FAMILY)
        .await;
    assert_eq!(browser.text("main h1").await, ES.intake_title);
    let label = browser.text("label[for=q-name_0__family]").await;
    assert!(label.starts_with("Apellido(s)"), "{label}");
    browser.type_into(EMAIL, &format!("jane@{TAB}")).await;
    let expected = (ES.answer_problem)(&AnswerProblem::PatternMismatch);
    browser
        .wait_for_text("#q-email-error", |t| t.contains(&expected))
        .await;
    browser.screenshot("intake-es").await;

    browser.click(".language-switch").await;
    browser
        .wait_for_text("main h1", |t| t == EN.intake_title)
        .await;
    browser.close().await;
}

#[tokio::test]
async fn switching_language_and_the_skip_link_keep_every_answer_and_the_focus() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/intake", server.base), FAMILY)
        .await;
    browser.type_into(FAMILY, "Doe").await;
    browser.type_into(GIVEN, "Jane").await;
    browser.type_into(EMAIL, "jane@example.org").await;
    let state = "return [document.documentElement.lang,
                   ...['#q-name_0__family', '#q-name_0__given', '#q-email']
                     .map(css => document.querySelector(css).value),
                   document.querySelector('#resume-offer').hidden];";
    for lang in ["es", "en"] {
        browser.click("#language-switch").await;
        browser
            .wait_for_js(&format!(
                "return document.documentElement.lang === '{lang}'
                   && document.querySelector('#q-email') !== null
                   && document.activeElement.id === 'language-switch' || null;"
            ))
            .await;
        assert_eq!(
            browser.js(state).await,
            serde_json::json!([lang, "Doe", "Jane", "jane@example.org", true]),
            "{lang}"
        );
    }
    // The skip link moves the focus to the page's content, and nothing else.
    browser
        .js("document.querySelector('.skip-link').focus();")
        .await;
    browser.press(&[fantoccini::key::Key::Enter]).await;
    browser
        .wait_for_js("return document.activeElement.id === 'main' || null;")
        .await;
    assert_eq!(
        browser.js(state).await,
        serde_json::json!(["en", "Doe", "Jane", "jane@example.org", true])
    );
    browser.close().await;
}
