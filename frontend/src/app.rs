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

/// The patient app, appended to `root`: the shell, and the page for the route.
pub(crate) fn app(root: &Element) {
    shell(root, current_route(), true, |route, page| match route {
        Route::Landing => landing_page(page),
        Route::Intake => intake_page(page),
        Route::Invite => invite_page(page),
        Route::Preview(id) => preview_page(page, id),
        // The kiosk is an app of its own (a link to it loads it).
        Route::Kiosk | Route::NotFound => not_found(page),
    });
}

/// The kiosk app: the shell without the links away (a patient at the front desk
/// has nowhere else to go, and no draft may be kept), and the kiosk page.
pub(crate) fn kiosk_app(root: &Element) {
    shell(root, signal(Route::Kiosk).0, false, |_, page| {
        kiosk_page(page);
    });
}

/// A skip link, the header (with the app's links when `links`, and the language
/// switch), and `page` for the route.
fn shell(root: &Element, route: ReadSignal<Route>, links: bool, page: fn(Route, &Element)) {
    let s = t();
    let skip = add_class(root, "a", "skip-link");
    set(&skip, "href", "#main");
    crate::components::dom::text(&skip, s.skip_to_content);
    let header = add_class(root, "header", "app-header");
    let brand = add_text(&header, if links { "a" } else { "span" }, s.app_name);
    if links {
        set(&brand, "href", "/");
    }
    brand.set_class_name("brand");
    let nav = add(&header, "nav");
    set(&nav, "aria-label", s.nav_label);
    let apps = [
        ("/intake", Some(Route::Intake), s.nav_intake),
        // The kiosk and staff apps are pages (and downloads) of their own.
        ("/kiosk", None, s.nav_kiosk),
        ("/staff", None, s.nav_staff),
    ];
    for (href, page, label) in apps.into_iter().filter(|_| links) {
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
    // Focus comes back to it after the reload (`questionnaire::carry_over`).
    set(&switch, "id", "language-switch");
    set(&switch, "lang", s.switch_to);
    crate::components::dom::text(&switch, s.switch_to_label);
    on(&switch, "click", move |_| switch_language(s.switch_to));
    let main = add(root, "main");
    set(&main, "id", "main");
    set(&main, "tabindex", "-1");
    region(&main, move || route.get(), page);
    // Back from a language switch: the focus where it was.
    crate::components::questionnaire::restore_focus();
}
