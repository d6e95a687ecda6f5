//! A patient's invitation in a real browser: the front desk finds a known patient
//! on the invitations screen and invites her (and cancels one sent by mistake);
//! the patient opens the link on her phone, confirms her birth date, finds the
//! form filled in from her chart, and sends it; it lands on her chart.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use backend::auth::Role;
use serde_json::{Value, json};
use shared::i18n::{EN, STAFF_EN};
use tests::{Browser, DESKTOP, Server};

const BIRTH_DATE: &str = "#invite-birth-date";
const FAMILY: &str = "#q-name_0__family";
const GIVEN: &str = "#q-name_0__given";
const PHONE_NUMBER: &str = "#q-phone";
const SUBMIT: &str = "form.questionnaire button[type=submit]";

/// `fetch` from the page with the admin token: (status, body).
async fn api(
    browser: &Browser,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> (u64, Value) {
    let script = "const [token, method, path, body] = arguments;
         return fetch(path, {method, headers: {'authorization': 'Bearer ' + token,
             'content-type': 'application/fhir+json'}, body: method === 'GET' ? undefined : JSON.stringify(body)})
           .then(async r => [r.status, await r.json()]);";
    let answer = browser
        .client
        .execute(
            script,
            vec![token.into(), method.into(), path.into(), body.clone()],
        )
        .await
        .unwrap();
    (answer[0].as_u64().unwrap(), answer[1].clone())
}

#[tokio::test]
async fn an_invited_patient_confirms_their_birth_date_finds_the_form_prefilled_and_sends_it() {
    let server = Server::start().await;
    let token = server.admin_token("front-desk-script").await;
    // The patient's phone, and the front desk's computer.
    let browser = Browser::start().await;
    browser.open(&format!("{}/", server.base), "main h1").await;
    let desk = Browser::start_sized(DESKTOP).await;

    // The clinic knows Ana; the front desk invites her to the registration form.
    let (status, patient) = api(
        &browser,
        &token,
        "POST",
        "/fhir/Patient",
        &json!({"resourceType": "Patient",
                "name": [{"family": "Lima", "given": ["Ana"]}],
                "birthDate": "1980-03-27", "gender": "female",
                "telecom": [{"system": "phone", "value": "+1 617 555 0100"}]}),
    )
    .await;
    assert_eq!(status, 201, "{patient}");
    let ana = patient["id"].as_str().unwrap().to_owned();
    // The front desk signs in, finds her by name and birth date, and invites her
    // to the registration form for an appointment.
    let password = server.add_user("dora", Role::FrontDesk).await;
    desk.open(&format!("{}/staff/invitations", server.base), "#signin")
        .await;
    desk.staff_sign_in("dora", &password).await;
    desk.open_existing("#invite-find").await;
    desk.type_into("#find-family", "Lima").await;
    desk.type_into("#find-given", "Ana").await;
    desk.type_into("#find-birth-date", "03271980").await;
    desk.click("#find").await;
    let chart = format!("#chart-{ana}");
    desk.open_existing(&chart).await;
    let whom = desk.text(".invite-whom").await;
    assert!(whom.contains("Lima, Ana"), "{whom}");
    assert!(whom.contains("1980-03-27"), "{whom}");
    desk.click(&chart).await;
    desk.client
        .execute(
            "document.querySelector('#invite-appointment').value = '2026-12-01T09:30';",
            vec![],
        )
        .await
        .unwrap();
    desk.scroll_to("#invite-details").await;
    desk.screenshot("staff-invite-whom").await;
    desk.click("#create-invitation").await;
    let created = desk
        .wait_for_text("#invitation-created", |t| !t.is_empty())
        .await;
    assert!(created.contains("Lima, Ana"), "{created}");
    let link = desk
        .js("return document.querySelector('#invitation-link').value;")
        .await;
    let link = link.as_str().unwrap().to_owned();
    let (_, secret) = link.split_once('#').unwrap();
    let secret = secret.to_owned();
    // No INTAKE_PUBLIC_URL: built from how the front desk reached the server.
    assert!(link.starts_with(&format!("{}/i#", server.base)), "{link}");
    // Copied for a text message (Chromium lets a page write its clipboard).
    desk.click("#invitation-link-copy").await;
    desk.wait_for_text("#invitation-link-copied", |t| t == STAFF_EN.inv_copied)
        .await;
    // The QR code is an image the browser could draw.
    assert_eq!(
        desk.wait_for_js(
            "const qr = document.querySelector('#invitation-qr');
                 return qr && qr.complete && qr.naturalWidth > 0 || null;"
        )
        .await,
        json!(true)
    );
    // The list shows it, sent, for her appointment.
    let row = desk
        .wait_for_text("#invitations tbody tr", |t| t.contains("Lima, Ana"))
        .await;
    assert!(row.contains(STAFF_EN.inv_status_sent), "{row}");
    // In the browser's time zone, named (the test's Chromium runs in UTC).
    assert!(
        row.contains("Dec 1, 2026") && row.contains("09:30"),
        "{row}"
    );
    assert!(row.contains("UTC") || row.contains("GMT"), "{row}");
    desk.screenshot("staff-invitation").await;

    // A second one, for someone new, sent by mistake: cancelled, its link dead.
    desk.click("#invite-another").await;
    desk.open_existing("#invite-find").await;
    desk.type_into("#find-family", "Okafor").await;
    desk.type_into("#find-given", "Chidi").await;
    desk.type_into("#find-birth-date", "11051992").await;
    desk.click("#find").await;
    desk.open_existing("#new-patient").await;
    desk.click("#new-patient").await;
    desk.click("#create-invitation").await;
    desk.open_existing("#invitation-created").await;
    let mistaken = desk
        .js("return document.querySelector('#invitation-link').value;")
        .await;
    let mistaken = mistaken.as_str().unwrap().to_owned();
    desk.wait_for_text("#invitations tbody", |t| t.contains("Okafor, Chidi"))
        .await;
    let cancel = desk
        .js("return document.querySelector('#invitations tbody tr button').id;")
        .await;
    desk.click(&format!("#{}", cancel.as_str().unwrap())).await;
    desk.wait_for_text("#invite-notice", |t| t == STAFF_EN.inv_cancelled)
        .await;
    let rows = desk
        .wait_for_text("#invitations tbody", |t| {
            t.contains(STAFF_EN.inv_status_cancelled)
        })
        .await;
    assert!(rows.contains("Lima, Ana"), "{rows}");
    desk.click("#sign-out").await;
    desk.open_existing("#signin").await;
    desk.close().await;
    browser.open(&mistaken, "main .notice-error").await;
    assert!(browser.text("main").await.contains(EN.invite_invalid));

    // The patient opens it: the token leaves the address at once, and nothing
    // about her shows before the birth date. (From another page: a fragment
    // change on the same page no longer redraws it.)
    browser.open(&format!("{}/", server.base), "main h1").await;
    browser.open(&link, BIRTH_DATE).await;
    let href = browser.js("return location.href;").await;
    assert_eq!(href, json!(format!("{}/i", server.base)));
    assert!(!href.as_str().unwrap().contains(&secret));
    let page = browser.text("main").await;
    assert!(page.contains(EN.invite_intro), "{page}");
    assert!(!page.contains("Lima"), "{page}");
    // The cookie is HttpOnly: the page's script cannot read it.
    assert_eq!(browser.js("return document.cookie;").await, json!(""));
    browser.screenshot("invite-confirm").await;

    // A wrong date first: she is told, with the tries left.
    browser.type_into(BIRTH_DATE, "03281980").await;
    browser
        .click("form.invite-confirm button[type=submit]")
        .await;
    let error = browser
        .wait_for_text("#invite-error", |t| t.contains(EN.invite_wrong))
        .await;
    assert!(error.ends_with(" 4"), "{error}");
    // ...announced, with what she typed kept and the focus on it to mend.
    assert_eq!(
        browser.attr("#invite-error", "role").await.as_deref(),
        Some("alert")
    );
    assert_eq!(
        browser
            .js(&format!(
                "return document.querySelector('{BIRTH_DATE}').value;"
            ))
            .await,
        json!("1980-03-28")
    );
    browser
        .wait_for_js("return document.activeElement.id === 'invite-birth-date' || null;")
        .await;
    browser.type_into(BIRTH_DATE, "03271980").await;
    browser
        .click("form.invite-confirm button[type=submit]")
        .await;

    // The form, filled in from her chart.
    browser.open_existing(FAMILY).await;
    let value = |css: &'static str| {
        let browser = &browser;
        async move {
            browser
                .js(&format!("return document.querySelector('{css}').value;"))
                .await
        }
    };
    assert_eq!(value(FAMILY).await, json!("Lima"));
    assert_eq!(value(GIVEN).await, json!("Ana"));
    assert_eq!(value("#q-birth-date").await, json!("1980-03-27"));
    assert_eq!(value(PHONE_NUMBER).await, json!("+1 617 555 0100"));
    assert_eq!(
        browser
            .js("return document.querySelector('#q-gender-0').checked;")
            .await,
        json!(true)
    );
    browser.screenshot("invite-prefilled").await;

    // She has a new phone number, and sends.
    browser
        .client
        .execute(
            "document.querySelector(arguments[0]).value = '';",
            vec![PHONE_NUMBER.into()],
        )
        .await
        .unwrap();
    browser.type_into(PHONE_NUMBER, "+1 617 555 0199").await;
    browser.click(SUBMIT).await;
    let thanks = browser
        .wait_for_text("#intake-sent", |t| t.contains(EN.sent_title))
        .await;
    assert!(thanks.contains(EN.sent_phone), "{thanks}");
    // Nothing of it is kept on the phone.
    assert_eq!(browser.js("return localStorage.length;").await, json!(0));

    // On Ana's chart: her response, and the new number proposed to staff.
    let (_, responses) = api(
        &browser,
        &token,
        "GET",
        &format!("/fhir/QuestionnaireResponse?subject=Patient/{ana}"),
        &Value::Null,
    )
    .await;
    assert_eq!(
        responses["entry"].as_array().map(Vec::len),
        Some(1),
        "{responses}"
    );
    let (_, tasks) = api(&browser, &token, "GET", "/fhir/Task", &Value::Null).await;
    let task = &tasks["entry"][0]["resource"];
    assert_eq!(task["focus"]["reference"], format!("Patient/{ana}"));
    assert!(
        task["contained"].to_string().contains("+1 617 555 0199"),
        "{task}"
    );
    let (_, patients) = api(&browser, &token, "GET", "/fhir/Patient", &Value::Null).await;
    assert_eq!(
        patients["entry"].as_array().map(Vec::len),
        Some(1),
        "no second chart"
    );

    // The link is spent: opened again, it says so.
    browser.open(&format!("{}/", server.base), "main h1").await;
    browser.open(&link, "main .notice-error").await;
    assert!(browser.text("main").await.contains(EN.invite_invalid));
    browser.close().await;
}

#[tokio::test]
async fn a_new_patient_finds_what_the_front_desk_typed_and_continue_without_a_date_says_what_is_missing()
 {
    let server = Server::start().await;
    let desk = Browser::start_sized(DESKTOP).await;
    let password = server.add_user("dora", Role::FrontDesk).await;
    // The front desk's home is the invitations screen.
    desk.open(&format!("{}/staff", server.base), "#signin")
        .await;
    desk.staff_sign_in("dora", &password).await;
    desk.open_existing("#invite-find").await;
    desk.type_into("#find-family", "Okafor").await;
    desk.type_into("#find-given", "Chidi").await;
    desk.type_into("#find-birth-date", "11051992").await;
    desk.click("#find").await;
    desk.open_existing("#new-patient").await;
    // No chart found: the one choice left is already chosen.
    assert_eq!(
        desk.js("return document.querySelector('#new-patient').checked;")
            .await,
        json!(true)
    );
    desk.click("#create-invitation").await;
    desk.open_existing("#invitation-created").await;
    let link = desk
        .js("return document.querySelector('#invitation-link').value;")
        .await;
    let link = link.as_str().unwrap().to_owned();
    desk.close().await;

    let phone = Browser::start().await;
    phone.open(&link, BIRTH_DATE).await;
    // Continue with no date: it says what is missing, and the focus stays.
    phone.click("form.invite-confirm button[type=submit]").await;
    phone
        .wait_for_text("#invite-error", |t| t == EN.invite_date_missing)
        .await;
    assert_eq!(phone.focused_id().await, "invite-birth-date");
    phone.type_into(BIRTH_DATE, "11051992").await;
    phone.click("form.invite-confirm button[type=submit]").await;
    phone.open_existing(FAMILY).await;
    // Filled in from what the front desk typed, and said so truly.
    let page = phone.text("main").await;
    assert!(page.contains(EN.invite_form_intro_desk), "{page}");
    assert!(!page.contains(EN.invite_form_intro), "{page}");
    let values = phone
        .js(&format!(
            "return ['{FAMILY}', '{GIVEN}', '#q-birth-date']
               .map(css => document.querySelector(css).value);"
        ))
        .await;
    assert_eq!(values, json!(["Okafor", "Chidi", "1992-11-05"]));
    phone.screenshot("invite-new-patient").await;
    phone.close().await;
}
