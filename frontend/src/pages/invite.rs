//! `/i#{token}`: a patient opens the invitation the clinic sent to their phone.
//!
//! The token is in the fragment, which the browser never sends to a server; the
//! page takes it out of the address at once (`history.replaceState`, so it is not
//! in the history, a bookmark or a screenshot) and exchanges it for the
//! invitation's cookie. Then the birth date, and only then the form, prefilled by
//! the server from the clinic's chart. A reload (the fragment gone) asks the
//! server where the cookie stands.

use std::sync::Arc;

use leptos::prelude::*;
use web_sys::Element;

use crate::api::{self, Invitation};
use crate::components::dom::{
    add, add_class, add_text, append, el_class, focus, on, region, set, text, value_of,
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

pub(crate) fn invite_page(parent: &Element) {
    let s = t();
    add_text(parent, "h1", s.invite_title);
    let token = take_token();
    let state = RwSignal::new(None::<Invitation>);
    leptos::task::spawn_local(async move {
        let answer = match token {
            Some(token) => api::open_invitation(&token).await,
            None => api::invitation_form().await,
        };
        let _ = state.try_set(Some(answer));
    });
    region(
        parent,
        move || state.get(),
        move |answer, holder| match answer {
            None => {
                add_text(holder, "p", s.loading);
            }
            Some(Invitation::Confirm | Invitation::Wrong(_)) => confirm(holder, state),
            Some(Invitation::Form(loaded)) => {
                let (compiled, questionnaire, draft) = *loaded;
                add_text(holder, "p", s.invite_form_intro).set_class_name("lead");
                let form = compiled.form.localized(s.lang);
                questionnaire_form(
                    holder,
                    &Arc::new(form),
                    questionnaire,
                    Purpose::Invited,
                    Some(draft),
                );
            }
            Some(Invitation::Locked) => notice(holder, s.invite_locked),
            Some(Invitation::Invalid) => notice(holder, s.invite_invalid),
            Some(Invitation::Unreachable) => notice(holder, s.server_unreachable),
        },
    );
}

fn notice(parent: &Element, message: &str) {
    let box_ = add_class(parent, "div", "notice notice-error");
    set(&box_, "role", "alert");
    add_text(&box_, "p", message);
}

/// The birth-date question. A wrong date says so (and how many tries are left)
/// here; anything else replaces the page's state.
fn confirm(parent: &Element, state: RwSignal<Option<Invitation>>) {
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
    let error = el_class("p", "field-error");
    set(&error, "id", "invite-error");
    set(&error, "aria-live", "polite");
    append(&field, &error);
    let actions = add_class(&form, "div", "actions");
    let button = add_class(&actions, "button", "button button-primary");
    set(&button, "type", "submit");
    text(&button, s.invite_continue);
    focus(&input);
    if let Some(Invitation::Wrong(left)) = state.get_untracked() {
        text(&error, &format!("{} {left}", s.invite_wrong));
    }
    let pending = RwSignal::new(false);
    on(&form, "submit", move |event| {
        event.prevent_default();
        let date = value_of(&input);
        if date.is_empty() || pending.get_untracked() {
            focus(&input);
            return;
        }
        pending.set(true);
        leptos::task::spawn_local(async move {
            let answer = api::confirm_invitation(&date).await;
            let _ = pending.try_set(false);
            let _ = state.try_set(Some(answer));
        });
    });
}
