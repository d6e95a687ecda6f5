//! `/staff/invitations`: the front desk invites a patient to fill in a form on
//! their own phone before the visit.
//!
//! Find the patient first (`$match` on name and birth date), so that a returning
//! patient is invited as the chart the clinic has, and their form comes
//! prefilled; someone new is invited with the birth date typed. Then the form,
//! the appointment and how long the link works. The link is shown once (with a
//! QR code to scan at the desk), and the recent invitations are listed with
//! where each stands, to cancel one that went to the wrong person.

use leptos::prelude::*;
use shared::json::{Json, to_string};
use web_sys::Element;

use super::Staff;
use super::labelled;
use super::model::{list, patient_field, short_instant};
use crate::api;
use crate::components::dom::{
    add, add_class, add_text, bind, flag, focus, on, region, set, text, value_of,
};
use crate::i18n::st;

/// The `$match` grade extension of a Bundle entry's `search`.
const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

/// The link's lifetimes offered, in days; the server's default is 3.
const DAYS: [u32; 4] = [1, 3, 7, 14];

/// A chart `$match` found.
#[derive(Clone, Debug, PartialEq)]
struct Chart {
    id: String,
    /// "Family, Given".
    name: String,
    birth_date: String,
    gender: String,
    grade: String,
}

impl Chart {
    fn read(entry: &Json) -> Option<Self> {
        let patient = entry.get("resource")?;
        let family = patient_field(patient, "family");
        let given = patient_field(patient, "given");
        let name = match (family.is_empty(), given.is_empty()) {
            (false, false) => format!("{family}, {given}"),
            (false, true) => family,
            _ => given,
        };
        let grade = match entry.get("search")?.get("extension")? {
            Json::Array(extensions) => extensions
                .iter()
                .find(|e| e.get("url").and_then(Json::as_str) == Some(MATCH_GRADE))
                .and_then(|e| e.get("valueCode")?.as_str())
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        Some(Chart {
            id: patient.get("id")?.as_str()?.to_owned(),
            name,
            birth_date: patient_field(patient, "birthDate"),
            gender: patient_field(patient, "gender"),
            grade,
        })
    }
}

/// Whom the front desk searched for, and what was found.
#[derive(Clone, Debug, PartialEq)]
enum Search {
    NotYet,
    Searching,
    Found {
        /// As typed: "Family, Given", and the birth date.
        name: String,
        birth_date: String,
        charts: Vec<Chart>,
    },
    Failed(String),
}

/// One row of the recent invitations.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: String,
    name: String,
    questionnaire: String,
    appointment: String,
    status: String,
    created: String,
    created_by: String,
    expires: String,
}

impl Row {
    fn read(json: &Json) -> Option<Self> {
        let text = |key: &str| {
            json.get(key)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(Row {
            id: json.get("invitation")?.as_str()?.to_owned(),
            name: text("name"),
            questionnaire: text("questionnaire"),
            appointment: text("appointment"),
            status: text("status"),
            created: text("created"),
            created_by: text("createdBy"),
            expires: text("expires"),
        })
    }

    /// Whether it can still be cancelled (not used, cancelled, expired or locked).
    fn open(&self) -> bool {
        matches!(self.status.as_str(), "sent" | "opened")
    }
}

/// A created invitation, shown once.
#[derive(Clone, Debug, PartialEq)]
struct Created {
    name: String,
    link: String,
    qr: Option<String>,
    expires: String,
}

/// An appointment typed in a `datetime-local` input (`2026-12-01T09:30`), as a
/// FHIR dateTime in this computer's time zone at that moment.
fn appointment(local: &str) -> Option<String> {
    if local.len() < 16 {
        return None;
    }
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(local));
    let minutes = date.get_timezone_offset();
    if minutes.is_nan() {
        return None;
    }
    // getTimezoneOffset is UTC minus local time, in minutes.
    #[allow(clippy::cast_possible_truncation)]
    let east = -(minutes as i32);
    let sign = if east < 0 { '-' } else { '+' };
    let east = east.unsigned_abs();
    Some(format!(
        "{}:00{sign}{:02}:{:02}",
        &local[..16],
        east / 60,
        east % 60
    ))
}

pub(crate) fn invitations_page(parent: &Element, staff: Staff) {
    let s = st();
    set(
        &add_text(parent, "h1", s.inv_title),
        "id",
        "invitations-title",
    );
    add_text(parent, "p", s.inv_intro).set_class_name("lead");

    let forms = RwSignal::new(None::<Vec<(String, String)>>);
    let search = RwSignal::new(Search::NotYet);
    let created = RwSignal::new(None::<Created>);
    let rows = RwSignal::new(None::<Option<Vec<Row>>>);
    let message = RwSignal::new(None::<String>);

    let reload = move || {
        leptos::task::spawn_local(async move {
            let reply = staff.check(api::staff("GET", "/api/staff/invitations", None, None).await);
            let list = reply.filter(|r| r.status == 200).map(|r| {
                list(r.body.as_ref(), "invitations")
                    .iter()
                    .filter_map(Row::read)
                    .collect::<Vec<_>>()
            });
            let _ = rows.try_set(Some(list));
        });
    };
    leptos::task::spawn_local(async move {
        let reply = staff.check(api::staff("GET", "/api/staff/forms", None, None).await);
        let list = reply
            .filter(|r| r.status == 200)
            .map(|r| {
                list(r.body.as_ref(), "forms")
                    .iter()
                    .filter_map(|f| {
                        Some((
                            f.get("id")?.as_str()?.to_owned(),
                            f.get("title")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = forms.try_set(Some(list));
    });
    reload();

    let new_invitation = add_class(parent, "section", "card invite-new");
    set(&new_invitation, "aria-labelledby", "find-title");
    region(
        &new_invitation,
        move || created.get(),
        move |shown, holder| match shown {
            Some(done) => show_created(holder, &done, search, created),
            None => {
                find_form(holder, staff, search);
                region(
                    holder,
                    move || search.get(),
                    move |found, holder| {
                        invite_form(holder, staff, &found, forms, created, reload);
                    },
                );
            }
        },
    );

    let recent = add_class(parent, "section", "invite-recent");
    set(&recent, "aria-labelledby", "recent-title");
    set(
        &add_text(&recent, "h2", s.inv_recent_title),
        "id",
        "recent-title",
    );
    let notice = add_class(&recent, "p", "notice notice-success");
    set(&notice, "id", "invite-notice");
    set(&notice, "role", "status");
    {
        let notice = notice.clone();
        bind(move || {
            let shown = message.get();
            flag(&notice, "hidden", shown.is_none());
            notice.set_text_content(shown.as_deref());
        });
    }
    region(
        &recent,
        move || (rows.get(), forms.get()),
        move |(list, forms), holder| match list {
            None => {
                add_text(holder, "p", s.loading);
            }
            Some(None) => {
                add_text(holder, "p", s.unreachable).set_class_name("error-text");
            }
            Some(Some(list)) if list.is_empty() => {
                let none = add_text(holder, "p", s.inv_none);
                none.set_class_name("muted");
                set(&none, "id", "invitations-none");
            }
            Some(Some(list)) => {
                recent_table(
                    holder,
                    staff,
                    &list,
                    &forms.unwrap_or_default(),
                    message,
                    reload,
                );
            }
        },
    );
}

/// Step 1: name and birth date, then `$match`.
fn find_form(parent: &Element, staff: Staff, search: RwSignal<Search>) {
    let s = st();
    set(
        &add_text(parent, "h2", s.inv_find_title),
        "id",
        "find-title",
    );
    let form = add_class(parent, "form", "invite-find");
    set(&form, "id", "invite-find");
    let row = add_class(&form, "div", "field-row");
    let field = |id: &str, label: &str, kind: &str| {
        let (_, input) = labelled(&row, id, label, "input");
        for (name, value) in [("name", id), ("type", kind), ("autocomplete", "off")] {
            set(&input, name, value);
        }
        flag(&input, "required", true);
        input
    };
    let family = field("find-family", s.field_family, "text");
    let given = field("find-given", s.field_given, "text");
    let birth = field("find-birth-date", s.field_birth_date, "date");
    let button = add_class(&form, "button", "button button-primary");
    set(&button, "type", "submit");
    set(&button, "id", "find");
    bind(move || {
        let busy = search.get() == Search::Searching;
        flag(&button, "disabled", busy);
        button.set_text_content(Some(if busy { s.inv_finding } else { s.inv_find }));
    });
    super::focus_soon(&family);
    on(&form, "submit", move |event| {
        event.prevent_default();
        if search.get_untracked() == Search::Searching {
            return;
        }
        let (family, given, birth_date) = (
            value_of(&family).trim().to_owned(),
            value_of(&given).trim().to_owned(),
            value_of(&birth),
        );
        search.set(Search::Searching);
        leptos::task::spawn_local(async move {
            let body = format!(
                "{{\"resourceType\":\"Parameters\",\"parameter\":[{{\"name\":\"resource\",\
                 \"resource\":{{\"resourceType\":\"Patient\",\"name\":[{{\"family\":{},\
                 \"given\":[{}]}}],\"birthDate\":{}}}}},{{\"name\":\"count\",\"valueInteger\":5}}]}}",
                to_string(family.as_str()),
                to_string(given.as_str()),
                to_string(birth_date.as_str()),
            );
            let reply =
                staff.check(api::staff("POST", "/fhir/Patient/$match", Some(&body), None).await);
            let next = match reply {
                Some(r) if r.status == 200 => Search::Found {
                    name: format!("{family}, {given}"),
                    birth_date,
                    charts: list(r.body.as_ref(), "entry")
                        .iter()
                        .filter_map(Chart::read)
                        .collect(),
                },
                Some(r) if (400..500).contains(&r.status) => {
                    Search::Failed(r.diagnostics().unwrap_or_else(|| s.refused.to_owned()))
                }
                _ => Search::Failed(s.unreachable.to_owned()),
            };
            let _ = search.try_set(next);
        });
    });
}

/// Steps 2 and 3: whom (a chart found, or someone new), then the form, the
/// appointment and the link's lifetime.
fn invite_form(
    parent: &Element,
    staff: Staff,
    found: &Search,
    forms: RwSignal<Option<Vec<(String, String)>>>,
    created: RwSignal<Option<Created>>,
    reload: impl Fn() + Copy + 'static,
) {
    let s = st();
    let (name, birth_date, charts) = match found {
        Search::NotYet | Search::Searching => return,
        Search::Failed(why) => {
            let error = add_text(parent, "p", why);
            error.set_class_name("error-text");
            set(&error, "role", "alert");
            return;
        }
        Search::Found {
            name,
            birth_date,
            charts,
        } => (name.clone(), birth_date.clone(), charts.clone()),
    };
    let form = add_class(parent, "form", "invite-details");
    set(&form, "id", "invite-details");
    // Checked here, in the page's own words (not the browser's bubble).
    flag(&form, "novalidate", true);
    let whom = add_class(&form, "fieldset", "field invite-whom");
    set(&add_text(&whom, "legend", s.inv_whom), "id", "whom-legend");
    if charts.is_empty() {
        add_text(&whom, "p", s.inv_no_chart).set_class_name("muted");
    }
    let mut radios = Vec::new();
    let choices = charts
        .iter()
        .map(|c| {
            let grade = match c.grade.as_str() {
                "certain" => s.grade_certain,
                "probable" => s.grade_probable,
                _ => s.grade_possible,
            };
            let gender = if c.gender.is_empty() {
                String::new()
            } else {
                format!(" · {}", c.gender)
            };
            (
                format!("chart-{}", c.id),
                format!(
                    "{} · {} {}{gender} · {grade}",
                    c.name, s.field_birth_date, c.birth_date
                ),
            )
        })
        .chain(std::iter::once((
            "new-patient".to_owned(),
            (s.inv_new_patient)(&name, &birth_date),
        )));
    for (id, label) in choices {
        let wrap = add_class(&whom, "div", "choice-inline");
        let radio = add(&wrap, "input");
        for (attr, value) in [
            ("type", "radio"),
            ("name", "whom"),
            ("id", &id),
            ("value", &id),
        ] {
            set(&radio, attr, value);
        }
        flag(&radio, "required", true);
        set(&radio, "aria-describedby", "invite-error");
        set(&add_text(&wrap, "label", &label), "for", &id);
        radios.push(radio);
    }
    // A lone choice (no chart found: the new patient) is already chosen.
    if let [only] = radios.as_slice() {
        crate::components::dom::set_checked(only, true);
    }

    let details = add_class(&form, "div", "field-row");
    let select = {
        let (_, select) = labelled(&details, "invite-form", s.inv_form, "select");
        flag(&select, "required", true);
        let select_for_options = select.clone();
        bind(move || {
            select_for_options.set_inner_html("");
            for (id, title) in forms.get().unwrap_or_default() {
                let option = add_text(&select_for_options, "option", &title);
                set(&option, "value", &id);
                if id == "registration" {
                    flag(&option, "selected", true);
                }
            }
        });
        select
    };
    let when = {
        let (label, input) = labelled(&details, "invite-appointment", s.inv_appointment, "input");
        add_text(&label, "span", s.optional).set_class_name("optional");
        set(&input, "type", "datetime-local");
        input
    };
    let days = {
        let (_, select) = labelled(&details, "invite-days", s.inv_valid_for, "select");
        for d in DAYS {
            let option = add_text(&select, "option", &(s.days)(d));
            set(&option, "value", &d.to_string());
            if d == 3 {
                flag(&option, "selected", true);
            }
        }
        select
    };
    let error = add_class(&form, "p", "error-text");
    set(&error, "id", "invite-error");
    set(&error, "role", "alert");
    let button = add_class(&form, "button", "button button-primary");
    set(&button, "type", "submit");
    set(&button, "id", "create-invitation");
    let pending = RwSignal::new(false);
    let failed = RwSignal::new(String::new());
    {
        let error = error.clone();
        bind(move || {
            let busy = pending.get();
            flag(&button, "disabled", busy);
            button.set_text_content(Some(if busy { s.sending } else { s.inv_create }));
            error.set_text_content(Some(&failed.get()));
            flag(&error, "hidden", failed.with(String::is_empty));
        });
    }
    if let Some(first) = radios.first() {
        super::focus_soon(first);
    }
    on(&form, "submit", move |event| {
        event.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let chosen = radios
            .iter()
            .find(|r| crate::components::dom::checked(r))
            .map(value_of);
        let Some(chosen) = chosen else {
            failed.set(s.inv_choose_first.to_owned());
            if let Some(first) = radios.first() {
                focus(first);
            }
            return;
        };
        let (whom, shown_name) = match chosen.strip_prefix("chart-") {
            Some(id) => {
                let chart = charts.iter().find(|c| c.id == id);
                (
                    format!(
                        "\"patient\":{}",
                        to_string(format!("Patient/{id}").as_str())
                    ),
                    chart.map_or_else(|| name.clone(), |c| c.name.clone()),
                )
            }
            None => (
                format!(
                    "\"birthDate\":{},\"name\":{}",
                    to_string(birth_date.as_str()),
                    to_string(name.as_str())
                ),
                name.clone(),
            ),
        };
        let mut body = format!(
            "{{{whom},\"questionnaire\":{},\"expiresInHours\":{}",
            to_string(value_of(&select).as_str()),
            value_of(&days).parse::<u32>().unwrap_or(3) * 24
        );
        let typed = value_of(&when);
        if !typed.is_empty() {
            match appointment(&typed) {
                Some(at) => body.push_str(&format!(",\"appointment\":{}", to_string(at.as_str()))),
                None => {
                    failed.set(s.inv_bad_appointment.to_owned());
                    focus(&when);
                    return;
                }
            }
        }
        body.push('}');
        pending.set(true);
        failed.set(String::new());
        leptos::task::spawn_local(async move {
            let reply =
                staff.check(api::staff("POST", "/api/staff/invitations", Some(&body), None).await);
            let _ = pending.try_set(false);
            match reply {
                Some(r) if r.status == 201 => {
                    let body = r.body.as_ref();
                    let field = |key: &str| {
                        body.and_then(|b| b.get(key))
                            .and_then(Json::as_str)
                            .map(str::to_owned)
                    };
                    let _ = created.try_set(Some(Created {
                        name: shown_name,
                        link: field("link").unwrap_or_default(),
                        qr: field("qr"),
                        expires: field("expires").unwrap_or_default(),
                    }));
                    reload();
                }
                Some(r) if (400..500).contains(&r.status) => {
                    let _ = failed.try_set(r.diagnostics().unwrap_or_else(|| s.refused.to_owned()));
                }
                _ => {
                    let _ = failed.try_set(s.unreachable.to_owned());
                }
            }
        });
    });
}

/// The link, shown once: to copy into a text message, or to scan at the desk.
fn show_created(
    parent: &Element,
    done: &Created,
    search: RwSignal<Search>,
    created: RwSignal<Option<Created>>,
) {
    let s = st();
    let title = add_text(parent, "h2", s.inv_created_title);
    set(&title, "id", "find-title");
    set(&title, "tabindex", "-1");
    let notice = add_class(parent, "div", "notice notice-success");
    set(&notice, "id", "invitation-created");
    set(&notice, "role", "status");
    add_text(
        &notice,
        "p",
        &(s.inv_created)(&done.name, &short_instant(&done.expires)),
    );
    let row = add_class(parent, "div", "invite-link");
    super::copy_field(&row, "invitation-link", s.inv_link, &done.link, s.inv_copy);
    if let Some(svg) = &done.qr {
        let figure = add_class(&row, "figure", "invite-qr");
        let image = add(&figure, "img");
        set(&image, "id", "invitation-qr");
        set(
            &image,
            "src",
            &format!(
                "data:image/svg+xml;charset=utf-8,{}",
                String::from(js_sys::encode_uri_component(svg))
            ),
        );
        set(&image, "alt", s.inv_qr_alt);
        set(&image, "width", "200");
        set(&image, "height", "200");
        add_text(&figure, "figcaption", s.inv_qr_caption);
    }
    let again = add_class(parent, "button", "button button-primary");
    set(&again, "type", "button");
    set(&again, "id", "invite-another");
    text(&again, s.inv_another);
    on(&again, "click", move |_| {
        search.set(Search::NotYet);
        created.set(None);
    });
    super::focus_soon(&title);
}

/// The recent invitations, newest first, each with where it stands.
fn recent_table(
    parent: &Element,
    staff: Staff,
    rows: &[Row],
    forms: &[(String, String)],
    message: RwSignal<Option<String>>,
    reload: impl Fn() + Copy + 'static,
) {
    let s = st();
    let scroll = add_class(parent, "div", "table-scroll");
    let table = add_class(&scroll, "table", "invitations");
    set(&table, "id", "invitations");
    set(&table, "aria-labelledby", "recent-title");
    let head = add(&add(&table, "thead"), "tr");
    for label in [
        s.col_patient,
        s.inv_form,
        s.inv_col_appointment,
        s.inv_col_status,
        s.inv_col_created,
        s.inv_col_expires,
        s.inv_col_actions,
    ] {
        set(&add_text(&head, "th", label), "scope", "col");
    }
    let body = add(&table, "tbody");
    for row in rows {
        let tr = add(&body, "tr");
        set(&tr, "id", &format!("invitation-{}", row.id));
        let name = if row.name.is_empty() {
            s.inv_unnamed
        } else {
            &row.name
        };
        set(&add_text(&tr, "th", name), "scope", "row");
        let form = forms
            .iter()
            .find(|(id, _)| *id == row.questionnaire)
            .map_or(row.questionnaire.as_str(), |(_, title)| title.as_str());
        add_text(&tr, "td", form);
        add_text(&tr, "td", &short_instant(&row.appointment));
        let status = add_text(&tr, "td", status_label(&row.status));
        status.set_class_name(&format!("invite-status status-{}", row.status));
        let created = add_text(&tr, "td", &short_instant(&row.created));
        add_text(&created, "span", &format!(" · {}", row.created_by)).set_class_name("muted");
        add_text(&tr, "td", &short_instant(&row.expires));
        let actions = add(&tr, "td");
        if row.open() {
            let cancel = add_class(&actions, "button", "button");
            set(&cancel, "type", "button");
            set(&cancel, "id", &format!("cancel-{}", row.id));
            set(&cancel, "aria-label", &(s.inv_cancel_for)(name));
            text(&cancel, s.inv_cancel);
            let id = row.id.clone();
            on(&cancel, "click", move |_| {
                let id = id.clone();
                leptos::task::spawn_local(async move {
                    let path = format!("/api/staff/invitations/{}", api::path_segment(&id));
                    let reply = staff.check(api::staff("DELETE", &path, None, None).await);
                    let said = match reply {
                        Some(r) if r.status == 204 => s.inv_cancelled.to_owned(),
                        Some(r) if (400..500).contains(&r.status) => {
                            r.diagnostics().unwrap_or_else(|| s.refused.to_owned())
                        }
                        _ => s.unreachable.to_owned(),
                    };
                    let _ = message.try_set(Some(said));
                    reload();
                });
            });
        }
    }
}

fn status_label(code: &str) -> &'static str {
    let s = st();
    match code {
        "sent" => s.inv_status_sent,
        "opened" => s.inv_status_opened,
        "used" => s.inv_status_used,
        "expired" => s.inv_status_expired,
        "locked" => s.inv_status_locked,
        _ => s.inv_status_cancelled,
    }
}
