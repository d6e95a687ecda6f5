//! The Intake web apps: Leptos, rendered in the browser, compiled to WebAssembly.
//!
//! Three apps share this library, each its own wasm so a patient's phone never
//! downloads the staff screens or the kiosk's: the patient app (`src/main.rs`,
//! served at `/`), the kiosk app (`src/bin/kiosk.rs`, served at `/kiosk`) and the
//! staff app (`src/bin/staff.rs`, served at `/staff`). Each binary calls one entry
//! point below; link-time optimisation leaves the other apps' code out.

mod api;
mod app;
mod components;
mod drafts;
mod i18n;
mod pages;
mod router;
mod staff;

use wasm_bindgen::JsCast as _;

/// Performance marks the benchmark (`cargo xtask bench forms`) reads.
pub(crate) fn mark(name: &str) {
    if let Some(performance) = leptos::prelude::window().performance() {
        let _ = performance.mark(name);
    }
}

/// Today in the patient's own time zone.
pub(crate) fn today() -> shared::date::Date {
    let now = js_sys::Date::new_0();
    // The browser's calendar always yields a real date; fall back to the epoch
    // only if it somehow did not.
    let year = u16::try_from(now.get_full_year()).unwrap_or(1970);
    let month = u8::try_from(now.get_month() + 1).unwrap_or(1);
    let day = u8::try_from(now.get_date()).unwrap_or(1);
    shared::date::Date::new(year, month, day)
        .unwrap_or_else(|_| shared::date::Date::from_days_since_epoch(0))
}

/// Starts the patient app (`/`, `/intake`, `/i`, `/preview/…`).
pub fn start_patient_app() {
    mark("intake:wasm-start");
    i18n::choose_language();
    mount(app::app);
}

/// Starts the kiosk app (`/kiosk`): the front desk's tablet.
pub fn start_kiosk_app() {
    i18n::choose_language();
    mount(app::kiosk_app);
}

/// Starts the staff app (`/staff`, `/staff/review`).
pub fn start_staff_app() {
    i18n::choose_language();
    mount(staff::app);
}

/// Replaces the "Loading…" placeholder of the page with the app `build` makes.
fn mount(build: fn(&leptos::web_sys::Element)) {
    let document = leptos::prelude::document();
    let root = document
        .get_element_by_id("app")
        .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
        .or_else(|| document.body());
    if let Some(root) = root {
        // Replace the "Loading…" placeholder that index.html shows until now.
        root.set_inner_html("");
        let parent: leptos::web_sys::Element = root.clone().into();
        // The app builds its own elements (`components::dom`) under the reactive
        // owner that mounting makes.
        leptos::mount::mount_to(root, move || build(&parent)).forget();
    }
}
