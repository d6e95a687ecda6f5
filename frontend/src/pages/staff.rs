//! `/staff`: the staff side. Until sign-in exists, it shows whether the system works.

use leptos::prelude::*;
use shared::health::Status;

use crate::api;
use crate::i18n::t;

#[component]
pub(crate) fn StaffPage() -> impl IntoView {
    let s = t();
    let health = api::load(api::health());
    let status_text = |status: Status| match status {
        Status::Ok => t().status_ok,
        Status::Unavailable => t().status_unavailable,
    };
    view! {
        <h1>{s.staff_title}</h1>
        <p class="lead">{s.staff_intro}</p>
        <section aria-labelledby="status-title" class="card">
            <h2 id="status-title">{s.status_title}</h2>
                {move || match health.get() {
                    None => view! { <p>{s.loading}</p> }.into_any(),
                    Some(h) => match h {
                    Some(h) => view! {
                        <dl class="status" id="system-status">
                            <dt>{s.status_version}</dt><dd>{h.version}</dd>
                            <dt>{s.status_database}</dt><dd>{status_text(h.database.status)}</dd>
                        </dl>
                    }.into_any(),
                    None => view! { <p class="error-text">{s.server_unreachable}</p> }.into_any(),
                }}}
        </section>
    }
}
