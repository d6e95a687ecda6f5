//! Automatic logoff: the server ends a session after 15 minutes without a
//! request; the screen warns after 13 minutes without input ("You will be signed
//! out in 2 minutes", with a button that keeps the session), and at 15 signs out
//! (the server's session too: the queue's polling keeps it alive) and shows the
//! sign-in form, dropping everything that was on screen.
//!
//! For tests, `?idle=SECONDS` on the page's address shortens the limit (the warning
//! comes at the same 13/15 of it). It can only shorten: a larger value is ignored.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;
use web_sys::Element;

use super::focus_soon;
use super::{SignIn, Staff};
use crate::api;
use crate::components::dom::{add_class, add_text, on, region, set};
use crate::i18n::st;

/// The server's idle timeout (`backend/src/auth/session.rs`), in milliseconds.
const LIMIT_MS: f64 = 15.0 * 60.0 * 1000.0;

/// The idle limit for this page load: 15 minutes, or less if `?idle=` asks.
fn limit_ms() -> f64 {
    let search = window().location().search().unwrap_or_default();
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("idle="))
        .and_then(|seconds| seconds.parse::<f64>().ok())
        .map(|seconds| seconds * 1000.0)
        .filter(|ms| *ms >= 1000.0 && *ms < LIMIT_MS)
        .unwrap_or(LIMIT_MS)
}

/// Watches for input while someone is signed in; the warning goes at the end of
/// `root`.
pub(crate) fn watch(root: &Element, staff: Staff) {
    let limit = limit_ms();
    let warn_at = limit * 13.0 / 15.0;
    let last_input = Rc::new(Cell::new(js_sys::Date::now()));
    let warning = RwSignal::new(false);
    let Some(page) = document().document_element() else {
        return;
    };
    for event in ["keydown", "pointerdown", "wheel", "input"] {
        let last_input = Rc::clone(&last_input);
        // Not while the warning shows: only its button keeps the session.
        on(&page, event, move |_| {
            if !warning.get_untracked() {
                last_input.set(js_sys::Date::now());
            }
        });
    }
    let tick = {
        let last_input = Rc::clone(&last_input);
        Closure::<dyn Fn()>::new(move || {
            let signed_in = staff.session.with_untracked(|s| matches!(s, SignIn::In(_)));
            if !signed_in {
                last_input.set(js_sys::Date::now());
                if warning.get_untracked() {
                    warning.set(false);
                }
                return;
            }
            let idle = js_sys::Date::now() - last_input.get();
            if idle >= limit {
                warning.set(false);
                // The screen is cleared at once; the session's CSRF token is
                // forgotten only after the logout that needs it.
                staff.flash.set(None);
                staff.session.set(SignIn::Out(Some(st().idle_signed_out)));
                leptos::task::spawn_local(async move {
                    let _ = api::staff("POST", "/api/staff/logout", None, None).await;
                    if !staff.session.with_untracked(|s| matches!(s, SignIn::In(_))) {
                        api::set_csrf(None);
                    }
                });
            } else if idle >= warn_at && !warning.get_untracked() {
                warning.set(true);
            }
        })
    };
    let _ = window()
        .set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), 500);
    // The app lives as long as the page.
    tick.forget();

    let s = st();
    region(
        root,
        move || warning.get(),
        move |shown, holder| {
            if !shown {
                return;
            }
            let dialog = add_class(holder, "div", "idle-warning");
            set(&dialog, "id", "idle-warning");
            set(&dialog, "role", "alertdialog");
            set(&dialog, "aria-labelledby", "idle-warning-title");
            set(&dialog, "aria-describedby", "idle-warning-text");
            set(
                &add_text(&dialog, "h2", s.idle_warning_title),
                "id",
                "idle-warning-title",
            );
            set(
                &add_text(&dialog, "p", s.idle_warning),
                "id",
                "idle-warning-text",
            );
            let stay = add_class(&dialog, "button", "button button-primary");
            set(&stay, "type", "button");
            set(&stay, "id", "stay-signed-in");
            stay.set_text_content(Some(s.stay_signed_in));
            let last_input = Rc::clone(&last_input);
            on(&stay, "click", move |_| {
                last_input.set(js_sys::Date::now());
                warning.set(false);
                // A request, so the server's idle clock starts again too.
                leptos::task::spawn_local(async move {
                    let reply = api::staff("GET", "/api/staff/me", None, None).await;
                    staff.check(reply);
                });
            });
            focus_soon(&stay);
        },
    );
}
