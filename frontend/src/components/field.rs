//! Accessible form fields: a label, an optional hint, an error message tied to the
//! input with `aria-describedby` and announced politely when it changes.

use leptos::prelude::*;
use wasm_bindgen::JsCast as _;
use web_sys::Element;

use super::dom::{
    add, add_class, add_text, bind, on, set, set_opt, set_value, target, text, value_of,
};
use crate::i18n::t;

/// Whether focus left for another form field (Tab, or a tap on another input).
///
/// Only then does leaving a field reveal its errors. When focus goes to a button, a
/// label or nowhere (a tap on "Check my details"), revealing them would push the
/// page down between press and release, and the tap would miss what it aimed at;
/// sending the form shows every error anyway.
pub(crate) fn focus_moved_to_field(ev: &web_sys::Event) -> bool {
    ev.dyn_ref::<web_sys::FocusEvent>()
        .and_then(web_sys::FocusEvent::related_target)
        .and_then(|t| t.dyn_into::<Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
}

/// The error line under a label. Always in the page (empty when there is no error)
/// so that screen readers announce it as soon as it changes.
pub(crate) fn error_message(parent: &Element, id: &str, error: Signal<Option<&'static str>>) {
    let line = add_class(parent, "p", "field-error");
    set(&line, "id", id);
    set(&line, "aria-live", "polite");
    bind(move || {
        line.set_text_content(None);
        if let Some(message) = error.get() {
            let hidden = add_class(&line, "span", "visually-hidden");
            text(&hidden, t().error_prefix);
            text(&hidden, " ");
            text(&line, message);
        }
    });
}

/// `field` or `field field-invalid`, as `error` says.
pub(crate) fn bind_field_class(element: &Element, error: Signal<Option<&'static str>>) {
    let element = element.clone();
    bind(move || {
        element.set_class_name(if error.get().is_some() {
            "field field-invalid"
        } else {
            "field"
        });
    });
}

/// `aria-invalid="true"` while `error` holds a message.
pub(crate) fn bind_invalid(element: &Element, error: Signal<Option<&'static str>>) {
    let element = element.clone();
    bind(move || set_opt(&element, "aria-invalid", error.get().map(|_| "true")));
}

/// The input's value follows `value`, and typing sets it.
pub(crate) fn bind_value(input: &Element, value: RwSignal<String>) {
    let shown = input.clone();
    bind(move || set_value(&shown, &value.get()));
    on(input, "input", move |ev| {
        if let Some(input) = target(&ev) {
            value.set(value_of(&input));
        }
    });
}

/// What a one-line text field is.
pub(crate) struct TextField {
    /// The input's id and name.
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) hint: Option<&'static str>,
    /// Shows "(optional)" in the label; fields are required otherwise.
    pub(crate) optional: bool,
    pub(crate) input_type: &'static str,
    pub(crate) autocomplete: &'static str,
    pub(crate) inputmode: Option<&'static str>,
}

/// A one-line text input with its label; `on_blur` runs when focus moves from the
/// input to another field.
pub(crate) fn text_field(
    parent: &Element,
    field: &TextField,
    value: RwSignal<String>,
    error: Signal<Option<&'static str>>,
    on_blur: impl Fn() + 'static,
) {
    let id = field.id;
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = match field.hint {
        Some(_) => format!("{hint_id} {error_id}"),
        None => error_id.clone(),
    };
    let wrapper = add(parent, "div");
    bind_field_class(&wrapper, error);
    let label = add_text(&wrapper, "label", field.label);
    set(&label, "for", id);
    if field.optional {
        text(&label, " ");
        add_text(&label, "span", t().optional).set_class_name("optional");
    }
    if let Some(hint) = field.hint {
        let hint = add_text(&wrapper, "p", hint);
        hint.set_class_name("hint");
        set(&hint, "id", &hint_id);
    }
    error_message(&wrapper, &error_id, error);
    let input = add(&wrapper, "input");
    set(&input, "id", id);
    set(&input, "name", id);
    set(&input, "type", field.input_type);
    set(&input, "autocomplete", field.autocomplete);
    set_opt(&input, "inputmode", field.inputmode);
    set(&input, "spellcheck", "false");
    set(&input, "aria-describedby", &described_by);
    set_opt(&input, "aria-required", (!field.optional).then_some("true"));
    bind_invalid(&input, error);
    bind_value(&input, value);
    on(&input, "blur", move |ev| {
        if focus_moved_to_field(&ev) {
            on_blur();
        }
    });
}
