//! `/`: where a patient or a member of staff starts.

use leptos::prelude::*;

use crate::i18n::t;

#[component]
pub(crate) fn LandingPage() -> impl IntoView {
    let s = t();
    view! {
        <h1>{s.landing_title}</h1>
        <p class="lead">{s.landing_intro}</p>
        <p><a href="/intake" class="button button-primary">{s.landing_start}</a></p>
        <ul class="plain-list">
            <li><a href="/kiosk">{s.landing_kiosk}</a></li>
            <li><a href="/staff">{s.landing_staff}</a></li>
        </ul>
    }
}
