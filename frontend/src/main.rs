//! The Intake web app: Leptos, rendered in the browser, compiled to WebAssembly.

// `#[component]` generates a public props struct for each component; in a binary
// crate nothing is reachable from outside anyway.
#![allow(unreachable_pub)]

mod api;
mod app;
mod components;
mod drafts;
mod i18n;
mod pages;
mod router;

use wasm_bindgen::JsCast as _;

/// Performance marks the benchmark (`cargo xtask bench forms`) reads.
pub(crate) fn mark(name: &str) {
    if let Some(performance) = leptos::prelude::window().performance() {
        let _ = performance.mark(name);
    }
}

fn main() {
    mark("intake:wasm-start");
    console_error_panic_hook::set_once();
    i18n::choose_language();
    let root = leptos::prelude::document()
        .get_element_by_id("app")
        .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok());
    match root {
        Some(root) => {
            // Replace the "Loading…" placeholder that index.html shows until now.
            root.set_inner_html("");
            leptos::mount::mount_to(root, app::App).forget();
        }
        None => leptos::mount::mount_to_body(app::App),
    }
}
