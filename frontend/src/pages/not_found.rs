//! Any route the app does not know.

use leptos::prelude::*;

use crate::i18n::t;

#[component]
pub(crate) fn NotFound() -> impl IntoView {
    let s = t();
    view! {
        <h1>{s.not_found_title}</h1>
        <p>{s.not_found_body}</p>
        <p><a href="/">{s.nav_home}</a></p>
    }
}
