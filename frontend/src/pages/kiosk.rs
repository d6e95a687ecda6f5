//! `/kiosk`: the front-desk tablet, one patient after another.
//!
//! A browser that is not an enrolled kiosk (`GET /api/kiosk/me` refuses it) shows
//! the enrolment form, where staff type the kiosk's one-time code. An enrolled
//! kiosk shows its forms: one goes straight in, several are big buttons.
//!
//! Nothing of one patient may be left for the next. After the kiosk's idle time
//! without input it asks "Are you still there?" with a countdown; when that runs
//! out, or a few seconds after the answers are accepted, it wipes: the visit's
//! whole region (the form, its draft, every signal and listener under its
//! reactive owner) is dropped and built afresh, local and session storage are
//! cleared, the history entry is replaced, and focus goes back to the heading.
//! The kiosk never keeps a draft (`Purpose::Kiosk`).
//!
//! Every byte here is in the patient bundle, which is capped: plain cells where
//! nothing redraws, one signal type the app already has (`usize`), one request
//! function for both calls, no interval (a re-armed timeout).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use gloo_storage::{LocalStorage, SessionStorage, Storage as _};
use leptos::prelude::*;
use shared::kiosk::KioskMe;
use web_sys::Element;

use crate::api::{self, Answer};
use crate::components::dom::{
    add, add_class, add_text, bind, bind_text, flag, focus, on, region, set, value_of,
};
use crate::components::questionnaire::Purpose;
use crate::i18n::t;
use crate::pages::intake::patient_form;
use shared::outcome::OperationOutcome;

pub(crate) fn kiosk_page(parent: &Element) {
    let s = t();
    // 0: asking the server, 1: an enrolled kiosk (`kept`), 2: not one, 3: no answer.
    // (Plain numbers and a cell rather than a signal of the answer: each new
    // signal type costs the bundle its own copy of the reactive machinery.)
    let state = RwSignal::new(0usize);
    let kept: Kept = Rc::new(RefCell::new(None));
    let kiosk = add_class(parent, "div", "kiosk");
    let heading = add_text(&kiosk, "h1", s.kiosk_title);
    set(&heading, "id", "kiosk-title");
    set(&heading, "tabindex", "-1");
    // Set when a code typed on the enrolment form did not work.
    let refused = RwSignal::new(false);
    ask(Rc::clone(&kept), state, None, refused);
    region(
        &kiosk,
        move || state.get(),
        move |shown, holder| match shown {
            1 => {
                if let Some(me) = kept.borrow_mut().take() {
                    visits(holder, me);
                }
            }
            2 => enrol_form(holder, Rc::clone(&kept), state, refused),
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

/// Asks the server who this device is (with `code`: enrols it first), and shows
/// the answer. A code that does not work leaves the enrolment form up, saying so.
fn ask(kept: Kept, state: RwSignal<usize>, code: Option<String>, refused: RwSignal<bool>) {
    leptos::task::spawn_local(async move {
        let enrolling = code.is_some();
        let shown = match api::kiosk(code).await {
            Answer::Accepted(me) => {
                *kept.borrow_mut() = Some(me);
                1
            }
            Answer::Refused(_) => {
                let _ = refused.try_set(enrolling);
                2
            }
            Answer::Unreachable => 3,
        };
        let _ = state.try_set(shown);
    });
}

/// The form where staff type the kiosk's one-time code.
fn enrol_form(parent: &Element, kept: Kept, state: RwSignal<usize>, refused: RwSignal<bool>) {
    let s = t();
    let form = add_class(parent, "form", "form card kiosk-enrol");
    set(&form, "id", "kiosk-enrol");
    flag(&form, "novalidate", true);
    let field = add_class(&form, "div", "field");
    let label = add_text(&field, "label", s.kiosk_code_label);
    set(&label, "for", "kiosk-code");
    let input = add(&field, "input");
    set(&input, "id", "kiosk-code");
    set(&input, "type", "text");
    set(&input, "autocomplete", "off");
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
        ask(Rc::clone(&kept), state, Some(value_of(&input)), refused);
    });
}

thread_local! {
    /// When the patient last gave any input (ms since the epoch). One kiosk page
    /// at a time, so plain cells, not signals: nothing redraws from them.
    static LAST_INPUT: Cell<f64> = const { Cell::new(0.0) };
    /// When the answers of this visit were accepted; 0 until they are.
    static SENT_AT: Cell<f64> = const { Cell::new(0.0) };
    /// Set by the first input of a visit: a kiosk at rest has nothing to wipe.
    static ENGAGED: Cell<bool> = const { Cell::new(false) };
    /// The ticker that may run: a page that is gone stops its own.
    static TICKER: Cell<u32> = const { Cell::new(0) };
}

/// Runs `tick` every quarter of a second while `generation` is the ticker's.
/// (A re-armed timeout: the app already has one, an interval would be new code.)
fn every_quarter_second(tick: Rc<dyn Fn()>, generation: u32) {
    let _ = set_timeout_with_handle(
        move || {
            if TICKER.get() == generation {
                tick();
                every_quarter_second(tick, generation);
            }
        },
        Duration::from_millis(250),
    );
}

/// No form chosen yet.
const NONE: usize = usize::MAX;

/// An enrolled kiosk: one visit after another, each wiped when it ends.
fn visits(parent: &Element, me: KioskMe) {
    let s = t();
    // The form chosen on this visit (the only one, if there is one). Setting it,
    // even to the same value, drops the visit (its whole reactive owner) and
    // builds a new one.
    let first = if me.forms.len() == 1 { 0 } else { NONE };
    let chosen = RwSignal::new(first);
    ENGAGED.set(false);
    LAST_INPUT.set(js_sys::Date::now());
    SENT_AT.set(0.0);
    // Seconds left before the wipe while warning; 0 when not.
    let warning = RwSignal::new(0usize);
    let idle_ms = f64::from(me.idle_seconds) * 1000.0;
    let warn_ms = f64::from(me.warn_seconds) * 1000.0;
    // After sending: a few seconds to read the thank-you, never longer than idle.
    let thanks_ms = idle_ms.min(10_000.0);

    let wipe = move || {
        ENGAGED.set(false);
        warning.set(0);
        SENT_AT.set(0.0);
        // A draft, a language choice, anything a page kept: gone.
        LocalStorage::clear();
        SessionStorage::clear();
        let _ = window().history().and_then(|h| {
            h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/kiosk"))
        });
        // A new visit: the old one's owner, form and listeners are dropped (the
        // region rebuilds once this handler has returned).
        chosen.set(first);
        if let Some(heading) = document().get_element_by_id("kiosk-title") {
            focus(&heading);
        }
    };

    // Any input is a sign of life.
    if let Some(root) = document().document_element() {
        for event in ["pointerdown", "keydown", "input"] {
            on(&root, event, move |_| {
                LAST_INPUT.set(js_sys::Date::now());
                ENGAGED.set(true);
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
        if !ENGAGED.get() {
            return;
        }
        let idle = now - LAST_INPUT.get();
        if idle >= idle_ms + warn_ms {
            wipe();
        } else if idle >= idle_ms {
            let left = ((idle_ms + warn_ms - idle) / 1000.0).ceil() as usize;
            warning.set(left.max(1));
        }
    };
    let generation = TICKER.get() + 1;
    TICKER.set(generation);
    every_quarter_second(Rc::new(tick), generation);
    Owner::on_cleanup(move || {
        if TICKER.get() == generation {
            TICKER.set(generation + 1);
        }
    });

    let forms = Rc::new(me.forms);
    region(
        parent,
        move || chosen.get(),
        move |choice, holder| match forms.get(choice) {
            Some(form) => {
                add_text(holder, "p", s.kiosk_intro).set_class_name("lead");
                patient_form(holder, form.id.clone(), Purpose::Kiosk, after_form);
            }
            None => {
                let list = add_class(holder, "div", "kiosk-choices");
                for (n, form) in forms.iter().enumerate() {
                    let button = add_text(&list, "button", &form.title);
                    button.set_class_name("button button-primary kiosk-choice");
                    set(&button, "type", "button");
                    on(&button, "click", move |_| {
                        chosen.set(n);
                        // The button is gone with the list: the focus goes to
                        // the page's heading, not to `<body>`.
                        crate::components::dom::focus_later("kiosk-title".to_owned());
                    });
                }
            }
        },
    );

    // The warning: over everything, a dialog that takes the focus.
    let overlay = add_class(parent, "div", "kiosk-warning");
    set(&overlay, "id", "kiosk-warning");
    let dialog = add_class(&overlay, "div", "card");
    set(&dialog, "role", "alertdialog");
    set(&dialog, "aria-modal", "true");
    set(&dialog, "aria-labelledby", "kiosk-warning-title");
    set(&dialog, "aria-describedby", "kiosk-warning-text");
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
    bind(move || {
        let warning = warning.get() != 0;
        flag(&overlay, "hidden", !warning);
        if warning {
            focus(&still_here);
        }
    });
}

/// Once the answers are accepted, the thank-you stays a few seconds; the ticker
/// then wipes.
fn after_form(_: &Element, answer: RwSignal<Option<Answer<OperationOutcome>>>) {
    bind(move || {
        let sent = answer.with(|a| matches!(a, Some(Answer::Accepted(_))));
        if sent && SENT_AT.get() == 0.0 {
            SENT_AT.set(js_sys::Date::now());
        }
    });
}
