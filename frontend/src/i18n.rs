//! The strings of the language in use. All text lives in `shared::i18n`.
//!
//! The language is chosen once, as the app starts: the patient's own choice (the
//! switch in the header, kept in local storage), else the phone's language.

use std::sync::OnceLock;

use gloo_storage::{LocalStorage, Storage as _};
use shared::i18n::{EN, Strings, for_language};

const STORAGE_KEY: &str = "intake.language";

static STRINGS: OnceLock<&'static Strings> = OnceLock::new();

/// The strings for the current language.
pub(crate) fn t() -> &'static Strings {
    STRINGS.get().copied().unwrap_or(&EN)
}

/// Picks the language for this page load and tells the browser (`<html lang>`).
pub(crate) fn choose_language() {
    // Kept as a JSON string (`"es"`), as gloo's serde-based `set` wrote it.
    let chosen: Option<String> = LocalStorage::raw()
        .get_item(STORAGE_KEY)
        .ok()
        .flatten()
        .and_then(|kept| shared::json::from_str(&kept));
    let tag = chosen
        .or_else(|| leptos::prelude::window().navigator().language())
        .unwrap_or_default();
    let strings = for_language(&tag);
    let _ = STRINGS.set(strings);
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("lang", strings.lang);
    }
}

/// Switches to `tag` for this and later visits. The page reloads: every string
/// is read once, when it is drawn. The form on the page, if any, is carried over
/// the reload (answers, errors, focus: `questionnaire::carry_over`).
pub(crate) fn switch_language(tag: &str) {
    if LocalStorage::raw()
        .set_item(STORAGE_KEY, &shared::json::to_string(tag))
        .is_ok()
    {
        crate::components::questionnaire::carry_over();
        let _ = leptos::prelude::window().location().reload();
    }
}

/// The staff app's strings, in the language chosen for this page load.
pub(crate) fn st() -> &'static shared::i18n::StaffStrings {
    shared::i18n::staff_for_language(t().lang)
}
