//! Accessible form fields: a label, an optional hint, an error message tied to the
//! input with `aria-describedby` and announced politely when it changes.

use leptos::ev::FocusEvent;
use leptos::prelude::*;
use wasm_bindgen::JsCast as _;

use crate::i18n::t;

/// Whether focus left for another form field (Tab, or a tap on another input).
///
/// Only then does leaving a field reveal its errors. When focus goes to a button, a
/// label or nowhere (a tap on "Check my details"), revealing them would push the
/// page down between press and release, and the tap would miss what it aimed at;
/// sending the form shows every error anyway.
pub(crate) fn focus_moved_to_field(ev: &FocusEvent) -> bool {
    ev.related_target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
}

/// The error line under a label. Always in the page (empty when there is no error)
/// so that screen readers announce it as soon as it changes.
#[component]
pub(crate) fn ErrorMessage(id: String, error: Signal<Option<&'static str>>) -> impl IntoView {
    view! {
        <p class="field-error" id=id aria-live="polite">
            {move || error.get().map(|message| view! {
                <span class="visually-hidden">{t().error_prefix}" "</span>{message}
            })}
        </p>
    }
}

/// A one-line text input with its label.
#[component]
pub(crate) fn TextField(
    /// The input's id and name.
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    /// The message to show now, if any.
    error: Signal<Option<&'static str>>,
    /// Called when focus moves from the input to another field.
    #[prop(into)]
    on_blur: Callback<()>,
    #[prop(optional)] hint: Option<&'static str>,
    /// Shows "(optional)" in the label; fields are required otherwise.
    #[prop(optional)]
    optional: bool,
    #[prop(default = "text")] input_type: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = match hint {
        Some(_) => format!("{hint_id} {error_id}"),
        None => error_id.clone(),
    };
    view! {
        <div class=move || if error.get().is_some() { "field field-invalid" } else { "field" }>
            <label for=id>
                {label}
                {optional.then(|| view! { " " <span class="optional">{t().optional}</span> })}
            </label>
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{hint}</p> })}
            <ErrorMessage id=error_id error=error/>
            <input
                id=id
                name=id
                type=input_type
                autocomplete=autocomplete
                inputmode=inputmode
                spellcheck="false"
                aria-describedby=described_by
                aria-required=(!optional).then_some("true")
                aria-invalid=move || error.get().map(|_| "true")
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                on:blur=move |ev| if focus_moved_to_field(&ev) { on_blur.run(()) }
            />
        </div>
    }
}
