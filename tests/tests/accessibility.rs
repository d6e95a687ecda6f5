//! Accessibility in a real browser at phone size: axe-core's WCAG 2.1 A and AA
//! rules on every screen and every fixture form (as first shown, and with its
//! errors showing), and a form filled and sent with the keyboard alone.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use fantoccini::key::Key;
use shared::i18n::EN;
use tests::{AxeViolation, Browser, Server, fixture_questionnaires};

/// Panics listing every violation of every page, if there is any.
fn assert_no_violations(found: &[(String, Vec<AxeViolation>)]) {
    let broken: Vec<String> = found
        .iter()
        .filter(|(_, violations)| !violations.is_empty())
        .map(|(page, violations)| {
            let list: String = violations.iter().map(ToString::to_string).collect();
            format!("{page}:\n{list}")
        })
        .collect();
    assert!(
        broken.is_empty(),
        "axe-core (WCAG 2.1 A/AA) found problems on {} of {} pages:\n\n{}",
        broken.len(),
        found.len(),
        broken.join("\n")
    );
}

#[tokio::test]
async fn every_screen_meets_wcag_21_aa_by_axe_core() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let mut found = Vec::new();
    for path in ["/", "/intake", "/kiosk", "/staff", "/no/such/page"] {
        browser
            .open(&format!("{}{path}", server.base), "main h1")
            .await;
        if path == "/staff" {
            browser
                .wait_for_text("#system-status", |t| t.contains(EN.status_ok))
                .await;
        }
        found.push((path.to_owned(), browser.axe().await));
    }

    // The intake form with every error showing, and the summary of them.
    browser
        .open(&format!("{}/intake", server.base), "#family")
        .await;
    browser.type_into("#email", "jane@").await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_text(".error-summary", |t| !t.is_empty())
        .await;
    found.push(("/intake, sent incomplete".to_owned(), browser.axe().await));
    assert_no_violations(&found);

    // The check itself works: an input without a label is caught.
    browser
        .js("document.querySelector('main').append(document.createElement('input'));")
        .await;
    let caught = browser.axe().await;
    assert!(
        caught
            .iter()
            .any(|v| v.id == "label" && v.nodes.iter().any(|n| n.html.starts_with("<input"))),
        "{caught:?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn every_fixture_form_meets_wcag_21_aa_by_axe_core() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let mut found = Vec::new();
    for (name, json) in fixture_questionnaires() {
        let id = server.import(&name, &json).await;
        browser
            .open(
                &format!("{}/preview/{id}", server.base),
                "form.questionnaire",
            )
            .await;
        found.push((format!("/preview/{id}"), browser.axe().await));

        // Sent unanswered: the required questions show their errors (a paged
        // form shows the first page's on Next, or moves on if it has none).
        let paged = browser
            .js("return document.getElementById('page-progress') !== null;")
            .await
            == true;
        let (button, settled) = if paged {
            let progress = browser.text("#page-progress").await;
            (
                ".page-next",
                format!("document.getElementById('page-progress').textContent !== {progress:?}"),
            )
        } else {
            (
                "form.questionnaire button[type=submit]",
                "!document.getElementById('form-problems').hidden
                 || document.getElementById('server-answer').textContent !== ''"
                    .to_owned(),
            )
        };
        browser.scroll_to(button).await;
        browser.click(button).await;
        let errors = browser
            .wait_for_js(&format!(
                "const errors = document.querySelectorAll('.field-error:not(:empty)').length;
                 return errors > 0 || {settled} ? errors : null;"
            ))
            .await;
        if errors.as_u64().is_some_and(|n| n > 0) {
            found.push((
                format!("/preview/{id}, errors showing"),
                browser.axe().await,
            ));
        }
    }
    assert_no_violations(&found);
    browser.close().await;
}

const SMALL: &str = r#"{
  "resourceType": "Questionnaire", "id": "small", "status": "active", "title": "A few questions",
  "item": [
    {"linkId": "name", "type": "string", "text": "Your name", "required": true},
    {"linkId": "smoker", "type": "boolean", "text": "Do you smoke?", "required": true},
    {"linkId": "packs", "type": "integer", "text": "Packs a day", "required": true,
     "enableWhen": [{"question": "smoker", "operator": "=", "answerBoolean": true}]},
    {"linkId": "contact", "type": "choice", "text": "Best way to reach you", "answerOption": [
      {"valueCoding": {"code": "phone", "display": "Phone"}},
      {"valueCoding": {"code": "email", "display": "Email"}},
      {"valueCoding": {"code": "post", "display": "Post"}}]},
    {"linkId": "member", "type": "group", "text": "Family member", "repeats": true, "item": [
      {"linkId": "relation", "type": "string", "text": "Relation"}]}
  ]
}"#;

/// Presses Tab until the focused element matches `css`, at most `limit` times;
/// panics naming where focus went. Every stop on the way must show where focus is.
async fn tab_to(browser: &Browser, css: &str, limit: usize) {
    let mut path = Vec::new();
    for _ in 0..limit {
        browser.press(&[Key::Tab]).await;
        let here = browser
            .js(&format!(
                "const e = document.activeElement;
                 const style = getComputedStyle(e);
                 return {{
                     at: e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + e.className,
                     matches: e.matches({css:?}),
                     visible: e.matches(':focus-visible') && style.outlineStyle !== 'none'
                         && parseFloat(style.outlineWidth) >= 2,
                 }};"
            ))
            .await;
        assert_eq!(
            here["visible"], true,
            "focus on {} is not visible",
            here["at"]
        );
        if here["matches"] == true {
            return;
        }
        path.push(here["at"].as_str().unwrap_or_default().to_owned());
    }
    panic!("Tab never reached {css}; focus went: {path:?}");
}

#[tokio::test]
async fn a_form_can_be_filled_and_sent_with_the_keyboard_alone() {
    let server = Server::start().await;
    server.import("small", SMALL).await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/preview/small", server.base), "#q-name")
        .await;

    // From the top of the page: past the header's controls to the first question.
    tab_to(&browser, "#q-name", 15).await;
    browser.type_keys("Jane Doe").await;

    // A yes/no question is one stop: Tab lands on its first choice, Space picks it,
    // and "yes" opens the branch; the arrows move the choice, closing and
    // reopening it.
    tab_to(&browser, "#q-smoker-true", 1).await;
    browser.press(&[Key::Space]).await;
    browser.open_existing("#q-packs").await;
    browser.press(&[Key::Down]).await;
    browser
        .wait_for_js("return document.getElementById('q-packs') === null || null;")
        .await;
    assert_eq!(browser.focused_id().await, "q-smoker-false");
    browser.press(&[Key::Up]).await;
    browser.open_existing("#q-packs").await;
    assert_eq!(browser.focused_id().await, "q-smoker-true");
    tab_to(&browser, "#q-packs", 1).await;
    browser.type_keys("2").await;
    // Shift-Tab goes back to the chosen answer, Tab forward again.
    browser.press_shift_tab().await;
    assert_eq!(browser.focused_id().await, "q-smoker-true");
    tab_to(&browser, "#q-packs", 1).await;

    // Radio buttons: one stop, the arrows pick.
    tab_to(&browser, "#q-contact-0", 1).await;
    browser.press(&[Key::Down]).await;
    browser
        .wait_for_js("return document.getElementById('q-contact-1').checked || null;")
        .await;

    // A second family member, added with Enter on the button.
    tab_to(&browser, "#q-member_0__relation", 1).await;
    browser.type_keys("Sister").await;
    tab_to(&browser, ".add-instance", 3).await;
    browser.press(&[Key::Enter]).await;
    browser.open_existing("#q-member_1__relation").await;
    // The new member comes before the button: back past its "Remove".
    browser.press_shift_tab().await;
    browser.press_shift_tab().await;
    assert_eq!(browser.focused_id().await, "q-member_1__relation");
    browser.type_keys("Brother").await;

    // To the send button, and Enter.
    tab_to(&browser, "button[type=submit]", 5).await;
    browser.press(&[Key::Enter]).await;
    browser
        .wait_for_text("#server-answer", |t| t == EN.form_server_valid)
        .await;
    let values = browser
        .js(
            "return ['q-name', 'q-packs', 'q-member_0__relation', 'q-member_1__relation']
               .map(id => document.getElementById(id).value);",
        )
        .await;
    assert_eq!(
        values,
        serde_json::json!(["Jane Doe", "2", "Sister", "Brother"])
    );
    let contact = browser
        .js("return document.getElementById('q-contact-1').checked;")
        .await;
    assert_eq!(contact, true);
    browser.screenshot("keyboard-only").await;
    browser.close().await;
}
