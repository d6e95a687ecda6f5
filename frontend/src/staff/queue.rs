//! `/staff/review`: the intakes waiting for a decision, oldest first, with how
//! long each has waited, its top score and grade, and a live count (asked again
//! every 10 seconds).

use leptos::prelude::*;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;
use web_sys::Element;

use super::Staff;
use super::model::{Kind, Queue, QueueItem};
use crate::api;
use crate::components::dom::{add, add_class, add_text, bind_text, region, set};
use crate::i18n::st;

/// How often the queue is asked again.
const REFRESH_MS: i32 = 10_000;

/// What the page knows of the queue.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    Loading,
    Queue(Queue),
    Unreachable,
}

pub(crate) fn queue_page(parent: &Element, staff: Staff) {
    let s = st();
    set(&add_text(parent, "h1", s.queue_title), "id", "queue-title");
    if staff.role() == Some(super::Role::FrontDesk) {
        add_text(parent, "p", s.queue_front_desk_note).set_class_name("lead");
    }
    if let Some(flash) = staff.flash.get_untracked() {
        let notice = add_class(parent, "div", "notice notice-success");
        set(&notice, "id", "flash");
        set(&notice, "role", "status");
        add_text(&notice, "p", flash);
        staff.flash.set(None);
    }
    let known = RwSignal::new(Known::Loading);
    let count = add_class(parent, "p", "queue-count");
    set(&count, "id", "queue-count");
    // Read out when it changes, without taking focus.
    set(&count, "aria-live", "polite");
    bind_text(&count, move || match known.get() {
        Known::Queue(q) => (s.queue_count)(q.count),
        Known::Loading => s.loading.to_owned(),
        Known::Unreachable => s.unreachable.to_owned(),
    });
    // Rows change only when the items do, not when only their ages do, so the
    // table is not rebuilt (and keyboard focus not lost) every 10 seconds.
    let rows = Memo::new(move |_| match known.get() {
        Known::Queue(q) => Some(
            q.items
                .into_iter()
                .map(|item| QueueItem {
                    age_seconds: 0,
                    ..item
                })
                .collect::<Vec<_>>(),
        ),
        _ => None,
    });
    let ages = Memo::new(move |_| match known.get() {
        Known::Queue(q) => q
            .items
            .into_iter()
            .map(|i| (i.task, i.age_seconds))
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    });
    region(
        parent,
        move || rows.get(),
        move |rows, holder| {
            let Some(rows) = rows else {
                return;
            };
            if rows.is_empty() {
                add_text(holder, "p", s.queue_empty).set_class_name("queue-empty");
                return;
            }
            let scroll = add_class(holder, "div", "table-scroll");
            let table = add_class(&scroll, "table", "queue");
            set(&table, "id", "queue");
            set(&table, "aria-labelledby", "queue-title");
            let head = add(&add(&table, "thead"), "tr");
            for label in [
                s.col_waiting,
                s.col_kind,
                s.col_patient,
                s.col_score,
                s.col_grade,
            ] {
                set(&add_text(&head, "th", label), "scope", "col");
            }
            let body = add(&table, "tbody");
            for item in rows {
                let row = add(&body, "tr");
                let age = add(&row, "td");
                let task = item.task.clone();
                bind_text(&age, move || {
                    ages.with(|ages| {
                        ages.iter()
                            .find(|(t, _)| *t == task)
                            .map(|(_, a)| (s.age)(*a))
                            .unwrap_or_default()
                    })
                });
                add_text(
                    &row,
                    "td",
                    if item.proposed_link {
                        s.kind_proposed_link
                    } else {
                        kind_label(item.kind)
                    },
                );
                let name = add(&row, "th");
                set(&name, "scope", "row");
                let link = add_text(&name, "a", &item.summary);
                set(
                    &link,
                    "href",
                    &format!("/staff/review/{}", api::path_segment(&item.task)),
                );
                set(&link, "id", &format!("open-{}", item.task));
                add_text(
                    &row,
                    "td",
                    &item
                        .top_score
                        .map_or_else(|| s.no_score.to_owned(), |v| format!("{v:.2}")),
                );
                add_text(&row, "td", item.grade.as_deref().map_or("", grade_label));
            }
        },
    );

    let refresh = move || {
        leptos::task::spawn_local(async move {
            let reply = staff.check(api::staff("GET", "/api/staff/review", None, None).await);
            let next = match reply {
                Some(reply) if reply.status == 200 => reply
                    .body
                    .as_ref()
                    .and_then(Queue::read)
                    .map_or(Known::Unreachable, Known::Queue),
                Some(reply) if reply.status == 401 => return,
                _ => Known::Unreachable,
            };
            // The page may be gone by now.
            if known.try_get_untracked().is_some_and(|k| k != next) {
                let _ = known.try_set(next);
            }
        });
    };
    refresh();
    let tick = Closure::<dyn Fn()>::new(refresh);
    let id = window()
        .set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            REFRESH_MS,
        )
        .ok();
    let tick = send_wrapper::SendWrapper::new(tick);
    Owner::on_cleanup(move || {
        if let Some(id) = id {
            window().clear_interval_with_handle(id);
        }
        drop(tick);
    });
}

/// What a kind of item asks, in a few words.
pub(crate) fn kind_label(kind: Kind) -> &'static str {
    let s = st();
    match kind {
        Kind::Match => s.kind_match,
        Kind::Demographics => s.kind_demographics,
        Kind::Delivery => s.kind_delivery,
    }
}

/// The matcher's grade, as a person reads it.
pub(crate) fn grade_label(grade: &str) -> &'static str {
    let s = st();
    match grade {
        // Only a link proposed for an intake without proof of identity waits
        // with a certain candidate.
        "certain" => s.grade_certain,
        "probable" => s.grade_probable,
        "possible" => s.grade_possible,
        _ => "",
    }
}
