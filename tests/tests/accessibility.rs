//! Accessibility in a real browser at phone size: axe-core's WCAG 2.1 A and AA
//! rules on every screen and every fixture form (as first shown, and with its
//! errors showing); what the forms promise beyond axe (names, fieldsets, required,
//! errors tied to their inputs and announced); and a form filled and sent with the
//! keyboard alone.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use backend::auth::Role;
use fantoccini::key::Key;
use shared::i18n::{EN, STAFF_EN};
use tests::{AxeViolation, Browser, DESKTOP, Server, fixture_questionnaires};

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
    // The kiosk before it is enrolled, then as patients see it.
    browser
        .open(&format!("{}/kiosk", server.base), "#kiosk-code")
        .await;
    found.push(("/kiosk, not enrolled".to_owned(), browser.axe().await));
    let code = server
        .add_kiosk("Front desk 1", &["registration"], 60, 20)
        .await;
    browser
        .enrol_kiosk(&server.base, &code, "form.questionnaire")
        .await;
    for (path, ready) in [
        ("/", "main h1"),
        ("/intake", "form.questionnaire"),
        ("/kiosk", "form.questionnaire"),
        ("/staff", "#signin"),
        ("/no/such/page", "main h1"),
    ] {
        browser.open(&format!("{}{path}", server.base), ready).await;
        found.push((path.to_owned(), browser.axe().await));
    }

    // The registration form with every error showing, and the line above them.
    browser
        .open(&format!("{}/intake", server.base), "#q-email")
        .await;
    browser.type_into("#q-email", "jane@").await;
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_js("return !document.querySelector('#form-problems').hidden || null;")
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

/// Opens every fixture form and calls `check` with the page's name: as first
/// shown, and again sent unanswered if that shows errors (a paged form shows the
/// first page's on Next, or moves on if it has none).
async fn every_fixture_form(
    server: &Server,
    browser: &Browser,
    mut check: impl AsyncFnMut(String),
) {
    for (name, json) in fixture_questionnaires() {
        let id = server.import(&name, &json).await;
        browser
            .open(
                &format!("{}/preview/{id}", server.base),
                "form.questionnaire",
            )
            .await;
        check(format!("/preview/{id}")).await;

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
            check(format!("/preview/{id}, errors showing")).await;
        }
    }
}

#[tokio::test]
async fn every_fixture_form_meets_wcag_21_aa_by_axe_core() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let mut found = Vec::new();
    every_fixture_form(&server, &browser, async |page| {
        found.push((page, browser.axe().await));
    })
    .await;
    assert_no_violations(&found);
    browser.close().await;
}

/// What the forms promise beyond axe's rules, for every visible control of the
/// form on screen: a name that is more than the required mark; choices grouped in
/// a fieldset with a legend; "(required)" in the label backed by `aria-required`;
/// the question's error element tied to it by `aria-describedby`, polite, and in
/// the accessibility tree while empty (a live region that appears with its text
/// is often not read); `aria-invalid` while an error shows.
const RENDERER_RULES: &str = r#"
    const required = arguments[0];
    const problems = [];
    const clean = t => (t || '').split(required).join('').replace(/\s+/g, ' ').trim();
    const text = e => e ? clean(e.textContent) : '';
    const byIds = ids => (ids || '').split(/\s+/).filter(Boolean)
        .map(id => document.getElementById(id)).filter(Boolean);
    const at = e => e.id ? '#' + e.id : e.outerHTML.slice(0, 100);
    const controls = document.querySelectorAll(
        'main form input, main form select, main form textarea');
    for (const e of controls) {
        if (e.type === 'hidden' || e.getClientRects().length === 0) continue;
        const labels = [...(e.labels || [])];
        const name = [...labels.map(text), clean(e.getAttribute('aria-label')),
            ...byIds(e.getAttribute('aria-labelledby')).map(text)].join(' ').trim();
        if (!name) {
            const shown = labels.map(l => l.textContent.trim()).join(' ');
            problems.push(['no name beyond the required mark', `${at(e)} (label ${JSON.stringify(shown)})`]);
        }
        const choice = e.type === 'radio' || e.type === 'checkbox';
        const group = e.closest('fieldset');
        const legend = group && group.querySelector(':scope > legend');
        if (choice && !text(legend)) {
            problems.push(['a choice outside a fieldset with a legend', at(e)]);
        }
        const saysRequired = labels.some(l => l.textContent.includes(required));
        if (!choice && saysRequired && e.getAttribute('aria-required') !== 'true' && !e.required) {
            problems.push(['the label says required, aria-required is not set', at(e)]);
        }
        const described = [...byIds(e.getAttribute('aria-describedby')),
            ...(choice && group ? byIds(group.getAttribute('aria-describedby')) : [])];
        const error = described.find(d => d.id.endsWith('-error'));
        if (!error) {
            problems.push(['no error element in aria-describedby', at(e)]);
            continue;
        }
        if (error.getAttribute('aria-live') !== 'polite' && error.getAttribute('role') !== 'status') {
            problems.push(['its error element is not a polite live region', at(e)]);
        }
        const style = getComputedStyle(error);
        if (style.display === 'none' || style.visibility === 'hidden') {
            problems.push(['its error element is out of the accessibility tree while empty (display: none or visibility: hidden), so it is often not read when it fills', at(e)]);
        }
        if (text(error) && e.getAttribute('aria-invalid') !== 'true') {
            problems.push(['its error shows, aria-invalid is not "true"', at(e)]);
        }
    }
    return problems;
"#;

#[tokio::test]
async fn every_question_is_named_grouped_and_tied_to_its_error() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let code = server
        .add_kiosk("Front desk 1", &["registration"], 60, 20)
        .await;
    browser.enrol_kiosk(&server.base, &code, "#q-email").await;
    let mut broken = Vec::new();
    let mut check = async |page: String| {
        let problems = browser
            .client
            .execute(RENDERER_RULES, vec![EN.required.into()])
            .await
            .expect("script runs");
        let problems: Vec<(String, String)> = serde_json::from_value(problems).unwrap();
        // By rule, in the order first met, with a few of the controls.
        let mut rules: Vec<(String, Vec<String>)> = Vec::new();
        for (rule, at) in problems {
            match rules.iter_mut().find(|(r, _)| *r == rule) {
                Some((_, controls)) => controls.push(at),
                None => rules.push((rule, vec![at])),
            }
        }
        if !rules.is_empty() {
            let list: Vec<String> = rules
                .iter()
                .map(|(rule, controls)| {
                    let shown: Vec<&str> = controls.iter().take(4).map(String::as_str).collect();
                    let more = controls.len().saturating_sub(shown.len());
                    let more = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    format!(
                        "{rule}: {} control(s): {}{more}",
                        controls.len(),
                        shown.join(", ")
                    )
                })
                .collect();
            broken.push(format!("{page}:\n    {}", list.join("\n    ")));
        }
    };
    // The registration form, as first shown and with its errors.
    for path in ["/kiosk", "/intake"] {
        browser
            .open(&format!("{}{path}", server.base), "#q-email")
            .await;
        check(path.to_owned()).await;
    }
    browser
        .click("form.questionnaire button[type=submit]")
        .await;
    browser
        .wait_for_js("return !document.querySelector('#form-problems').hidden || null;")
        .await;
    check("/intake, sent incomplete".to_owned()).await;
    every_fixture_form(&server, &browser, check).await;
    assert!(broken.is_empty(), "{}", broken.join("\n"));
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

#[tokio::test]
async fn staff_sign_in_and_status_screens_meet_wcag_21_aa_by_axe_core() {
    let server = Server::start().await;
    let password = server.add_user("axe.check", Role::Admin).await;
    let browser = Browser::start_sized(DESKTOP).await;
    let mut found = Vec::new();
    browser
        .open(&format!("{}/staff", server.base), "#signin")
        .await;
    found.push(("/staff sign-in".to_owned(), browser.axe().await));
    browser.type_into("#username", "axe.check").await;
    browser.type_into("#password", "wrong").await;
    browser.click("#signin button[type=submit]").await;
    browser
        .wait_for_text("#signin-error", |t| t == STAFF_EN.signin_failed)
        .await;
    found.push(("/staff sign-in, refused".to_owned(), browser.axe().await));
    browser.client.refresh().await.unwrap();
    browser.staff_sign_in("axe.check", &password).await;
    browser
        .wait_for_text("#system-status", |t| t.contains(STAFF_EN.status_ok))
        .await;
    found.push(("/staff signed in".to_owned(), browser.axe().await));
    // Invitations: the search, whom to invite, the link made, the list.
    browser.click("a[href='/staff/invitations']").await;
    browser.open_existing("#invite-find").await;
    browser
        .wait_for_text("#invitations-none", |t| t == STAFF_EN.inv_none)
        .await;
    found.push(("/staff/invitations".to_owned(), browser.axe().await));
    browser.type_into("#find-family", "Okafor").await;
    browser.type_into("#find-given", "Chidi").await;
    browser.type_into("#find-birth-date", "11051992").await;
    browser.click("#find").await;
    browser.open_existing("#new-patient").await;
    found.push(("/staff/invitations, whom".to_owned(), browser.axe().await));
    browser.click("#new-patient").await;
    browser.click("#create-invitation").await;
    browser.open_existing("#invitation-created").await;
    browser.open_existing("#invitations").await;
    found.push((
        "/staff/invitations, created".to_owned(),
        browser.axe().await,
    ));
    assert_no_violations(&found);
    browser.close().await;
}

#[tokio::test]
async fn the_admin_screen_meets_wcag_21_aa_by_axe_core() {
    let server = Server::start().await;
    let password = server.add_user("axe.admin", Role::Admin).await;
    let browser = Browser::start_sized(DESKTOP).await;
    let mut found = Vec::new();
    browser
        .open(&format!("{}/staff/admin", server.base), "#signin")
        .await;
    browser.staff_sign_in("axe.admin", &password).await;
    browser
        .wait_for_text("#users tbody", |t| t.contains("axe.admin"))
        .await;
    browser.open_existing("#kiosks-none").await;
    browser.open_existing("#kiosk-form-registration").await;
    // Tokens: the test server's own admin token is listed.
    browser.open_existing("#tokens tbody").await;
    found.push(("/staff/admin".to_owned(), browser.axe().await));
    // A password shown once, a refusal, an enrolment code.
    browser.type_into("#new-username", "new.desk").await;
    browser.click("#add-user-submit").await;
    browser.open_existing("#users-secret").await;
    browser.type_into("#new-token-name", "browser-tests").await;
    browser.click("#create-token-submit").await;
    browser.open_existing("#tokens-notice[role=alert]").await;
    browser.type_into("#new-kiosk-name", "Lobby").await;
    browser.click("#add-kiosk-submit").await;
    browser.open_existing("#kiosks-secret").await;
    browser.open_existing("#kiosks tbody").await;
    found.push((
        "/staff/admin, secrets shown".to_owned(),
        browser.axe().await,
    ));
    assert_no_violations(&found);
    browser.close().await;
}

#[tokio::test]
async fn the_review_screens_meet_wcag_21_aa_by_axe_core() {
    let server = Server::start().await;
    let password = server.add_user("axe.clinician", Role::Clinician).await;
    let browser = Browser::start_sized(DESKTOP).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    // Two intakes of what may be one person: the second waits for review.
    for (key, given, phone) in [
        ("a", "Maria", "+1 617 555 0101"),
        ("b", "Elena", "+1 617 555 0101"),
    ] {
        let response = serde_json::json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "urn:intake:questionnaire:registration",
            "status": "completed",
            "item": [
                {"linkId": "name", "item": [
                    {"linkId": "family", "answer": [{"valueString": "Gonzalez"}]},
                    {"linkId": "given", "answer": [{"valueString": given}]}]},
                {"linkId": "birth-date", "answer": [{"valueDate": "1980-04-12"}]},
                {"linkId": "gender", "answer": [{"valueCoding": {
                    "system": "http://hl7.org/fhir/administrative-gender", "code": "female"}}]},
                {"linkId": "phone", "answer": [{"valueString": phone}]},
            ]
        });
        browser
            .js(&format!(
                "return fetch('/api/intakes', {{method: 'POST', headers: {{'content-type':
                   'application/fhir+json', 'idempotency-key': '{key}'}},
                   body: JSON.stringify({response})}}).then(r => r.status);"
            ))
            .await;
    }
    browser.staff_sign_in("axe.clinician", &password).await;
    let mut found = Vec::new();
    browser.open_existing("#queue tbody a").await;
    found.push(("/staff/review".to_owned(), browser.axe().await));
    browser.click("#queue tbody a").await;
    browser.open_existing("#compare").await;
    found.push(("/staff/review/{task}".to_owned(), browser.axe().await));
    browser.click("#link-0").await;
    browser
        .wait_for_js("return document.querySelector('#reauth').open || null;")
        .await;
    found.push((
        "/staff/review/{task}, password dialog".to_owned(),
        browser.axe().await,
    ));
    assert_no_violations(&found);
    browser.close().await;
}
