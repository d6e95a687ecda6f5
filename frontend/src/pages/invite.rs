//! `/i#{token}`: a patient opens the invitation the clinic sent to their phone.
//!
//! The token is in the fragment, which the browser never sends to a server; the
//! page takes it out of the address at once (`history.replaceState`, so it is not
//! in the history, a bookmark or a screenshot) and exchanges it for the
//! invitation's cookie. Then the birth date, and only then the form, prefilled by
//! the server from the clinic's chart. A reload (the fragment gone) asks the
//! server where the cookie stands.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use shared::draft::Draft;
use shared::form::CompiledForm;
use web_sys::Element;

use crate::api::{self, Invitation, InvitationStep};
use crate::components::dom::{
    add, add_class, add_text, append, el_class, focus, focus_later, on, region, set, set_value,
    text, value_of,
};
use crate::components::questionnaire::{Purpose, questionnaire_form};
use crate::i18n::t;

/// The id of the birth-date input.
const BIRTH_DATE: &str = "invite-birth-date";

/// The token in the address's fragment, taken out of the address.
fn take_token() -> Option<String> {
    let window = window();
    let hash = window.location().hash().ok()?;
    let token = hash.strip_prefix('#').unwrap_or(&hash).to_owned();
    if token.is_empty() {
        return None;
    }
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/i"));
    }
    Some(token)
}

/// Where the page is, as a number: a signal of a type the app already has costs
/// the bundle nothing more (each new signal type is another copy of the reactive
/// machinery), and the form itself waits beside it, not in it.
const LOADING: usize = 0;
const CONFIRM: usize = 1;
const FORM: usize = 2;
const LOCKED: usize = 3;
const INVALID: usize = 4;
const UNREACHABLE: usize = 5;
/// `WRONG + n`: a wrong birth date, `n` tries left.
const WRONG: usize = 16;

/// The loaded form: compiled, the questionnaire it answers, the prefill, and
/// whether that came from the chart.
type Loaded = Rc<RefCell<Option<(CompiledForm, String, Draft, bool)>>>;

/// The page's stage for a server answer; a form goes into `loaded`.
fn stage_of(answer: Invitation, loaded: &Loaded) -> usize {
    match answer {
        Invitation::Form(form) => {
            *loaded.borrow_mut() = Some(*form);
            FORM
        }
        Invitation::Confirm => CONFIRM,
        Invitation::Wrong(left) => WRONG + usize::try_from(left).unwrap_or(0),
        Invitation::Locked => LOCKED,
        Invitation::Invalid => INVALID,
        Invitation::Unreachable => UNREACHABLE,
    }
}

pub(crate) fn invite_page(parent: &Element) {
    let s = t();
    add_text(parent, "h1", s.invite_title);
    let token = take_token();
    let stage = RwSignal::new(LOADING);
    let loaded: Loaded = Rc::default();
    // The date as typed: still there when a wrong one draws the question again.
    let typed: Rc<RefCell<String>> = Rc::default();
    take(
        token.map_or(InvitationStep::Load, InvitationStep::Open),
        stage,
        &loaded,
    );
    region(
        parent,
        move || stage.get(),
        move |now, holder| match now {
            LOADING => {
                add_text(holder, "p", s.loading);
            }
            CONFIRM => confirm(holder, stage, None, &loaded, &typed),
            FORM => {
                let Some((compiled, questionnaire, draft, from_chart)) = loaded.borrow_mut().take()
                else {
                    return;
                };
                let intro = if from_chart {
                    s.invite_form_intro
                } else {
                    s.invite_form_intro_desk
                };
                add_text(holder, "p", intro).set_class_name("lead");
                let form = compiled.form.localized(s.lang);
                questionnaire_form(
                    holder,
                    &Arc::new(form),
                    questionnaire,
                    Purpose::Invited,
                    Some(draft),
                );
            }
            LOCKED => notice(holder, s.invite_locked),
            INVALID => notice(holder, s.invite_invalid),
            UNREACHABLE => notice(holder, s.server_unreachable),
            wrong => confirm(holder, stage, Some(wrong - WRONG), &loaded, &typed),
        },
    );
}

/// Takes `step` (the one place the page waits for the server), then moves to
/// the stage the answer says.
fn take(step: InvitationStep, stage: RwSignal<usize>, loaded: &Loaded) {
    let loaded = Rc::clone(loaded);
    leptos::task::spawn_local(async move {
        let answer = api::invitation(step).await;
        let _ = stage.try_set(stage_of(answer, &loaded));
    });
}

fn notice(parent: &Element, message: &str) {
    let box_ = add_class(parent, "div", "notice notice-error");
    set(&box_, "role", "alert");
    add_text(&box_, "p", message);
}

/// The birth-date question (after a wrong one, with the tries left).
fn confirm(
    parent: &Element,
    stage: RwSignal<usize>,
    tries_left: Option<usize>,
    loaded: &Loaded,
    typed: &Rc<RefCell<String>>,
) {
    let s = t();
    let form = add_class(parent, "form", "invite-confirm");
    set(&form, "novalidate", "");
    add_text(&form, "p", s.invite_intro).set_class_name("lead");
    let field = add_class(&form, "div", "field");
    let label = add_text(&field, "label", s.invite_birth_date);
    set(&label, "for", BIRTH_DATE);
    let input = add(&field, "input");
    set(&input, "type", "date");
    set(&input, "id", BIRTH_DATE);
    set(&input, "name", BIRTH_DATE);
    set(&input, "autocomplete", "bday");
    set(&input, "required", "");
    set(&input, "aria-describedby", "invite-error");
    set_value(&input, &typed.borrow());
    let error = el_class("p", "field-error");
    set(&error, "id", "invite-error");
    set(&error, "aria-live", "polite");
    append(&field, &error);
    let actions = add_class(&form, "div", "actions");
    let button = add_class(&actions, "button", "button button-primary");
    set(&button, "type", "submit");
    text(&button, s.invite_continue);
    // Once the page is drawn (the region inserts it after this returns).
    focus_later(BIRTH_DATE.to_owned());
    if let Some(left) = tries_left {
        // Drawn with the page: an alert is read out as it appears (a live
        // region only when it changes).
        set(&error, "role", "alert");
        text(&error, &format!("{} {left}", s.invite_wrong));
        set(&input, "aria-invalid", "true");
    }
    let (loaded, typed) = (Rc::clone(loaded), Rc::clone(typed));
    let mut sent = false;
    on(&form, "submit", move |event| {
        event.prevent_default();
        let date = value_of(&input);
        if date.is_empty() {
            // Empty, or not a whole date yet (the browser gives no value).
            error.set_text_content(Some(s.invite_date_missing));
            set(&input, "aria-invalid", "true");
        }
        if date.is_empty() || sent {
            focus(&input);
            return;
        }
        *typed.borrow_mut() = date.clone();
        // Once per form: whatever the answer, the page moves on (a wrong date
        // draws the question again, with the tries left).
        sent = true;
        take(InvitationStep::Confirm(date), stage, &loaded);
    });
}
