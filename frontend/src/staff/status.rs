//! `/staff`: where a signed-in member of staff starts, and whether the system works.

use leptos::prelude::*;
use shared::health::Status;
use web_sys::Element;

use crate::api;
use crate::components::dom::{add, add_class, add_text, region, set};
use crate::i18n::st;

pub(crate) fn home_page(parent: &Element) {
    let s = st();
    let health = api::load(api::health());
    add_text(parent, "h1", s.home_title);
    add_text(parent, "p", s.home_intro).set_class_name("lead");
    let queue = add_text(&add(parent, "p"), "a", s.nav_queue);
    set(&queue, "href", "/staff/review");
    queue.set_class_name("button button-primary");
    let section = add_class(parent, "section", "card");
    set(&section, "aria-labelledby", "status-title");
    set(
        &add_text(&section, "h2", s.status_title),
        "id",
        "status-title",
    );
    region(
        &section,
        move || health.get(),
        move |health, holder| match health {
            None => {
                add_text(holder, "p", s.loading);
            }
            Some(Some(h)) => {
                let list = add_class(holder, "dl", "status");
                set(&list, "id", "system-status");
                add_text(&list, "dt", s.status_version);
                add_text(&list, "dd", &h.version);
                add_text(&list, "dt", s.status_database);
                add_text(
                    &list,
                    "dd",
                    match h.database.status {
                        Status::Ok => s.status_ok,
                        Status::Unavailable => s.status_unavailable,
                    },
                );
            }
            Some(None) => {
                add_text(holder, "p", s.unreachable).set_class_name("error-text");
            }
        },
    );
}
