//! `/`: where a patient or a member of staff starts.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::i18n::t;

#[component]
pub(crate) fn LandingPage() -> impl IntoView {
    let s = t();
    view! {
        <h1>{s.landing_title}</h1>
        <p class="lead">{s.landing_intro}</p>
        <p><A href="/intake" attr:class="button button-primary">{s.landing_start}</A></p>
        <ul class="plain-list">
            <li><A href="/kiosk">{s.landing_kiosk}</A></li>
            <li><A href="/staff">{s.landing_staff}</A></li>
        </ul>
    }
}
