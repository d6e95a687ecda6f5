//! Journeys in a real browser (headless Chromium at phone size) against the real
//! server serving the release build of the app.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use shared::i18n::EN;
use tests::{Browser, PHONE, Server};

const BACKSPACE: &str = "\u{E003}";

#[tokio::test]
async fn the_form_checks_as_the_patient_types_and_the_server_agrees() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/intake", server.base), "#family")
        .await;

    browser.type_into("#family", "Doe").await;
    browser.type_into("#given", "Jane").await;
    browser.type_into("#birth-month", "3").await;
    browser.type_into("#birth-day", "27").await;
    browser.type_into("#birth-year", "2099").await;

    // The error appears as soon as the year is complete, with no request made.
    let expected = (EN.problem)(shared::Field::BirthDate, shared::Problem::DateInFuture);
    let error = browser
        .wait_for_text("#birth-date-error", |t| t.contains(expected))
        .await;
    assert!(error.contains(expected), "{error}");
    assert_eq!(browser.api_requests().await, Vec::<String>::new());
    // ...and it is tied to the inputs for screen readers, and announced.
    assert_eq!(
        browser.attr("#birth-year", "aria-invalid").await.as_deref(),
        Some("true")
    );
    let described_by = browser
        .attr("#birth-year", "aria-describedby")
        .await
        .unwrap_or_default();
    assert!(
        described_by.split(' ').any(|id| id == "birth-date-error"),
        "{described_by}"
    );
    assert_eq!(
        browser
            .attr("#birth-date-error", "aria-live")
            .await
            .as_deref(),
        Some("polite")
    );
    browser.scroll_to("#given").await;
    browser.screenshot("intake-error").await;

    // Fixing the year clears the error, still without a request.
    browser.type_into("#birth-year", &BACKSPACE.repeat(4)).await;
    browser.type_into("#birth-year", "1980").await;
    browser
        .wait_for_text("#birth-date-error", str::is_empty)
        .await;
    assert_eq!(browser.attr("#birth-year", "aria-invalid").await, None);

    browser.click("label[for=gender-female]").await;
    browser.type_into("#phone", "+1 617 555 0100").await;
    browser.type_into("#email", "jane@example.org").await;
    assert_eq!(browser.api_requests().await, Vec::<String>::new());

    browser.click("button[type=submit]").await;
    let answer = browser
        .wait_for_text("#server-answer", |t| !t.is_empty())
        .await;
    assert_eq!(answer, EN.server_accepted);
    assert_eq!(browser.api_requests().await, ["/api/demographics/validate"]);
    browser.scroll_to("#server-answer").await;
    browser.screenshot("intake-accepted").await;
    browser.close().await;
}

#[tokio::test]
async fn sending_an_incomplete_form_lists_every_problem_and_sends_nothing() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/intake", server.base), "#family")
        .await;
    browser.type_into("#email", "jane@").await;

    browser.click("button[type=submit]").await;
    let summary = browser
        .wait_for_text(".error-summary", |t| !t.is_empty())
        .await;
    use shared::{Field as F, Problem as P};
    for (field, problem) in [
        (F::Family, P::Required),
        (F::Given, P::Required),
        (F::BirthDate, P::Required),
        (F::Gender, P::Required),
        (F::Email, P::EmailInvalid),
    ] {
        let message = (EN.problem)(field, problem);
        assert!(
            summary.contains(message),
            "{message} missing from {summary}"
        );
    }
    assert_eq!(
        browser.attr(".error-summary", "role").await.as_deref(),
        Some("alert")
    );
    // Focus moves to the summary so that it is read out.
    let focused = browser.js("return document.activeElement.className;").await;
    assert_eq!(focused, "error-summary");
    // Each entry leads to its field.
    browser.click(".error-summary a[href='#given']").await;
    assert_eq!(
        browser.js("return document.activeElement.id;").await,
        "given"
    );
    assert_eq!(browser.api_requests().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn every_screen_renders_on_a_phone_with_large_touch_targets() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let screens = [
        ("/", EN.landing_title, "landing"),
        ("/intake", EN.intake_title, "intake"),
        ("/kiosk", EN.kiosk_title, "kiosk"),
        ("/staff", EN.staff_title, "staff"),
        ("/no/such/page", EN.not_found_title, "not-found"),
    ];
    for (path, title, name) in screens {
        browser
            .open(&format!("{}{path}", server.base), "main h1")
            .await;
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
                   .filter(e => e.getBoundingClientRect().height < 44)
                   .map(e => e.id || e.className || e.textContent);")
            .await;
        assert_eq!(small, serde_json::json!([]), "{path}: small touch targets");
        if name == "staff" {
            browser
                .wait_for_text("#system-status", |t| t.contains(EN.status_ok))
                .await;
        }
        browser.screenshot(name).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn start_over_on_the_kiosk_clears_everything_typed() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/kiosk", server.base), "#family")
        .await;
    browser.type_into("#family", "Doe").await;
    browser.type_into("#birth-year", "2099").await;
    browser.click("label[for=gender-male]").await;
    browser.click(".kiosk > button").await;
    browser
        .wait_for_text("#birth-date-error", str::is_empty)
        .await;
    let values = browser
        .js("return [...document.querySelectorAll('input')]
               .map(i => i.type === 'radio' ? String(i.checked) : i.value);")
        .await;
    let values: Vec<String> = serde_json::from_value(values).unwrap();
    assert!(
        values.iter().all(|v| v.is_empty() || v == "false"),
        "{values:?}"
    );
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

    // Another page, later: still Spanish, messages included.
    browser
        .open(&format!("{}/intake", server.base), "#family")
        .await;
    assert_eq!(browser.text("main h1").await, ES.intake_title);
    browser.type_into("#birth-month", "3").await;
    browser.type_into("#birth-day", "27").await;
    browser.type_into("#birth-year", "2099").await;
    let expected = (ES.problem)(shared::Field::BirthDate, shared::Problem::DateInFuture);
    browser
        .wait_for_text("#birth-date-error", |t| t.contains(expected))
        .await;
    browser.screenshot("intake-es").await;

    browser.click(".language-switch").await;
    browser
        .wait_for_text("main h1", |t| t == EN.intake_title)
        .await;
    browser.close().await;
}
