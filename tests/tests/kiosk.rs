//! The kiosk in a real browser: enrolled with its one-time code, then left idle
//! (warned, then wiped) or used to send (thanked, then wiped). After a wipe
//! nothing the patient typed is on the page, in storage or behind Back.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use shared::i18n::EN;
use tests::{Browser, Server};

/// The registration form's inputs (Intake's own `Questionnaire/registration`).
const FAMILY: &str = "#q-name_0__family";
const GIVEN: &str = "#q-name_0__given";
const BIRTH_DATE: &str = "#q-birth-date";
const SUBMIT: &str = "form.questionnaire button[type=submit]";

/// What the patient types: names nothing else on the page could contain.
const TYPED_FAMILY: &str = "Quillfeather";
const TYPED_GIVEN: &str = "Zenobia";

/// Every input's value (radios and checkboxes as "true"/"false").
async fn input_values(browser: &Browser) -> Vec<String> {
    let values = browser
        .js("return [...document.querySelectorAll('input')]
               .map(i => (i.type === 'radio' || i.type === 'checkbox') ? String(i.checked) : i.value);")
        .await;
    serde_json::from_value(values).unwrap()
}

/// Panics if the page, its form controls or the browser's storage hold anything
/// the patient typed.
async fn assert_nothing_of_the_patient(browser: &Browser, when: &str) {
    let page = browser
        .js("return document.documentElement.outerHTML + ' ' + document.body.innerText;")
        .await;
    let page = page.as_str().unwrap();
    for typed in [TYPED_FAMILY, TYPED_GIVEN, "1987"] {
        assert!(
            !page.contains(typed),
            "{when}: {typed} is still on the page"
        );
    }
    let values = input_values(browser).await;
    assert!(
        values.iter().all(|v| v.is_empty() || v == "false"),
        "{when}: {values:?}"
    );
    let storage = browser
        .js("return localStorage.length + sessionStorage.length;")
        .await;
    assert_eq!(storage, serde_json::json!(0), "{when}: storage kept");
}

async fn fill_in(browser: &Browser) {
    browser.type_into(FAMILY, TYPED_FAMILY).await;
    browser.type_into(GIVEN, TYPED_GIVEN).await;
    browser.type_into(BIRTH_DATE, "07141987").await;
    browser.click("label[for=q-gender-1]").await;
}

#[tokio::test]
async fn a_kiosk_left_idle_warns_then_wipes_everything_the_patient_typed() {
    let server = Server::start().await;
    // Warned after 2 s without input, wiped 3 s later (60 s and 20 s by default).
    let code = server
        .add_kiosk("Front desk 1", &["registration"], 2, 3)
        .await;
    let browser = Browser::start().await;
    // Something to go Back to.
    browser.open(&format!("{}/", server.base), "main h1").await;
    browser
        .open(&format!("{}/kiosk", server.base), "#kiosk-code")
        .await;
    browser.screenshot("kiosk-enrol").await;
    browser.enrol_kiosk(&server.base, &code, FAMILY).await;
    browser.screenshot("kiosk-start").await;
    // At rest (nobody has touched it), the kiosk does not warn.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        browser.attr("#kiosk-warning", "hidden").await.as_deref(),
        Some("true")
    );

    fill_in(&browser).await;
    // Whatever a page might have kept in the browser's storage.
    browser
        .js("localStorage.setItem('left', 'Quillfeather'); sessionStorage.setItem('left', 'Zenobia');")
        .await;
    browser.screenshot("kiosk-form").await;

    // Left alone: the warning, with the focus on "I'm still here".
    browser
        .wait_for_js("return !document.querySelector('#kiosk-warning').hidden || null;")
        .await;
    let warning = browser.text("#kiosk-warning").await;
    assert!(warning.contains(EN.idle_title), "{warning}");
    assert!(warning.contains(EN.idle_clears_in), "{warning}");
    assert_eq!(
        browser.js("return document.activeElement.id;").await,
        "kiosk-still-here"
    );
    browser.screenshot("kiosk-warning").await;
    // Still typed while warning: nothing is lost before the countdown ends.
    assert_eq!(
        browser
            .js(&format!("return document.querySelector('{FAMILY}').value;"))
            .await,
        TYPED_FAMILY
    );

    // Then the wipe: a fresh, empty form, the warning gone, focus at the top.
    browser
        .wait_for_js(&format!(
            "const f = document.querySelector('{FAMILY}');
             return (document.querySelector('#kiosk-warning').hidden && f && f.value === '') || null;"
        ))
        .await;
    assert_nothing_of_the_patient(&browser, "after the wipe").await;
    assert_eq!(
        browser.js("return document.activeElement.id;").await,
        "kiosk-title"
    );
    assert_eq!(
        browser
            .js("return location.pathname + location.search + location.hash;")
            .await,
        "/kiosk"
    );

    // Back, and forward again: nothing of the patient either way.
    browser.js("history.back();").await;
    browser
        .wait_for_js("return location.pathname === '/' || null;")
        .await;
    browser.open_existing("main h1").await;
    assert_nothing_of_the_patient(&browser, "after Back").await;
    browser.js("history.forward();").await;
    browser
        .wait_for_js("return location.pathname === '/kiosk' || null;")
        .await;
    browser.open_existing(FAMILY).await;
    assert_nothing_of_the_patient(&browser, "after Forward").await;
    browser.close().await;
}

#[tokio::test]
async fn i_am_still_here_keeps_the_answers() {
    let server = Server::start().await;
    let code = server
        .add_kiosk("Front desk 1", &["registration"], 2, 10)
        .await;
    let browser = Browser::start().await;
    browser.enrol_kiosk(&server.base, &code, FAMILY).await;
    browser.type_into(FAMILY, TYPED_FAMILY).await;
    browser
        .wait_for_js("return !document.querySelector('#kiosk-warning').hidden || null;")
        .await;
    browser.click("#kiosk-still-here").await;
    browser
        .wait_for_js("return document.querySelector('#kiosk-warning').hidden || null;")
        .await;
    assert_eq!(
        browser
            .js(&format!("return document.querySelector('{FAMILY}').value;"))
            .await,
        TYPED_FAMILY
    );
    browser.close().await;
}

#[tokio::test]
async fn after_sending_the_kiosk_thanks_the_patient_then_wipes() {
    let server = Server::start().await;
    // Thanked for 3 s (never longer than the idle time; 10 s at most).
    let code = server
        .add_kiosk("Front desk 1", &["registration"], 3, 20)
        .await;
    let browser = Browser::start().await;
    browser.enrol_kiosk(&server.base, &code, FAMILY).await;

    fill_in(&browser).await;
    browser.click(SUBMIT).await;
    let thanks = browser
        .wait_for_text("#intake-sent", |t| t.contains(EN.sent_title))
        .await;
    assert!(thanks.contains(EN.sent_kiosk), "{thanks}");
    browser.screenshot("kiosk-sent").await;
    // A few seconds later, wiped without anyone pressing anything.
    browser
        .wait_for_js(&format!(
            "const f = document.querySelector('{FAMILY}');
             return (f && f.value === '' && !document.querySelector('#intake-sent:not([hidden])')) || null;"
        ))
        .await;
    assert_nothing_of_the_patient(&browser, "after the thank-you").await;

    // The next patient gets a fresh visit too.
    fill_in(&browser).await;
    browser.click(SUBMIT).await;
    browser
        .wait_for_text("#intake-sent", |t| t.contains(EN.sent_title))
        .await;
    browser
        .wait_for_js(&format!(
            "const f = document.querySelector('{FAMILY}');
             return (f && f.value === '') || null;"
        ))
        .await;
    assert_nothing_of_the_patient(&browser, "after the second thank-you").await;
    browser.close().await;
}

#[tokio::test]
async fn a_kiosk_with_several_forms_offers_a_choice_and_its_used_code_enrols_no_other_browser() {
    let server = Server::start().await;
    server
        .import(
            "consent",
            r#"{"resourceType": "Questionnaire", "id": "consent", "status": "active",
                "title": "Consent to treatment",
                "item": [{"linkId": "agree", "type": "boolean", "text": "I agree", "required": true}]}"#,
        )
        .await;
    let code = server
        .add_kiosk("Waiting room", &["registration", "consent"], 60, 20)
        .await;
    let browser = Browser::start().await;
    browser
        .enrol_kiosk(&server.base, &code, ".kiosk-choice")
        .await;
    let choices = browser
        .js("return [...document.querySelectorAll('.kiosk-choice')].map(b => b.textContent);")
        .await;
    assert_eq!(
        choices,
        serde_json::json!(["Your details", "Consent to treatment"])
    );
    browser.screenshot("kiosk-choose").await;
    browser.click(".kiosk-choice:nth-of-type(2)").await;
    browser.open_existing("form.questionnaire").await;
    assert!(browser.text("form.questionnaire").await.contains("I agree"));

    // A used code enrols nobody else: a second browser is told so.
    let other = Browser::start().await;
    other
        .open(&format!("{}/kiosk", server.base), "#kiosk-code")
        .await;
    other.type_into("#kiosk-code", &code).await;
    other.click("#kiosk-enrol button[type=submit]").await;
    other
        .wait_for_js("return !document.querySelector('#kiosk-enrol-refused').hidden || null;")
        .await;
    other.close().await;
    browser.close().await;
}
