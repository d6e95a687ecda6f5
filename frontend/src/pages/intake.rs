//! `/intake/…`: a patient tells the clinic who they are, on their own phone.
//! The form is the clinic's registration Questionnaire (`Questionnaire/registration`;
//! the server stores Intake's own until the clinic loads theirs), sent to
//! `/api/intakes`, which finds or makes the patient's chart.

use std::sync::Arc;

use leptos::prelude::*;
use shared::form::CompiledForm;
use web_sys::Element;

use crate::api::{self, Answer};
use crate::components::dom::{add_text, region};
use crate::components::questionnaire::{Purpose, questionnaire_form};
use crate::i18n::t;
use shared::outcome::OperationOutcome;

/// The id of the registration form.
const REGISTRATION: &str = "registration";

pub(crate) fn intake_page(parent: &Element) {
    let s = t();
    add_text(parent, "h1", s.intake_title);
    add_text(parent, "p", s.intake_intro).set_class_name("lead");
    patient_form(parent, REGISTRATION.to_owned(), Purpose::Phone, |_, _| {});
}

/// What a page adds once a patient's form is on it, given the server's answer
/// (the kiosk: its "Done" button). A plain `fn`: one copy in the bundle.
pub(crate) type AfterForm = fn(&Element, RwSignal<Option<Answer<OperationOutcome>>>);

/// The form `id` in the patient's language, for a phone or the kiosk.
pub(crate) fn patient_form(parent: &Element, id: String, purpose: Purpose, after: AfterForm) {
    with_form(
        parent,
        id,
        false,
        Box::new(move |compiled, holder| {
            let questionnaire = format!("Questionnaire/{}", compiled.form.id);
            let form = compiled.form.localized(t().lang);
            let answer = questionnaire_form(holder, &Arc::new(form), questionnaire, purpose, None);
            after(holder, answer);
        }),
    );
}

/// What a page does with a form once it is loaded.
pub(crate) type ShowForm = Box<dyn Fn(CompiledForm, &Element)>;

/// Loads the compiled form `id` into `parent` and hands it to `show`, with
/// "Loading…" meanwhile and a plain message if there is no such form (under a
/// "not found" heading if `heading`: the page has none of its own yet). (One
/// loader, behind a `dyn`, for every page that shows a form: each generic copy
/// would cost the bundle a few kB.)
pub(crate) fn with_form(parent: &Element, id: String, heading: bool, show: ShowForm) {
    let s = t();
    let compiled = api::load(async move { api::form(&id).await });
    region(
        parent,
        move || compiled.get(),
        move |compiled, holder| match compiled {
            None => {
                add_text(holder, "p", s.loading);
            }
            Some(Some(compiled)) => show(compiled, holder),
            Some(None) => {
                if heading {
                    add_text(holder, "h1", s.not_found_title);
                }
                add_text(holder, "p", s.form_not_found);
            }
        },
    );
}
