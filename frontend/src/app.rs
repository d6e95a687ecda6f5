//! The app shell and its routes.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::i18n::{switch_language, t};
use crate::pages::{
    intake::IntakePage, kiosk::KioskPage, landing::LandingPage, not_found::NotFound,
    preview::PreviewPage, staff::StaffPage,
};

/// The whole app: a skip link, the header, and the page for the route.
#[component]
pub(crate) fn App() -> impl IntoView {
    let s = t();
    view! {
        <Router>
            <a class="skip-link" href="#main">{s.skip_to_content}</a>
            <header class="app-header">
                <A href="/" attr:class="brand">{s.app_name}</A>
                <nav aria-label=s.nav_label>
                    <A href="/intake">{s.nav_intake}</A>
                    <A href="/kiosk">{s.nav_kiosk}</A>
                    <A href="/staff">{s.nav_staff}</A>
                    <button type="button" class="language-switch" lang=s.switch_to
                        on:click=move |_| switch_language(s.switch_to)>
                        {s.switch_to_label}
                    </button>
                </nav>
            </header>
            <main id="main" tabindex="-1">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=LandingPage/>
                    <Route path=path!("/intake") view=IntakePage/>
                    <Route path=path!("/intake/*rest") view=IntakePage/>
                    <Route path=path!("/kiosk") view=KioskPage/>
                    <Route path=path!("/staff") view=StaffPage/>
                    <Route path=path!("/staff/*rest") view=StaffPage/>
                    <Route path=path!("/preview/:id") view=PreviewPage/>
                </Routes>
            </main>
        </Router>
    }
}
