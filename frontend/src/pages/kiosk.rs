//! `/kiosk`: the front-desk tablet, one patient after another.
//!
//! A browser that is not an enrolled kiosk (`GET /api/kiosk/me` refuses it) shows
//! the enrolment form, where staff type the kiosk's one-time code. An enrolled
//! kiosk shows its forms: one goes straight in, several are big buttons.
//!
//! Nothing of one patient may be left for the next. After the kiosk's idle time
//! without input it asks "Are you still there?" with a countdown; when that runs
//! out, or a few seconds after the answers are sent (or on "Done", or "Start
//! over"), it wipes: the visit's whole region (the form, its draft, every signal
//! and listener under its reactive owner) is dropped and built afresh, local and
//! session storage are cleared, the history entry is replaced, and focus goes
//! back to the top. The kiosk never keeps a draft (`Purpose::Kiosk`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use gloo_storage::{LocalStorage, SessionStorage, Storage as _};
use leptos::prelude::*;
use shared::kiosk::KioskMe;
use web_sys::Element;

use crate::api::{self, Answer};
use crate::components::dom::{
    add, add_class, add_text, bind, bind_text, flag, focus, on, region, set, value_of,
};
use crate::components::questionnaire::{Purpose, questionnaire_form};
use crate::i18n::t;
use crate::pages::intake::with_form;

pub(crate) fn kiosk_page(parent: &Element) {
    let s = t();
    // 0: asking the server, 1: an enrolled kiosk (`kept`), 2: not one, 3: no answer.
    // (Plain numbers and a cell rather than a signal of the answer: each new
    // signal type costs the bundle its own copy of the reactive machinery.)
    let state = RwSignal::new(0u32);
    let kept: Kept = Rc::new(RefCell::new(None));
    let kiosk = add_class(parent, "div", "kiosk");
    let heading = add_text(&kiosk, "h1", s.kiosk_title);
    set(&heading, "id", "kiosk-title");
    set(&heading, "tabindex", "-1");
    {
        let kept = Rc::clone(&kept);
        leptos::task::spawn_local(async move { settle(&kept, state, api::kiosk_me().await) });
    }
    region(
        &kiosk,
        move || state.get(),
        move |shown, holder| match shown {
            1 => {
                if let Some(me) = kept.borrow_mut().take() {
                    visits(holder, me);
                }
            }
            2 => enrol_form(holder, Rc::clone(&kept), state),
            3 => {
                add_text(holder, "p", s.server_unreachable).set_class_name("error-text");
            }
            _ => {
                add_text(holder, "p", s.loading);
            }
        },
    );
}

/// Where the server's description of this kiosk waits to be shown.
type Kept = Rc<RefCell<Option<KioskMe>>>;

fn settle(kept: &Kept, state: RwSignal<u32>, answer: Answer<KioskMe>) {
    let shown = match answer {
        Answer::Accepted(me) => {
            *kept.borrow_mut() = Some(me);
            1
        }
        Answer::Refused(_) => 2,
        Answer::Unreachable => 3,
    };
    let _ = state.try_set(shown);
}

/// The form where staff type the kiosk's one-time code.
fn enrol_form(parent: &Element, kept: Kept, state: RwSignal<u32>) {
    let s = t();
    let refused = RwSignal::new(false);
    let form = add_class(parent, "form", "form card kiosk-enrol");
    set(&form, "id", "kiosk-enrol");
    flag(&form, "novalidate", true);
    add_text(&form, "h2", s.kiosk_enrol_title);
    add_text(&form, "p", s.kiosk_enrol_intro).set_class_name("lead");
    let field = add_class(&form, "div", "field");
    let label = add_text(&field, "label", s.kiosk_code_label);
    set(&label, "for", "kiosk-code");
    let input = add(&field, "input");
    for (name, value) in [
        ("id", "kiosk-code"),
        ("type", "text"),
        ("autocomplete", "off"),
        ("autocapitalize", "characters"),
        ("spellcheck", "false"),
    ] {
        set(&input, name, value);
    }
    let message = add_text(&form, "p", s.kiosk_enrol_refused);
    message.set_class_name("notice notice-error");
    set(&message, "id", "kiosk-enrol-refused");
    set(&message, "role", "alert");
    bind(move || flag(&message, "hidden", !refused.get()));
    let button = add_text(&form, "button", s.kiosk_enrol_button);
    button.set_class_name("button button-primary");
    set(&button, "type", "submit");
    on(&form, "submit", move |event| {
        event.prevent_default();
        let code = value_of(&input);
        let kept = Rc::clone(&kept);
        leptos::task::spawn_local(async move {
            match api::kiosk_enroll(&code).await {
                Answer::Refused(_) => {
                    let _ = refused.try_set(true);
                }
                answer => settle(&kept, state, answer),
            }
        });
    });
}

thread_local! {
    /// When the patient last gave any input (ms since the epoch). One kiosk page
    /// at a time, so plain cells, not signals: nothing redraws from them.
    static LAST_INPUT: Cell<f64> = const { Cell::new(0.0) };
    /// When the answers of this visit were accepted; 0 until they are.
    static SENT_AT: Cell<f64> = const { Cell::new(0.0) };
}

/// No form chosen yet.
const NONE: usize = usize::MAX;

/// An enrolled kiosk: one visit after another, each wiped when it ends.
fn visits(parent: &Element, me: KioskMe) {
    let s = t();
    // Bumping it drops the visit (its whole reactive owner) and builds a new one.
    let visit = RwSignal::new(0u32);
    // Set by the first input of a visit: a kiosk at rest has nothing to wipe.
    let engaged = RwSignal::new(false);
    LAST_INPUT.set(js_sys::Date::now());
    SENT_AT.set(0.0);
    // Seconds left before the wipe while warning; 0 when not.
    let warning = RwSignal::new(0u32);
    let idle_ms = f64::from(me.idle_seconds) * 1000.0;
    let warn_ms = f64::from(me.warn_seconds) * 1000.0;
    // After sending: a few seconds to read the thank-you, never longer than idle.
    let thanks_ms = idle_ms.min(10_000.0);

    let wipe = move || {
        engaged.set(false);
        warning.set(0);
        SENT_AT.set(0.0);
        // A draft, a language choice, anything a page kept: gone.
        let switched_language = LocalStorage::raw()
            .get_item(crate::i18n::STORAGE_KEY)
            .ok()
            .flatten()
            .is_some();
        LocalStorage::clear();
        SessionStorage::clear();
        let _ = window().history().and_then(|h| {
            h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/kiosk"))
        });
        if switched_language {
            // The next person starts in the kiosk's own language.
            let _ = window().location().reload();
        }
        // After the event that asked for it (a button of the visit) is handled.
        set_timeout(
            move || {
                visit.update(|n| *n += 1);
                window().scroll_to_with_x_and_y(0.0, 0.0);
                if let Some(heading) = document().get_element_by_id("kiosk-title") {
                    focus(&heading);
                }
            },
            Duration::ZERO,
        );
    };

    // Any input is a sign of life.
    if let Some(root) = document().document_element() {
        for event in ["pointerdown", "keydown", "input"] {
            on(&root, event, move |_| {
                LAST_INPUT.set(js_sys::Date::now());
                engaged.set(true);
                warning.set(0);
            });
        }
    }
    let tick = move || {
        let now = js_sys::Date::now();
        let sent = SENT_AT.get();
        if sent > 0.0 {
            if now - sent >= thanks_ms {
                wipe();
            }
            return;
        }
        if !engaged.get_untracked() {
            return;
        }
        let idle = now - LAST_INPUT.get();
        if idle >= idle_ms + warn_ms {
            wipe();
        } else if idle >= idle_ms {
            let left = ((idle_ms + warn_ms - idle) / 1000.0).ceil() as u32;
            warning.set(left.max(1));
        }
    };
    if let Ok(handle) = set_interval_with_handle(tick, Duration::from_millis(250)) {
        Owner::on_cleanup(move || handle.clear());
    }

    let forms = Arc::new(me.forms);
    region(
        parent,
        move || visit.get(),
        move |_, holder| {
            let forms = Arc::clone(&forms);
            // The form chosen on this visit (the only one, if there is one).
            let chosen = RwSignal::new(if forms.len() == 1 { 0 } else { NONE });
            region(
                holder,
                move || chosen.get(),
                move |choice, holder| match forms.get(choice) {
                    Some(form) => {
                        add_text(holder, "p", s.kiosk_intro).set_class_name("lead");
                        with_form(
                            holder,
                            form.id.clone(),
                            false,
                            Box::new(move |compiled, holder| {
                                let questionnaire = format!("Questionnaire/{}", compiled.form.id);
                                let form = Arc::new(compiled.form.localized(t().lang));
                                let answer = questionnaire_form(
                                    holder,
                                    &form,
                                    questionnaire,
                                    Purpose::Kiosk,
                                );
                                let accepted =
                                    move || answer.with(|a| matches!(a, Some(Answer::Accepted(_))));
                                let done = add_text(holder, "button", s.done);
                                done.set_class_name("button button-primary kiosk-done");
                                set(&done, "type", "button");
                                on(&done, "click", move |_| wipe());
                                bind(move || {
                                    let sent = accepted();
                                    flag(&done, "hidden", !sent);
                                    if sent && SENT_AT.get() == 0.0 {
                                        SENT_AT.set(js_sys::Date::now());
                                    }
                                });
                            }),
                        );
                    }
                    None => {
                        let list = add_class(holder, "div", "kiosk-choices");
                        set(&list, "role", "group");
                        set(&list, "aria-labelledby", "kiosk-choose");
                        set(&add_text(&list, "h2", s.kiosk_choose), "id", "kiosk-choose");
                        for (n, form) in forms.iter().enumerate() {
                            let button = add_text(&list, "button", &form.title);
                            button.set_class_name("button button-primary kiosk-choice");
                            set(&button, "type", "button");
                            on(&button, "click", move |_| chosen.set(n));
                        }
                    }
                },
            );
        },
    );

    let start_over = add_text(parent, "button", s.start_over);
    set(&start_over, "type", "button");
    start_over.set_class_name("button button-secondary start-over");
    on(&start_over, "click", move |_| wipe());

    // The warning: over everything, a dialog that takes the focus.
    let overlay = add_class(parent, "div", "kiosk-warning");
    set(&overlay, "id", "kiosk-warning");
    let dialog = add_class(&overlay, "div", "card");
    for (name, value) in [
        ("role", "alertdialog"),
        ("aria-modal", "true"),
        ("aria-labelledby", "kiosk-warning-title"),
        ("aria-describedby", "kiosk-warning-text"),
    ] {
        set(&dialog, name, value);
    }
    set(
        &add_text(&dialog, "h2", s.idle_title),
        "id",
        "kiosk-warning-title",
    );
    let line = add(&dialog, "p");
    set(&line, "id", "kiosk-warning-text");
    bind_text(&line, move || {
        format!("{} {} {}", s.idle_clears_in, warning.get(), s.idle_seconds)
    });
    let still_here = add_text(&dialog, "button", s.idle_still_here);
    still_here.set_class_name("button button-primary");
    set(&still_here, "type", "button");
    set(&still_here, "id", "kiosk-still-here");
    // The click itself is input: the listener on the document clears the warning.
    let mut was_warning = false;
    bind(move || {
        let warning = warning.get() != 0;
        flag(&overlay, "hidden", !warning);
        if warning && !was_warning {
            focus(&still_here);
        }
        was_warning = warning;
    });
}
