//! The app shell and its routes.

use leptos::prelude::*;
use web_sys::Element;

use crate::components::dom::{add, add_class, add_text, bind, on, region, set, set_opt};
use crate::i18n::{switch_language, t};
use crate::pages::{
    intake::intake_page, invite::invite_page, kiosk::kiosk_page, landing::landing_page,
    not_found::not_found, preview::preview_page,
};
use crate::router::{Route, current_route};

/// The whole app, appended to `root`: a skip link, the header, and the page for
/// the route.
pub(crate) fn app(root: &Element) {
    let s = t();
    let route = current_route();
    let skip = add_class(root, "a", "skip-link");
    set(&skip, "href", "#main");
    crate::components::dom::text(&skip, s.skip_to_content);
    let header = add_class(root, "header", "app-header");
    let brand = add_text(&header, "a", s.app_name);
    set(&brand, "href", "/");
    brand.set_class_name("brand");
    let nav = add(&header, "nav");
    set(&nav, "aria-label", s.nav_label);
    for (href, page, label) in [
        ("/intake", Some(Route::Intake), s.nav_intake),
        ("/kiosk", Some(Route::Kiosk), s.nav_kiosk),
        // The staff app is a page (and a download) of its own.
        ("/staff", None, s.nav_staff),
    ] {
        let link = add_text(&nav, "a", label);
        set(&link, "href", href);
        // `aria-current="page"` on the link to where the patient is.
        bind(move || {
            set_opt(
                &link,
                "aria-current",
                route.with(|r| page.as_ref() == Some(r)).then_some("page"),
            );
        });
    }
    let switch = add_class(&nav, "button", "language-switch");
    set(&switch, "type", "button");
    set(&switch, "lang", s.switch_to);
    crate::components::dom::text(&switch, s.switch_to_label);
    on(&switch, "click", move |_| switch_language(s.switch_to));
    let main = add(root, "main");
    set(&main, "id", "main");
    set(&main, "tabindex", "-1");
    region(
        &main,
        move || route.get(),
        |route, page| match route {
            Route::Landing => landing_page(page),
            Route::Intake => intake_page(page),
            Route::Kiosk => kiosk_page(page),
            Route::Invite => invite_page(page),
            Route::Preview(id) => preview_page(page, id),
            Route::NotFound => not_found(page),
        },
    );
}
