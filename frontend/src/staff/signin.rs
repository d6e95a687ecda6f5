//! The sign-in form, shown at any `/staff` address while nobody is signed in.

use leptos::prelude::*;
use web_sys::Element;

use super::{Me, SignIn, Staff};
use crate::api;
use crate::components::dom::{
    add, add_class, add_text, bind, flag, focus, on, set, set_value, value_of,
};
use crate::i18n::st;

pub(crate) fn signin_page(parent: &Element, staff: Staff, why: Option<&'static str>) {
    let s = st();
    add_text(parent, "h1", s.signin_title);
    if let Some(why) = why {
        let notice = add_class(parent, "div", "notice notice-info");
        set(&notice, "id", "signin-notice");
        set(&notice, "role", "status");
        add_text(&notice, "p", why);
    }
    let form = add_class(parent, "form", "card signin");
    set(&form, "id", "signin");
    let field = |id: &str, label: &str, kind: &str, autocomplete: &str| {
        let wrap = add_class(&form, "div", "field");
        let label = add_text(&wrap, "label", label);
        set(&label, "for", id);
        let input = add(&wrap, "input");
        for (name, value) in [
            ("id", id),
            ("name", id),
            ("type", kind),
            ("autocomplete", autocomplete),
            ("autocapitalize", "none"),
            ("spellcheck", "false"),
        ] {
            set(&input, name, value);
        }
        flag(&input, "required", true);
        input
    };
    let username = field("username", s.username, "text", "username");
    let password = field("password", s.password, "password", "current-password");
    let error = add_class(&form, "p", "error-text");
    set(&error, "id", "signin-error");
    set(&error, "role", "alert");
    let button = add_class(&form, "button", "button button-primary");
    set(&button, "type", "submit");
    let pending = RwSignal::new(false);
    let message = RwSignal::new(String::new());
    {
        let button = button.clone();
        let error = error.clone();
        bind(move || {
            let busy = pending.get();
            flag(&button, "disabled", busy);
            button.set_text_content(Some(if busy { s.signing_in } else { s.sign_in }));
            error.set_text_content(Some(&message.get()));
            flag(&error, "hidden", message.with(String::is_empty));
        });
    }
    if why.is_none() {
        super::focus_soon(&username);
    }
    on(&form, "submit", move |event| {
        event.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let name = value_of(&username);
        let secret = value_of(&password);
        let password = password.clone();
        pending.set(true);
        leptos::task::spawn_local(async move {
            let body = format!(
                "{{\"username\":{},\"password\":{}}}",
                shared::json::to_string(name.as_str()),
                shared::json::to_string(secret.as_str())
            );
            let reply = api::staff("POST", "/api/staff/login", Some(&body), None).await;
            let _ = pending.try_set(false);
            let failed = match reply {
                Some(reply) if reply.status == 200 => match Me::from_reply(reply.body.as_ref()) {
                    Some(me) => {
                        staff.flash.set(None);
                        staff.session.set(SignIn::In(me));
                        return;
                    }
                    None => s.unreachable.to_owned(),
                },
                Some(reply) if reply.status == 429 => {
                    (s.signin_throttled)(reply.retry_after.unwrap_or(60).div_ceil(60))
                }
                Some(reply) if (400..500).contains(&reply.status) => s.signin_failed.to_owned(),
                _ => s.unreachable.to_owned(),
            };
            set_value(&password, "");
            let _ = message.try_set(failed);
            focus(&password);
        });
    });
}
