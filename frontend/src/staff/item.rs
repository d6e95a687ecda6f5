//! `/staff/review/{task}`: one item of the queue. For "which patient is this?",
//! the intake's demographics and each candidate side by side, field by field, with
//! each field's agreement (a colour, an icon and a word) and weight, each
//! candidate's score and recent history, and the decisions: link, create a new
//! patient (both after the user's password again), not this patient. For
//! proposed updates, accept or refuse each element; for a failed delivery, retry.
//!
//! Every decision carries the item's version (`If-Match`): if someone else decided
//! first, the server answers 412 and the page says so and shows the item afresh.
//! Front-desk users see no answers (the server does not send them) and no
//! decision buttons (the server would refuse them).

use leptos::prelude::*;
use shared::json::Json;
use wasm_bindgen::JsCast as _;
use web_sys::{Element, HtmlDialogElement};

use super::model::{self, FIELDS, Item, Kind};
use super::queue::grade_label;
use super::{Staff, focus_soon};
use crate::api;
use crate::components::dom::{
    add, add_class, add_text, bind, checked, flag, on, region, set, set_value, text, value_of,
};
use crate::i18n::st;
use crate::router::navigate;

/// What the page knows of the item.
#[derive(Clone, Debug, PartialEq)]
enum Loaded {
    Loading,
    Found(Box<Item>),
    NotFound,
    Unreachable,
}

/// A decision, as the review API takes it.
#[derive(Clone, Debug, PartialEq)]
enum Decision {
    /// `Patient/<id>`.
    Link(String),
    Create,
    NotThis(String),
    Update {
        accept: Vec<String>,
        refuse: Vec<String>,
    },
    Retry,
}

impl Decision {
    /// Link and create merge records: the user's password is asked again.
    fn needs_password(&self) -> bool {
        matches!(self, Decision::Link(_) | Decision::Create)
    }

    fn body(&self, password: &str) -> String {
        let q = |s: &str| shared::json::to_string(s);
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|i| q(i)).collect();
            format!("[{}]", quoted.join(","))
        };
        match self {
            Decision::Link(patient) => format!(
                "{{\"action\":\"link\",\"patient\":{},\"password\":{}}}",
                q(patient),
                q(password)
            ),
            Decision::Create => format!("{{\"action\":\"create\",\"password\":{}}}", q(password)),
            Decision::NotThis(patient) => {
                format!("{{\"action\":\"not-this\",\"patient\":{}}}", q(patient))
            }
            Decision::Update { accept, refuse } => format!(
                "{{\"action\":\"update\",\"accept\":{},\"refuse\":{}}}",
                list(accept),
                list(refuse)
            ),
            Decision::Retry => "{\"action\":\"retry\"}".to_owned(),
        }
    }
}

/// A message above the item.
#[derive(Clone, Debug, PartialEq)]
enum Notice {
    Done(&'static str),
    Problem(String),
}

/// Everything a decision needs from the page.
#[derive(Clone, Copy)]
struct Page {
    staff: Staff,
    task: StoredValue<String>,
    loaded: RwSignal<Loaded>,
    notice: RwSignal<Option<Notice>>,
    /// The decision waiting for the password dialog.
    pending: RwSignal<Option<Decision>>,
    /// A decision on its way.
    sending: RwSignal<bool>,
    /// The password dialog's error line.
    reauth_error: RwSignal<Option<String>>,
}

impl Page {
    fn reload(self) {
        let task = self.task.get_value();
        leptos::task::spawn_local(async move {
            let path = format!("/api/staff/review/{}", api::path_segment(&task));
            let reply = self.staff.check(api::staff("GET", &path, None, None).await);
            let loaded = match reply {
                Some(r) if r.status == 200 => r
                    .body
                    .as_ref()
                    .and_then(Item::read)
                    .map_or(Loaded::Unreachable, |i| Loaded::Found(Box::new(i))),
                Some(r) if r.status == 401 => return,
                Some(r) if r.status == 404 || r.status == 410 => Loaded::NotFound,
                _ => Loaded::Unreachable,
            };
            let _ = self.loaded.try_set(loaded);
        });
    }

    fn version(self) -> Option<String> {
        self.loaded.with_untracked(|l| match l {
            Loaded::Found(item) => Some(item.version.clone()),
            _ => None,
        })
    }

    /// Starts `decision`, asking for the password first if it needs it.
    fn decide(self, decision: Decision, dialog: &HtmlDialogElement) {
        if decision.needs_password() {
            self.reauth_error.set(None);
            self.pending.set(Some(decision));
            let _ = dialog.show_modal();
        } else {
            self.send(decision, String::new(), None);
        }
    }

    /// Sends `decision` with the item's version.
    fn send(self, decision: Decision, password: String, dialog: Option<HtmlDialogElement>) {
        let Some(version) = self.version() else {
            return;
        };
        if self.sending.get_untracked() {
            return;
        }
        self.sending.set(true);
        let s = st();
        let task = self.task.get_value();
        leptos::task::spawn_local(async move {
            let path = format!("/api/staff/review/{}/decision", api::path_segment(&task));
            let if_match = format!("W/\"{version}\"");
            let body = decision.body(&password);
            drop(password);
            let reply = api::staff("POST", &path, Some(&body), Some(&if_match)).await;
            let _ = self.sending.try_set(false);
            let close = || {
                if let Some(dialog) = &dialog {
                    dialog.close();
                }
            };
            let Some(reply) = reply else {
                close();
                let _ = self
                    .notice
                    .try_set(Some(Notice::Problem(s.unreachable.to_owned())));
                return;
            };
            match reply.status {
                200 => {
                    close();
                    let completed = reply
                        .body
                        .as_ref()
                        .and_then(|b| b.get("status"))
                        .and_then(Json::as_str)
                        == Some("completed");
                    if completed {
                        self.staff.flash.set(Some(s.decision_saved));
                        navigate("/staff/review");
                    } else {
                        let done = if matches!(decision, Decision::NotThis(_)) {
                            s.candidate_removed
                        } else {
                            s.decision_saved
                        };
                        let _ = self.notice.try_set(Some(Notice::Done(done)));
                        self.reload();
                    }
                }
                // With a password: wrong password, unless the session is what ended.
                401 if decision.needs_password() => {
                    let me = api::staff("GET", "/api/staff/me", None, None).await;
                    if me.is_some_and(|m| m.status == 200) {
                        let _ = self.reauth_error.try_set(Some(s.reauth_failed.to_owned()));
                    } else {
                        close();
                        self.staff.signed_out(Some(s.session_ended));
                    }
                }
                401 => self.staff.signed_out(Some(s.session_ended)),
                // Wrong passwords count towards the account's lockout, as at login.
                429 if decision.needs_password() => {
                    let wait = (s.signin_throttled)(reply.retry_after.unwrap_or(60).div_ceil(60));
                    let _ = self.reauth_error.try_set(Some(wait));
                }
                412 | 428 | 409 => {
                    close();
                    let message = if reply.status == 409 {
                        s.already_decided
                    } else {
                        s.decided_elsewhere
                    };
                    let _ = self
                        .notice
                        .try_set(Some(Notice::Problem(message.to_owned())));
                    self.reload();
                }
                403 => {
                    close();
                    let _ = self
                        .notice
                        .try_set(Some(Notice::Problem(s.not_allowed.to_owned())));
                }
                status => {
                    close();
                    let message = match reply.diagnostics() {
                        Some(why) if (400..500).contains(&status) => format!("{} {why}", s.refused),
                        _ => s.unreachable.to_owned(),
                    };
                    let _ = self.notice.try_set(Some(Notice::Problem(message)));
                }
            }
        });
    }
}

pub(crate) fn item_page(parent: &Element, staff: Staff, task: String) {
    let s = st();
    let page = Page {
        staff,
        task: StoredValue::new(task),
        loaded: RwSignal::new(Loaded::Loading),
        notice: RwSignal::new(None),
        pending: RwSignal::new(None),
        sending: RwSignal::new(false),
        reauth_error: RwSignal::new(None),
    };
    let back = add_text(&add_class(parent, "p", "back"), "a", s.back_to_queue);
    set(&back, "href", "/staff/review");
    let dialog = reauth_dialog(parent, page);
    let role = staff.role();
    region(
        parent,
        move || page.loaded.get(),
        move |loaded, holder| match loaded {
            Loaded::Loading => {
                add_text(holder, "h1", s.queue_title);
                add_text(holder, "p", s.loading);
            }
            Loaded::NotFound => {
                add_text(holder, "h1", s.queue_title);
                notice_region(holder, page);
                add_text(holder, "p", s.item_not_found).set_class_name("error-text");
            }
            Loaded::Unreachable => {
                add_text(holder, "h1", s.queue_title);
                add_text(holder, "p", s.unreachable).set_class_name("error-text");
            }
            Loaded::Found(item) => {
                let may = May::of(role, &item);
                show_item(holder, page, &item, may, &dialog);
            }
        },
    );
    page.reload();
}

fn notice_region(parent: &Element, page: Page) {
    region(
        parent,
        move || page.notice.get(),
        |notice, holder| {
            let Some(notice) = notice else {
                return;
            };
            let (class, role, message) = match &notice {
                Notice::Done(m) => ("notice notice-success", "status", (*m).to_owned()),
                Notice::Problem(m) => ("notice notice-error", "alert", m.clone()),
            };
            let box_ = add_class(holder, "div", class);
            set(&box_, "id", "item-notice");
            set(&box_, "role", role);
            add_text(&box_, "p", &message);
        },
    );
}

/// What the signed-in person may do with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum May {
    /// Every decision (clinicians and admins).
    Decide,
    /// Confirm a link proposed for an intake without proof of identity, and
    /// nothing else (the front desk: checking who a patient is is theirs).
    Confirm,
    /// Read only.
    Read,
}

impl May {
    fn of(role: Option<super::Role>, item: &Item) -> Self {
        match role {
            Some(role) if role.decides() => May::Decide,
            Some(super::Role::FrontDesk) if item.proposed_link => May::Confirm,
            _ => May::Read,
        }
    }
}

fn show_item(parent: &Element, page: Page, item: &Item, may: May, dialog: &HtmlDialogElement) {
    let s = st();
    let decides = may == May::Decide;
    add_text(
        parent,
        "h1",
        match item.kind {
            Kind::Match if item.proposed_link => s.item_title_proposed_link,
            Kind::Match => s.item_title_match,
            Kind::Demographics => s.item_title_demographics,
            Kind::Delivery => s.item_title_delivery,
        },
    );
    add_text(
        parent,
        "p",
        &format!("{} {}", s.received, model::short_instant(&item.received)),
    )
    .set_class_name("meta");
    notice_region(parent, page);
    match item.kind {
        Kind::Match => compare(parent, page, item, may, dialog),
        Kind::Demographics => {
            intake_summary(parent, &item.patient);
            proposed(parent, page, item, decides);
        }
        Kind::Delivery => {
            intake_summary(parent, &item.patient);
            delivery(parent, page, item, decides);
        }
    }
    if let Some(answers) = &item.answers {
        answers_section(parent, answers);
    }
}

fn field_label(field: &str) -> &'static str {
    let s = st();
    match field {
        "given" => s.field_given,
        "family" => s.field_family,
        "birthDate" => s.field_birth_date,
        "gender" => s.field_gender,
        "phone" => s.field_phone,
        "email" => s.field_email,
        "streetNumber" => s.field_street_number,
        "street" => s.field_street,
        "city" => s.field_city,
        "postalCode" => s.field_postal_code,
        "state" => s.field_state,
        "identifier" => s.field_identifier,
        _ => "",
    }
}

/// A comparison level's icon (for sighted readers, beside the colour) and word.
fn level_mark(level: &str) -> (&'static str, &'static str) {
    let s = st();
    match level {
        "exact" => ("✓", s.level_exact),
        "close" => ("≈", s.level_close),
        "phonetic" => ("∼", s.level_phonetic),
        "different" => ("✗", s.level_different),
        _ => ("–", s.level_missing),
    }
}

fn or_dash(value: &str) -> &str {
    if value.is_empty() { "—" } else { value }
}

fn score_line(c: &model::Candidate) -> String {
    let s = st();
    let score = c
        .score
        .map_or_else(|| s.no_score.to_owned(), |v| format!("{v:.2}"));
    let mut line = match c
        .grade
        .as_deref()
        .map(grade_label)
        .filter(|g| !g.is_empty())
    {
        Some(grade) => format!("{} {score} · {grade}", s.score),
        None => format!("{} {score}", s.score),
    };
    if let Some(v) = c.model {
        line.push_str(&format!(" · {} {v}", s.model_version));
    }
    line
}

/// Which safety rules held a candidate below `certain`, in words; empty if none.
fn held_line(c: &model::Candidate) -> String {
    let s = st();
    let reasons: Vec<&str> = c
        .held
        .iter()
        .filter_map(|h| match h.as_str() {
            "possible-twin" => Some(s.hold_twin),
            "ambiguous" => Some(s.hold_ambiguous),
            "placeholder-name" => Some(s.hold_placeholder),
            _ => None,
        })
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!("{}: {}", s.held_because, reasons.join("; "))
    }
}

/// The intake and each candidate side by side.
fn compare(parent: &Element, page: Page, item: &Item, may: May, dialog: &HtmlDialogElement) {
    let s = st();
    let decides = may == May::Decide;
    let section = add_class(parent, "section", "compare-section");
    set(&section, "aria-labelledby", "compare-title");
    set(
        &add_text(&section, "h2", s.compare_title),
        "id",
        "compare-title",
    );
    if item.proposed_link {
        let note = add_class(&section, "div", "notice notice-info");
        set(&note, "id", "proposed-link-note");
        add_text(&note, "p", s.proposed_link_note);
    }
    if item.candidates.is_empty() {
        add_text(&section, "p", s.no_candidates);
        intake_summary(&section, &item.patient);
    } else {
        let scroll = add_class(&section, "div", "table-scroll");
        // A focusable scroll area, so a keyboard can scroll a table wider than the screen.
        set(&scroll, "tabindex", "0");
        set(&scroll, "role", "region");
        set(&scroll, "aria-labelledby", "compare-title");
        let table = add_class(&scroll, "table", "compare");
        set(&table, "id", "compare");
        let head = add(&add(&table, "thead"), "tr");
        set(&add_text(&head, "th", s.col_field), "scope", "col");
        let intake_head = add_text(&head, "th", s.this_intake);
        set(&intake_head, "scope", "col");
        intake_head.set_class_name("intake-col");
        for (i, candidate) in item.candidates.iter().enumerate() {
            let th = add_class(&head, "th", "candidate-col");
            set(&th, "scope", "col");
            set(&th, "id", &format!("candidate-{i}"));
            add_text(&th, "span", &(s.candidate)(i + 1)).set_class_name("candidate-number");
            add_text(&th, "strong", &model::patient_name(&candidate.patient));
            let score = add_text(&th, "span", &score_line(candidate));
            score.set_class_name("candidate-score");
            set(&score, "id", &format!("candidate-{i}-score"));
            let held = held_line(candidate);
            if !held.is_empty() {
                let held = add_text(&th, "span", &held);
                held.set_class_name("candidate-held");
                set(&held, "id", &format!("candidate-{i}-held"));
            }
        }
        let body = add(&table, "tbody");
        for field in FIELDS {
            let row = add(&body, "tr");
            set(&add_text(&row, "th", field_label(field)), "scope", "row");
            add_text(
                &row,
                "td",
                or_dash(&model::patient_field(&item.patient, field)),
            )
            .set_class_name("intake-col");
            for candidate in &item.candidates {
                let explained = candidate.fields.iter().find(|f| f.field == field);
                let level = explained.map_or("missing", |f| f.level.as_str());
                let cell = add_class(&row, "td", &format!("level level-{level}"));
                add_text(
                    &cell,
                    "span",
                    or_dash(&model::patient_field(&candidate.patient, field)),
                )
                .set_class_name("value");
                let (icon, word) = level_mark(level);
                let agreement = add_class(&cell, "span", "agreement");
                let mark = add_text(&agreement, "span", icon);
                mark.set_class_name("icon");
                set(&mark, "aria-hidden", "true");
                text(&agreement, &format!(" {word}"));
                if let Some(f) = explained {
                    add_text(&cell, "span", &format!("{} {:+.1}", s.weight, f.weight))
                        .set_class_name("weight");
                }
            }
        }
        let history = add_class(&body, "tr", "history-row");
        set(&add_text(&history, "th", s.history), "scope", "row");
        add(&history, "td");
        for candidate in &item.candidates {
            let cell = add(&history, "td");
            if candidate.history.is_empty() {
                add_text(&cell, "span", s.no_history).set_class_name("muted");
            } else {
                let list = add_class(&cell, "ul", "history");
                for (date, what) in &candidate.history {
                    add_text(
                        &list,
                        "li",
                        &format!("{} · {what}", model::short_instant(date)),
                    );
                }
            }
        }
        if may != May::Read {
            let actions = add_class(&body, "tr", "actions-row");
            set(&add_text(&actions, "th", s.decision), "scope", "row");
            add(&actions, "td");
            for (i, candidate) in item.candidates.iter().enumerate() {
                let cell = add_class(&add(&actions, "td"), "div", "actions");
                if candidate.reference.is_empty() {
                    continue;
                }
                if may == May::Confirm {
                    // The one link the server lets the front desk make: to the
                    // candidate the matcher found certain.
                    if candidate.grade.as_deref() == Some("certain") {
                        let link =
                            decision_button(&cell, &format!("link-{i}"), s.confirm_link, true);
                        set(&link, "aria-describedby", &format!("candidate-{i}"));
                        let reference = candidate.reference.clone();
                        let d = dialog.clone();
                        on(&link, "click", move |_| {
                            page.decide(Decision::Link(reference.clone()), &d);
                        });
                    }
                    continue;
                }
                let link = decision_button(&cell, &format!("link-{i}"), s.link, true);
                set(&link, "aria-describedby", &format!("candidate-{i}"));
                let reference = candidate.reference.clone();
                let d = dialog.clone();
                on(&link, "click", move |_| {
                    page.decide(Decision::Link(reference.clone()), &d);
                });
                let not_this = decision_button(&cell, &format!("not-this-{i}"), s.not_this, false);
                set(&not_this, "aria-describedby", &format!("candidate-{i}"));
                let reference = candidate.reference.clone();
                let d = dialog.clone();
                on(&not_this, "click", move |_| {
                    page.decide(Decision::NotThis(reference.clone()), &d);
                });
            }
        }
    }
    if decides {
        let create = decision_button(
            &add_class(&section, "p", "create"),
            "create-new",
            s.create_new,
            item.candidates.is_empty(),
        );
        let d = dialog.clone();
        on(&create, "click", move |_| page.decide(Decision::Create, &d));
    }
}

/// A decision button, disabled while a decision is on its way.
fn decision_button(parent: &Element, id: &str, label: &str, primary: bool) -> Element {
    let button = add_class(
        parent,
        "button",
        if primary {
            "button button-primary"
        } else {
            "button"
        },
    );
    set(&button, "type", "button");
    set(&button, "id", id);
    text(&button, label);
    button
}

/// The intake's own demographics, as a list.
fn intake_summary(parent: &Element, patient: &Json) {
    let s = st();
    let section = add_class(parent, "section", "card");
    set(&section, "aria-labelledby", "intake-title");
    set(
        &add_text(&section, "h2", s.this_intake),
        "id",
        "intake-title",
    );
    let list = add_class(&section, "dl", "status");
    for field in FIELDS {
        let value = model::patient_field(patient, field);
        if !value.is_empty() {
            add_text(&list, "dt", field_label(field));
            add_text(&list, "dd", &value);
        }
    }
}

/// Proposed updates, accepted or refused element by element.
fn proposed(parent: &Element, page: Page, item: &Item, decides: bool) {
    let s = st();
    let section = add(parent, "section");
    set(&section, "aria-labelledby", "proposed-title");
    set(
        &add_text(&section, "h2", s.proposed_title),
        "id",
        "proposed-title",
    );
    let form = add_class(&section, "form", "proposed");
    set(&form, "id", "proposed");
    let scroll = add_class(&form, "div", "table-scroll");
    let table = add_class(&scroll, "table", "compare");
    set(&table, "aria-labelledby", "proposed-title");
    let head = add(&add(&table, "thead"), "tr");
    let mut columns = vec![s.col_element, s.on_chart, s.from_intake];
    if decides {
        columns.push(s.decision);
    }
    for label in columns {
        set(&add_text(&head, "th", label), "scope", "col");
    }
    let body = add(&table, "tbody");
    let elements: Vec<String> = item.proposed.iter().map(|p| p.element.clone()).collect();
    for (i, change) in item.proposed.iter().enumerate() {
        let row = add(&body, "tr");
        set(&add_text(&row, "th", &change.element), "scope", "row");
        add_text(&row, "td", or_dash(&model::describe(&change.current)));
        add_text(&row, "td", or_dash(&model::describe(&change.proposed)));
        if decides {
            let fieldset = add_class(&add(&row, "td"), "fieldset", "choice-pair");
            add_text(
                &fieldset,
                "legend",
                &format!("{}: {}", s.decision, change.element),
            )
            .set_class_name("visually-hidden");
            for (value, label) in [("accept", s.accept), ("refuse", s.refuse)] {
                let id = format!("proposed-{i}-{value}");
                let wrap = add_class(&fieldset, "span", "choice-inline");
                let input = add(&wrap, "input");
                set(&input, "type", "radio");
                set(&input, "id", &id);
                set(&input, "name", &format!("proposed-{i}"));
                set(&input, "value", value);
                flag(&input, "required", true);
                set(&add_text(&wrap, "label", label), "for", &id);
            }
        }
    }
    if decides {
        let save = add_class(&form, "button", "button button-primary");
        set(&save, "type", "submit");
        set(&save, "id", "save-proposed");
        text(&save, s.save_decisions);
        let form_el = form.clone();
        on(&form, "submit", move |event| {
            event.prevent_default();
            let (mut accept, mut refuse) = (Vec::new(), Vec::new());
            for (i, element) in elements.iter().enumerate() {
                let chosen = |value: &str| {
                    form_el
                        .query_selector(&format!("#proposed-{i}-{value}"))
                        .ok()
                        .flatten()
                        .is_some_and(|e| checked(&e))
                };
                if chosen("accept") {
                    accept.push(element.clone());
                } else if chosen("refuse") {
                    refuse.push(element.clone());
                }
            }
            page.send(Decision::Update { accept, refuse }, String::new(), None);
        });
    }
}

fn delivery(parent: &Element, page: Page, item: &Item, decides: bool) {
    let s = st();
    let section = add_class(parent, "section", "card");
    set(&section, "aria-labelledby", "delivery-title");
    set(
        &add_text(&section, "h2", s.delivery_title),
        "id",
        "delivery-title",
    );
    if let Some(d) = &item.delivery {
        let list = add_class(&section, "dl", "status");
        add_text(&list, "dt", s.attempts);
        add_text(
            &list,
            "dd",
            &d.attempts.map(|a| format!("{a}")).unwrap_or_default(),
        );
        add_text(&list, "dt", s.last_error);
        add_text(&list, "dd", or_dash(&d.last_error));
        add_text(&list, "dt", s.delivery_status);
        add_text(&list, "dd", or_dash(&d.status));
    }
    if decides {
        let retry = decision_button(&section, "retry", s.retry, true);
        on(&retry, "click", move |_| {
            page.send(Decision::Retry, String::new(), None);
        });
    }
}

fn answers_section(parent: &Element, answers: &Json) {
    let s = st();
    let section = add_class(parent, "section", "card");
    set(&section, "aria-labelledby", "answers-title");
    set(&section, "id", "answers");
    set(
        &add_text(&section, "h2", s.answers_title),
        "id",
        "answers-title",
    );
    let list = add_class(&section, "dl", "answers");
    // Each answer under its question's text (a response carries only linkIds):
    // the stored form, in the staff member's language.
    let form_id = answers
        .get("questionnaire")
        .and_then(Json::as_str)
        .and_then(|q| q.strip_prefix("Questionnaire/"))
        .map(str::to_owned);
    let form = crate::api::load(async move {
        match form_id {
            Some(id) => crate::api::form(&id).await,
            None => None,
        }
    });
    let answers = answers.clone();
    region(
        &list,
        move || form.get(),
        move |form, list| {
            let form = form
                .flatten()
                .map(|c| c.form.localized(crate::i18n::t().lang));
            let question_text = |link_id: &str| {
                fn find(items: &[shared::form::Item], link_id: &str) -> Option<String> {
                    items.iter().find_map(|i| {
                        if i.link_id == link_id && !i.text.trim().is_empty() {
                            Some(i.text.clone())
                        } else {
                            find(&i.items, link_id)
                        }
                    })
                }
                form.as_ref().and_then(|f| find(&f.items, link_id))
            };
            for (depth, question, answer) in model::answer_lines(&answers, &question_text) {
                let dt = add_text(list, "dt", &question);
                if depth > 0 {
                    set(&dt, "style", &format!("margin-left:{depth}rem"));
                }
                let dd = add_text(list, "dd", or_dash(&answer));
                if depth > 0 {
                    set(&dd, "style", &format!("margin-left:{depth}rem"));
                }
            }
        },
    );
}

/// The password dialog for link and create (native `<dialog>`: modal, focus
/// kept inside, Escape closes it).
fn reauth_dialog(parent: &Element, page: Page) -> HtmlDialogElement {
    let s = st();
    let dialog = add_class(parent, "dialog", "reauth");
    set(&dialog, "id", "reauth");
    set(&dialog, "aria-labelledby", "reauth-title");
    set(&dialog, "aria-describedby", "reauth-what");
    let form = add(&dialog, "form");
    set(&form, "id", "reauth-form");
    set(&add_text(&form, "h2", s.reauth_title), "id", "reauth-title");
    let what = add(&form, "p");
    set(&what, "id", "reauth-what");
    let field = add_class(&form, "div", "field");
    set(
        &add_text(&field, "label", s.reauth_password),
        "for",
        "reauth-password",
    );
    let password = add(&field, "input");
    for (name, value) in [
        ("id", "reauth-password"),
        ("type", "password"),
        ("autocomplete", "current-password"),
    ] {
        set(&password, name, value);
    }
    flag(&password, "required", true);
    let error = add_class(&form, "p", "error-text");
    set(&error, "id", "reauth-error");
    set(&error, "role", "alert");
    let buttons = add_class(&form, "div", "actions");
    let confirm = add_class(&buttons, "button", "button button-primary");
    set(&confirm, "type", "submit");
    set(&confirm, "id", "reauth-confirm");
    let cancel = add_class(&buttons, "button", "button");
    set(&cancel, "type", "button");
    set(&cancel, "id", "reauth-cancel");
    text(&cancel, s.cancel);
    let dialog: HtmlDialogElement = dialog.unchecked_into();
    {
        let confirm = confirm.clone();
        let password = password.clone();
        bind(move || {
            let sending = page.sending.get();
            flag(&confirm, "disabled", sending);
            confirm.set_text_content(Some(if sending { s.sending } else { s.confirm }));
            what.set_text_content(Some(match page.pending.get() {
                Some(Decision::Create) => s.reauth_create,
                _ => s.reauth_link,
            }));
            let problem = page.reauth_error.get();
            error.set_text_content(problem.as_deref());
            flag(&error, "hidden", problem.is_none());
            if problem.is_some() {
                set_value(&password, "");
                focus_soon(&password);
            }
        });
    }
    {
        let dialog = dialog.clone();
        on(&cancel, "click", move |_| dialog.close());
    }
    {
        let password = password.clone();
        on(&dialog, "close", move |_| {
            // Nothing of the password stays on the page.
            set_value(&password, "");
            page.pending.set(None);
        });
    }
    let d = dialog.clone();
    on(&form, "submit", move |event| {
        event.prevent_default();
        let Some(decision) = page.pending.get_untracked() else {
            return;
        };
        let secret = value_of(&password);
        page.send(decision, secret, Some(d.clone()));
    });
    dialog
}
