//! The staff app in a real browser (headless Chromium at desktop and tablet
//! sizes) against the real server: sign-in, sign-out, idle logoff, and the
//! match-resolution screen (`/staff/review`) from the queue to the chosen chart.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use backend::auth::Role;
use fantoccini::key::Key;
use serde_json::{Value, json};
use shared::i18n::STAFF_EN;
use tests::{Browser, DESKTOP, Server, TABLET};

/// A registration (Intake's own `Questionnaire/registration`) for one person.
fn registration(given: &str, family: &str, birth: &str, phone: &str, city: &str) -> Value {
    let text =
        |link: &str, value: &str| json!({"linkId": link, "answer": [{"valueString": value}]});
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:intake:questionnaire:registration",
        "status": "completed",
        "item": [
            {"linkId": "name", "item": [text("family", family), text("given", given)]},
            {"linkId": "birth-date", "answer": [{"valueDate": birth}]},
            {"linkId": "gender", "answer": [{"valueCoding": {
                "system": "http://hl7.org/fhir/administrative-gender", "code": "female", "display": "Female"}}]},
            text("phone", phone),
            {"linkId": "address", "item": [text("address-line", "12 Elm Street"), text("city", city)]},
        ]
    })
}

/// Sends an intake as a patient's phone does (from the page, same origin) and
/// returns the receipt.
/// Sent with `token`, a system client's: a patient's phone is told only
/// "received", and these tests arrange what was decided.
async fn submit(browser: &Browser, token: &str, key: &str, response: &Value) -> Value {
    browser
        .js(&format!(
            "return fetch('/api/intakes', {{method: 'POST',
                 headers: {{'content-type': 'application/fhir+json', 'idempotency-key': {key:?},
                           authorization: 'Bearer ' + {token:?}}},
                 body: JSON.stringify({response})}}).then(r => r.json());"
        ))
        .await
}

/// `GET path` on the server with a bearer token, from the page.
async fn fetch_with_token(browser: &Browser, token: &str, path: &str) -> Value {
    browser
        .js(&format!(
            "return fetch({path:?}, {{headers: {{authorization: 'Bearer ' + {token:?}}}}})
                 .then(r => r.json());"
        ))
        .await
}

/// How many QuestionnaireResponses the chart `patient` holds.
async fn responses_of(browser: &Browser, token: &str, patient: &str) -> usize {
    let found = fetch_with_token(
        browser,
        token,
        &format!("/fhir/QuestionnaireResponse?subject={patient}"),
    )
    .await;
    found["entry"].as_array().map_or(0, Vec::len)
}

/// The status of `GET /api/staff/me` from the page (200 signed in, 401 not).
async fn me_status(browser: &Browser) -> u64 {
    browser
        .js("return fetch('/api/staff/me').then(r => r.status);")
        .await
        .as_u64()
        .unwrap()
}

/// Two intakes of what may be one person: the first makes a chart, the second
/// (another given name, the same family name, birth date, phone and address:
/// maybe a twin) waits for review against it.
/// Returns the first chart's reference.
async fn a_probable_match(browser: &Browser, token: &str) -> String {
    let first = submit(
        browser,
        token,
        "visit-1",
        &registration(
            "Maria",
            "Gonzalez",
            "1980-04-12",
            "+1 617 555 0101",
            "Springfield",
        ),
    )
    .await;
    assert_eq!(first["outcome"], "created", "{first}");
    let second = submit(
        browser,
        token,
        "visit-2",
        &registration(
            "Elena",
            "Gonzalez",
            "1980-04-12",
            "+1 617 555 0101",
            "Springfield",
        ),
    )
    .await;
    assert_eq!(second["outcome"], "review", "{second}");
    first["patient"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_patient_app_downloads_no_staff_code_and_staff_pages_load_their_own() {
    let server = Server::start().await;
    let browser = Browser::start().await;
    let loaded =
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);";
    browser
        .open(&format!("{}/intake", server.base), "form.questionnaire")
        .await;
    let files: Vec<String> = serde_json::from_value(browser.js(loaded).await).unwrap();
    assert!(files.iter().any(|f| f.ends_with(".wasm")), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with("/staff")), "{files:?}");
    // The patient app's link to the staff side loads the staff app's page.
    // Once the app has drawn it (the page's HTML is only a shell).
    browser
        .open(&format!("{}/", server.base), "a[href='/staff']")
        .await;
    browser.click("a[href='/staff']").await;
    browser.open_existing("#signin").await;
    let files: Vec<String> = serde_json::from_value(browser.js(loaded).await).unwrap();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("/staff/staff-") && f.ends_with(".wasm")),
        "{files:?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn staff_sign_in_refuses_a_wrong_password_generically_then_signs_in_and_out() {
    let server = Server::start().await;
    let password = server.add_user("casey", Role::Clinician).await;
    let browser = Browser::start_sized(DESKTOP).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    assert_eq!(browser.text("main h1").await, STAFF_EN.signin_title);
    assert_eq!(browser.focused_id().await, "username");
    browser.screenshot("staff-signin").await;

    browser.type_into("#username", "casey").await;
    browser.type_into("#password", "not-the-password").await;
    browser.click("#signin button[type=submit]").await;
    browser
        .wait_for_text("#signin-error", |t| t == STAFF_EN.signin_failed)
        .await;
    // The same words for a name that is no account at all.
    browser.type_into("#username", "-nobody").await;
    browser.type_into("#password", "whatever").await;
    browser.click("#signin button[type=submit]").await;
    browser
        .wait_for_text("#signin-error", |t| t == STAFF_EN.signin_failed)
        .await;
    assert_eq!(me_status(&browser).await, 401);

    browser.client.refresh().await.unwrap();
    browser.staff_sign_in("casey", &password).await;
    assert!(
        browser
            .text("#signed-in-as")
            .await
            .contains(STAFF_EN.role_clinician)
    );
    // The address asked for (the queue) is what shows once signed in.
    browser
        .wait_for_text("main h1", |t| t == STAFF_EN.queue_title)
        .await;
    assert_eq!(me_status(&browser).await, 200);
    // A reload keeps the session (the cookie) and asks who is signed in.
    browser.client.refresh().await.unwrap();
    browser
        .wait_for_text("#signed-in-as", |t| t.contains("casey"))
        .await;

    browser.click("#sign-out").await;
    browser
        .wait_for_text("#signin-notice", |t| t == STAFF_EN.signed_out)
        .await;
    assert_eq!(
        browser
            .js("return document.querySelector('#signed-in-as');")
            .await,
        Value::Null
    );
    assert_eq!(me_status(&browser).await, 401);
    browser.close().await;
}

#[tokio::test]
async fn idle_staff_are_warned_then_signed_out_and_the_screen_is_cleared() {
    let server = Server::start().await;
    let password = server.add_user("idle.user", Role::Clinician).await;
    let browser = Browser::start_sized(TABLET).await;
    // `?idle=15`: a 15-second limit instead of 15 minutes, the warning at 13 s.
    browser
        .open(&format!("{}/staff?idle=15", server.base), "#signin")
        .await;
    browser.staff_sign_in("idle.user", &password).await;
    browser.open_existing("#system-status").await;

    let warning = browser
        .wait_for_text("#idle-warning", |t| t.contains(STAFF_EN.idle_warning))
        .await;
    assert!(warning.contains(STAFF_EN.stay_signed_in), "{warning}");
    assert_eq!(browser.focused_id().await, "stay-signed-in");
    browser.screenshot("staff-idle-warning").await;
    // Staying signed in keeps the page and the session.
    browser.press(&[Key::Enter]).await;
    browser
        .wait_for_js("return document.querySelector('#idle-warning') ? null : true;")
        .await;
    assert!(browser.text("#signed-in-as").await.contains("idle.user"));
    assert_eq!(me_status(&browser).await, 200);

    // Left alone again: warned, then signed out with everything gone.
    browser.open_existing("#idle-warning").await;
    browser
        .wait_for_text("#signin-notice", |t| t == STAFF_EN.idle_signed_out)
        .await;
    assert_eq!(
        browser
            .js("return document.querySelector('#system-status');")
            .await,
        Value::Null
    );
    assert_eq!(
        browser
            .js("return document.querySelector('#signed-in-as');")
            .await,
        Value::Null
    );
    // The server's session goes too (the page's requests had kept it alive): the
    // logout is on its way as the sign-in form shows.
    browser
        .wait_for_js("return fetch('/api/staff/me').then(r => r.status === 401 || null);")
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_clinician_links_a_probable_match_side_by_side_after_reentering_the_password() {
    let server = Server::start().await;
    let password = server.add_user("dr.lee", Role::Clinician).await;
    let token = server.token("browser-test", Role::Admin).await;
    let browser = Browser::start_sized(DESKTOP).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    let chart = a_probable_match(&browser, &server.token).await;
    browser.staff_sign_in("dr.lee", &password).await;

    // The queue: one item, its age, score and grade, and the live count.
    browser
        .wait_for_text("#queue-count", |t| t == (STAFF_EN.queue_count)(1))
        .await;
    let row = browser.text("#queue tbody tr").await;
    assert!(row.contains(STAFF_EN.kind_match), "{row}");
    assert!(
        row.contains(STAFF_EN.grade_probable) || row.contains(STAFF_EN.grade_possible),
        "{row}"
    );
    assert!(
        row.split_whitespace()
            .any(|w| w.len() == 4 && w.parse::<f64>().is_ok_and(|s| (0.0..=1.0).contains(&s))),
        "a score: {row}"
    );
    browser.screenshot("staff-queue").await;

    // The item: the intake and the candidate side by side, field by field.
    browser.click("#queue tbody a").await;
    browser.open_existing("#compare").await;
    assert_eq!(browser.text("main h1").await, STAFF_EN.item_title_match);
    let candidate = browser.text("#candidate-0").await;
    assert!(candidate.contains("Maria Gonzalez"), "{candidate}");
    assert!(
        browser
            .text("#candidate-0-score")
            .await
            .contains(STAFF_EN.score)
    );
    let given = browser.text("#compare tbody tr:nth-child(1)").await;
    assert!(
        given.contains("Elena") && given.contains("Maria"),
        "{given}"
    );
    // Agreement in words (not colour alone), and each field's weight.
    let birth = browser.text("#compare tbody tr:nth-child(3)").await;
    assert!(birth.contains(STAFF_EN.level_exact), "{birth}");
    assert!(birth.contains(STAFF_EN.weight), "{birth}");
    assert_eq!(
        browser
            .attr("#compare tbody tr:nth-child(3) td:nth-child(3)", "class")
            .await
            .as_deref(),
        Some("level level-exact")
    );
    // A clinician sees the answers.
    browser.open_existing("#answers").await;
    browser.screenshot("staff-review-item").await;

    // Keyboard only: Tab to "Link to this patient", Enter, the password, Enter.
    browser.js("document.querySelector('#compare').closest('section').querySelector('h2').setAttribute('tabindex','-1'); document.querySelector('#compare-title').focus();").await;
    let mut found = false;
    for _ in 0..40 {
        browser.press(&[Key::Tab]).await;
        if browser.focused_id().await == "link-0" {
            found = true;
            break;
        }
    }
    assert!(found, "Tab never reached the link button");
    browser.press(&[Key::Enter]).await;
    browser
        .wait_for_js("return document.querySelector('#reauth').open || null;")
        .await;
    assert_eq!(browser.focused_id().await, "reauth-password");
    // A wrong password decides nothing.
    browser.type_keys("wrong password").await;
    browser.press(&[Key::Enter]).await;
    browser
        .wait_for_text("#reauth-error", |t| t == STAFF_EN.reauth_failed)
        .await;
    browser.screenshot("staff-reauth").await;
    browser.type_keys(&password).await;
    browser.press(&[Key::Enter]).await;

    browser
        .wait_for_text("#flash", |t| t == STAFF_EN.decision_saved)
        .await;
    browser
        .wait_for_text("#queue-count", |t| t == (STAFF_EN.queue_count)(0))
        .await;
    // The intake is on the chosen chart: both responses are that patient's.
    let responses = fetch_with_token(
        &browser,
        &token,
        &format!("/fhir/QuestionnaireResponse?subject={chart}"),
    )
    .await;
    assert_eq!(
        responses["entry"].as_array().map(Vec::len),
        Some(2),
        "{responses}"
    );
    let patients = fetch_with_token(&browser, &token, "/fhir/Patient?family=gonzalez").await;
    assert_eq!(
        patients["entry"].as_array().map(Vec::len),
        Some(1),
        "{patients}"
    );
    browser.close().await;
}

#[tokio::test]
async fn front_desk_sees_the_comparison_but_no_answers_and_no_decision_buttons() {
    let server = Server::start().await;
    let password = server.add_user("frontdesk", Role::FrontDesk).await;
    let browser = Browser::start_sized(TABLET).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    a_probable_match(&browser, &server.token).await;
    browser.staff_sign_in("frontdesk", &password).await;
    browser.open_existing("#queue tbody a").await;
    browser.click("#queue tbody a").await;
    browser.open_existing("#compare").await;
    assert!(
        browser
            .text("#candidate-0")
            .await
            .contains("Maria Gonzalez")
    );
    let absent = browser
        .js(
            "return ['#link-0', '#not-this-0', '#create-new', '#answers', '.actions-row']
                .filter(css => document.querySelector(css));",
        )
        .await;
    assert_eq!(absent, json!([]));
    // At tablet width the page is no wider than the screen (the table scrolls).
    let width = browser
        .js("return document.documentElement.scrollWidth;")
        .await;
    assert!(
        width.as_u64().is_some_and(|w| w <= u64::from(TABLET.0)),
        "{width}"
    );
    browser.close().await;
}

/// Issue 21: an intake sent without proof of identity (the public form, no
/// invitation) that matches a chart is not filed there: it waits as a proposed
/// link, which the front desk confirms with one action once they have checked
/// who the patient is; nothing else is theirs to decide.
#[tokio::test]
async fn the_front_desk_confirms_a_proposed_link_from_the_queue_in_one_action() {
    let server = Server::start().await;
    let password = server.add_user("desk.ana", Role::FrontDesk).await;
    let linking = server.linking_token("emr", Role::System).await;
    let browser = Browser::start_sized(TABLET).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    let maria = registration(
        "Maria",
        "Gonzalez",
        "1980-04-12",
        "+1 617 555 0101",
        "Springfield",
    );
    let first = submit(&browser, &linking, "emr-1", &maria).await;
    assert_eq!(first["outcome"], "created", "{first}");
    let chart = first["patient"].as_str().unwrap().to_owned();
    // The same details from the public page, as anyone could send them.
    let anonymous = browser
        .js(&format!(
            "return fetch('/api/intakes', {{method: 'POST',
                 headers: {{'content-type': 'application/fhir+json', 'idempotency-key': 'walk-in'}},
                 body: JSON.stringify({maria})}}).then(r => r.json());"
        ))
        .await;
    assert_eq!(anonymous["status"], "received", "{anonymous}");
    assert_eq!(
        responses_of(&browser, &server.token, &chart).await,
        1,
        "nothing reaches the chart unconfirmed"
    );

    browser.staff_sign_in("desk.ana", &password).await;
    browser.click("a[href='/staff/review']").await;
    browser
        .wait_for_text("#queue-count", |t| t == (STAFF_EN.queue_count)(1))
        .await;
    let row = browser.text("#queue tbody tr").await;
    assert!(row.contains(STAFF_EN.kind_proposed_link), "{row}");
    assert!(row.contains(STAFF_EN.grade_certain), "{row}");
    browser.click("#queue tbody a").await;
    browser.open_existing("#proposed-link-note").await;
    assert_eq!(
        browser.text("main h1").await,
        STAFF_EN.item_title_proposed_link
    );
    assert_eq!(
        browser.text("#proposed-link-note").await,
        STAFF_EN.proposed_link_note
    );
    // One action, and only that one: no other decision, no answers.
    assert_eq!(browser.text("#link-0").await, STAFF_EN.confirm_link);
    let absent = browser
        .js("return ['#not-this-0', '#create-new', '#answers']
                .filter(css => document.querySelector(css));")
        .await;
    assert_eq!(absent, json!([]));
    browser.screenshot("staff-proposed-link").await;
    let violations = browser.axe().await;
    assert!(violations.is_empty(), "{violations:?}");
    browser.click("#link-0").await;
    browser
        .wait_for_js("return document.querySelector('#reauth').open || null;")
        .await;
    browser.type_keys(&password).await;
    browser.press(&[Key::Enter]).await;
    browser
        .wait_for_text("#flash", |t| t == STAFF_EN.decision_saved)
        .await;
    browser
        .wait_for_text("#queue-count", |t| t == (STAFF_EN.queue_count)(0))
        .await;
    assert_eq!(
        responses_of(&browser, &server.token, &chart).await,
        2,
        "the confirmed intake is in the chart"
    );
    let patients = fetch_with_token(&browser, &server.token, "/fhir/Patient?family=gonzalez").await;
    assert_eq!(
        patients["entry"].as_array().map(Vec::len),
        Some(1),
        "{patients}"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_decision_made_elsewhere_first_gets_the_412_message_and_the_item_reloads() {
    let server = Server::start().await;
    let password = server.add_user("dr.park", Role::Clinician).await;
    let token = server.token("other-desk", Role::Admin).await;
    let browser = Browser::start_sized(DESKTOP).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    let chart = a_probable_match(&browser, &server.token).await;
    browser.staff_sign_in("dr.park", &password).await;
    browser.open_existing("#queue tbody a").await;
    browser.click("#queue tbody a").await;
    browser.open_existing("#not-this-0").await;

    // Meanwhile someone else rules the same candidate out, on the version both read.
    let path: String =
        serde_json::from_value(browser.js("return location.pathname;").await).unwrap();
    let api = path.replacen("/staff/review/", "/api/staff/review/", 1);
    let item = fetch_with_token(&browser, &token, &api).await;
    let version = item["version"].as_str().unwrap();
    let other = browser
        .js(&format!(
            "return fetch({decision:?}, {{method: 'POST', headers: {{
                 authorization: 'Bearer ' + {token:?}, 'content-type': 'application/json',
                 'if-match': 'W/\"{version}\"'}},
                 body: JSON.stringify({{action: 'not-this', patient: {chart:?}}})}})
               .then(r => r.status);",
            decision = format!("{api}/decision"),
        ))
        .await;
    assert_eq!(other, 200);

    // This page still shows the version it read: its decision is refused, it
    // says why, and shows the item as it now is (no candidate left).
    browser.click("#not-this-0").await;
    browser
        .wait_for_text("#item-notice", |t| t == STAFF_EN.decided_elsewhere)
        .await;
    browser
        .wait_for_js("return document.querySelector('#not-this-0') ? null : true;")
        .await;
    assert!(browser.text("main").await.contains(STAFF_EN.no_candidates));
    browser.open_existing("#create-new").await;
    browser.close().await;
}

#[tokio::test]
async fn proposed_demographic_updates_are_accepted_or_refused_element_by_element() {
    let server = Server::start().await;
    let password = server.add_user("dr.osei", Role::Admin).await;
    // The EMR's integration, whose intakes prove who the patient is.
    let token = server.linking_token("check", Role::Admin).await;
    let browser = Browser::start_sized(TABLET).await;
    browser
        .open(&format!("{}/staff/review", server.base), "#signin")
        .await;
    // The same person again, with a new phone: linked, the new phone proposed.
    let first = submit(
        &browser,
        &token,
        "d-1",
        &registration("Amani", "Otieno", "1995-07-15", "+1 617 555 0001", "Boston"),
    )
    .await;
    let second = submit(
        &browser,
        &token,
        "d-2",
        &registration("Amani", "Otieno", "1995-07-15", "+1 617 555 0002", "Boston"),
    )
    .await;
    assert_eq!(second["outcome"], "linked", "{second}");
    let chart = first["patient"].as_str().unwrap().to_owned();
    browser.staff_sign_in("dr.osei", &password).await;
    browser
        .wait_for_text("#queue tbody", |t| t.contains(STAFF_EN.kind_demographics))
        .await;
    browser.click("#queue tbody a").await;
    browser.open_existing("#proposed").await;
    assert_eq!(
        browser.text("main h1").await,
        STAFF_EN.item_title_demographics
    );
    let rows = browser.text("#proposed tbody").await;
    assert!(
        rows.contains("+1 617 555 0001") && rows.contains("+1 617 555 0002"),
        "{rows}"
    );
    // Every element needs a choice before saving.
    let elements = browser
        .js("return [...document.querySelectorAll('#proposed tbody th')].map(e => e.textContent);")
        .await;
    let elements: Vec<String> = serde_json::from_value(elements).unwrap();
    let phone = elements.iter().position(|e| e == "phone").unwrap();
    for i in 0..elements.len() {
        let choice = if i == phone { "accept" } else { "refuse" };
        browser
            .click(&format!("label[for=proposed-{i}-{choice}]"))
            .await;
    }
    browser.screenshot("staff-demographics").await;
    browser.click("#save-proposed").await;
    browser
        .wait_for_text("#flash", |t| t == STAFF_EN.decision_saved)
        .await;
    let patient = fetch_with_token(&browser, &token, &format!("/fhir/{chart}")).await;
    assert_eq!(
        patient["telecom"][0]["value"], "+1 617 555 0002",
        "{patient}"
    );
    browser.close().await;
}

/// The value of the one-time secret shown in `key`'s notice, once it is there.
async fn secret(browser: &Browser, key: &str) -> String {
    browser
        .wait_for_js(&format!(
            "const s = document.querySelector('#{key}-secret'); return s && s.value ? s.value : null;"
        ))
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_admin_adds_a_user_who_signs_in_then_disables_them_adds_a_kiosk_and_a_token() {
    let server = Server::start().await;
    let password = server.add_user("ada", Role::Admin).await;
    let admin = Browser::start_sized(DESKTOP).await;
    admin
        .open(&format!("{}/staff/admin", server.base), "#signin")
        .await;
    admin.staff_sign_in("ada", &password).await;
    admin
        .wait_for_text("main h1", |t| t == STAFF_EN.adm_title)
        .await;
    assert_eq!(
        admin.attr("a[href='/staff/admin']", "aria-current").await,
        Some("page".to_owned())
    );
    admin
        .wait_for_text("#users tbody", |t| t.contains("ada"))
        .await;

    // A front-desk account; its password is shown once.
    admin.type_into("#new-username", "Frank").await;
    admin.click("#new-role option[value='front-desk']").await;
    admin.click("#add-user-submit").await;
    let frank_password = secret(&admin, "users").await;
    assert_eq!(frank_password.len(), backend::auth::users::PASSWORD_LENGTH);
    admin
        .wait_for_text("#users-notice", |t| t.contains("frank"))
        .await;
    admin
        .wait_for_text("#user-frank", |t| t.contains(STAFF_EN.role_front_desk))
        .await;

    // Frank signs in with it elsewhere; the admin screen is not for him.
    let desk = Browser::start_sized(DESKTOP).await;
    desk.open(&format!("{}/staff", server.base), "#signin")
        .await;
    desk.staff_sign_in("frank", &frank_password).await;
    assert_eq!(
        desk.js("return document.querySelector(\"a[href='/staff/admin']\");")
            .await,
        Value::Null
    );
    desk.open(&format!("{}/staff/admin", server.base), "#signed-in-as")
        .await;
    desk.wait_for_text("#admin-not-allowed", |t| t == STAFF_EN.adm_not_allowed)
        .await;
    assert_eq!(me_status(&desk).await, 200);

    // Disabled: his session ends at once.
    admin.click("#disable-frank").await;
    admin
        .wait_for_text("#users-notice", |t| {
            t == (STAFF_EN.adm_user_disabled)("frank")
        })
        .await;
    admin
        .wait_for_text("#user-frank", |t| t.contains(STAFF_EN.adm_disabled))
        .await;
    assert_eq!(me_status(&desk).await, 401);
    desk.close().await;

    // A kiosk for the registration form; its enrolment code is shown once.
    admin.open_existing("#kiosk-form-registration").await;
    admin.type_into("#new-kiosk-name", "Lobby").await;
    admin.click("#add-kiosk-submit").await;
    let code = secret(&admin, "kiosks").await;
    assert!(code.len() >= 20, "{code}");
    admin
        .wait_for_text("#kiosks tbody", |t| {
            t.contains("Lobby") && t.contains(STAFF_EN.adm_waiting)
        })
        .await;

    // A system token: shown once, works, and stops working when revoked.
    admin.type_into("#new-token-name", "EMR feed").await;
    admin.click("#create-token-submit").await;
    let token = secret(&admin, "tokens").await;
    assert!(token.starts_with(backend::auth::tokens::TOKEN_PREFIX));
    admin
        .wait_for_text("#token-emr-feed", |t| t.contains(STAFF_EN.adm_live))
        .await;
    let by_token = format!(
        "return fetch('/api/intakes/none', {{headers: {{authorization: 'Bearer ' + {token:?}}}}})
             .then(r => r.status);"
    );
    assert_eq!(admin.js(&by_token).await, json!(404));
    admin.js("window.scrollTo(0, 0); return null;").await;
    admin.screenshot("staff-admin").await;
    // The lists never carry a secret.
    let page = admin.text("main").await;
    let listed = admin.js("return document.querySelector('#users').outerHTML + document.querySelector('#kiosks').outerHTML + document.querySelector('#tokens').outerHTML;").await;
    let listed = listed.as_str().unwrap();
    for shown in [&frank_password, &code, &token] {
        assert!(!listed.contains(shown.as_str()), "{listed}");
    }
    assert!(page.contains("EMR feed"));

    admin.click("#revoke-token-emr-feed").await;
    admin
        .wait_for_text("#tokens-notice", |t| {
            t == (STAFF_EN.adm_revoked)("EMR feed")
        })
        .await;
    assert_eq!(admin.js(&by_token).await, json!(401));
    admin
        .wait_for_text("#tokens tbody", |t| t.contains(STAFF_EN.adm_revoked_state))
        .await;
    admin.close().await;
}
