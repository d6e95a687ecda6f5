//! The app shell and its routes.

use leptos::prelude::*;

use crate::i18n::{switch_language, t};
use crate::pages::{
    intake::IntakePage, kiosk::KioskPage, landing::LandingPage, not_found::NotFound,
    preview::PreviewPage, staff::StaffPage,
};
use crate::router::{Route, current_route};

/// The whole app: a skip link, the header, and the page for the route.
#[component]
pub(crate) fn App() -> impl IntoView {
    let s = t();
    let route = current_route();
    // `aria-current="page"` on the link to where the patient is.
    let current = move |page: Route| move || (route.get() == page).then_some("page");
    view! {
        <a class="skip-link" href="#main">{s.skip_to_content}</a>
        <header class="app-header">
            <a href="/" class="brand">{s.app_name}</a>
            <nav aria-label=s.nav_label>
                <a href="/intake" aria-current=current(Route::Intake)>{s.nav_intake}</a>
                <a href="/kiosk" aria-current=current(Route::Kiosk)>{s.nav_kiosk}</a>
                <a href="/staff" aria-current=current(Route::Staff)>{s.nav_staff}</a>
                <button type="button" class="language-switch" lang=s.switch_to
                    on:click=move |_| switch_language(s.switch_to)>
                    {s.switch_to_label}
                </button>
            </nav>
        </header>
        <main id="main" tabindex="-1">
            {move || match route.get() {
                Route::Landing => LandingPage().into_any(),
                Route::Intake => IntakePage().into_any(),
                Route::Kiosk => KioskPage().into_any(),
                Route::Staff => StaffPage().into_any(),
                Route::Preview(id) => view! { <PreviewPage id=id/> }.into_any(),
                Route::NotFound => NotFound().into_any(),
            }}
        </main>
    }
}
