//! `/staff/admin`: the administrators' screen. Staff accounts (add one with a
//! generated password, disable, enable, reset the password), kiosks (add one for
//! some forms, with its one-time enrolment code; revoke) and system tokens
//! (create, revoke).
//!
//! Every secret the server makes (a password, a code, a token) is in the one
//! answer that made it, so it is shown once, in a notice with a copy button, and
//! gone when the page is left; the lists never carry one. Only admins see the
//! link in the navigation; anyone else who types the address is told so here
//! (the server refuses them anyway).

use leptos::prelude::*;
use shared::json::{Json, to_string};
use web_sys::Element;

use super::model::short_instant;
use super::{Role, SignIn, Staff};
use crate::api;
use crate::components::dom::{
    add, add_class, add_text, checked, flag, focus, on, region, set, set_checked, set_value, text,
    value_of,
};
use crate::i18n::st;

/// What a section says after an action: a confirmation, a refusal, or a secret
/// shown this once.
#[derive(Clone, Debug, PartialEq)]
enum Notice {
    Done(String),
    Failed(String),
    Secret {
        said: String,
        label: &'static str,
        value: String,
    },
}

/// A list as loaded: `None` while loading, `Some(None)` if it failed.
type Loaded<T> = RwSignal<Option<Option<Vec<T>>>>;

#[derive(Clone, Debug, PartialEq)]
struct User {
    username: String,
    role: String,
    created: String,
    disabled: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Kiosk {
    id: String,
    name: String,
    forms: Vec<String>,
    created: String,
    enrolled: bool,
    revoked: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Token {
    name: String,
    role: String,
    created: String,
    revoked: Option<String>,
}

fn str_of(json: &Json, key: &str) -> String {
    json.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl User {
    fn read(json: &Json) -> Option<Self> {
        Some(User {
            username: json.get("username")?.as_str()?.to_owned(),
            role: str_of(json, "role"),
            created: str_of(json, "created"),
            disabled: json.get("disabled") == Some(&Json::Bool(true)),
        })
    }
}

impl Kiosk {
    fn read(json: &Json) -> Option<Self> {
        let id = match json.get("id")? {
            Json::Number(n) => n.clone(),
            _ => return None,
        };
        Some(Kiosk {
            id,
            name: str_of(json, "name"),
            forms: super::model::list(Some(json), "forms")
                .iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect(),
            created: str_of(json, "createdAt"),
            enrolled: json.get("enrolledAt").and_then(Json::as_str).is_some(),
            revoked: json.get("revokedAt").and_then(Json::as_str).is_some(),
        })
    }
}

impl Token {
    fn read(json: &Json) -> Option<Self> {
        Some(Token {
            name: json.get("name")?.as_str()?.to_owned(),
            role: str_of(json, "role"),
            created: str_of(json, "created"),
            revoked: json
                .get("revoked")
                .and_then(Json::as_str)
                .map(str::to_owned),
        })
    }
}

/// A name made fit for an element id (`revoke-token-emr-feed`).
fn id_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn role_label(code: &str) -> &'static str {
    let s = st();
    match code {
        "front-desk" => s.role_front_desk,
        "clinician" => s.role_clinician,
        "admin" => s.role_admin,
        _ => s.role_system,
    }
}

/// A staff call: the body of a 2xx answer, or what to tell the admin.
async fn call(
    staff: Staff,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Option<Json>, String> {
    let s = st();
    match staff.check(api::staff(method, path, body, None).await) {
        Some(r) if (200..300).contains(&r.status) => Ok(r.body),
        Some(r) if (400..500).contains(&r.status) => {
            Err(r.diagnostics().unwrap_or_else(|| s.refused.to_owned()))
        }
        _ => Err(s.unreachable.to_owned()),
    }
}

/// Loads `path`'s list under `key` into `into`.
fn load<T: Send + Sync + 'static>(
    staff: Staff,
    path: &'static str,
    key: &'static str,
    read: fn(&Json) -> Option<T>,
    into: Loaded<T>,
) {
    leptos::task::spawn_local(async move {
        let list = call(staff, "GET", path, None).await.ok().map(|body| {
            super::model::list(body.as_ref(), key)
                .iter()
                .filter_map(read)
                .collect()
        });
        let _ = into.try_set(Some(list));
    });
}

pub(crate) fn admin_page(parent: &Element, staff: Staff) {
    let s = st();
    set(&add_text(parent, "h1", s.adm_title), "id", "admin-title");
    if staff.role() != Some(Role::Admin) {
        let refused = add_text(parent, "p", s.adm_not_allowed);
        refused.set_class_name("error-text");
        set(&refused, "id", "admin-not-allowed");
        return;
    }
    add_text(parent, "p", s.adm_intro).set_class_name("lead");
    users_section(parent, staff);
    kiosks_section(parent, staff);
    tokens_section(parent, staff);
}

/// A section with its heading (`{key}-title`) and its notice (`{key}-notice`).
fn section(parent: &Element, key: &str, title: &str, notice: RwSignal<Option<Notice>>) -> Element {
    let section = add_class(parent, "section", "admin-section");
    set(&section, "aria-labelledby", &format!("{key}-title"));
    set(
        &add_text(&section, "h2", title),
        "id",
        &format!("{key}-title"),
    );
    let key = key.to_owned();
    region(
        &section,
        move || notice.get(),
        move |shown, holder| show_notice(holder, &key, shown),
    );
    section
}

fn show_notice(parent: &Element, key: &str, notice: Option<Notice>) {
    let s = st();
    let Some(notice) = notice else { return };
    let (class, role, said) = match &notice {
        Notice::Done(said) | Notice::Secret { said, .. } => {
            ("notice notice-success", "status", said)
        }
        Notice::Failed(said) => ("notice notice-error", "alert", said),
    };
    let box_ = add_class(parent, "div", class);
    set(&box_, "id", &format!("{key}-notice"));
    set(&box_, "role", role);
    add_text(&box_, "p", said);
    if let Notice::Secret { label, value, .. } = notice {
        let field = super::copy_field(&box_, &format!("{key}-secret"), label, &value, s.adm_copy);
        field.class_list().add_1("admin-secret").ok();
    }
}

/// A table (`id`) with its column heads, inside a scroll box; returns its body.
fn table(parent: &Element, id: &str, labelled_by: &str, heads: &[&str]) -> Element {
    let scroll = add_class(parent, "div", "table-scroll");
    let table = add_class(&scroll, "table", "admin-table");
    set(&table, "id", id);
    set(&table, "aria-labelledby", labelled_by);
    let head = add(&add(&table, "thead"), "tr");
    for label in heads {
        set(&add_text(&head, "th", label), "scope", "col");
    }
    add(&table, "tbody")
}

/// A button in a table row that runs `action` when pressed.
fn row_button(
    parent: &Element,
    id: &str,
    label: &str,
    accessible: &str,
    action: impl Fn() + 'static,
) {
    let button = add_class(parent, "button", "button");
    set(&button, "type", "button");
    set(&button, "id", id);
    set(&button, "aria-label", accessible);
    text(&button, label);
    on(&button, "click", move |_| action());
}

/// Shows what `list` holds: loading, unreachable, none, or `rows`.
fn listed<T: Clone + 'static>(
    holder: &Element,
    key: &str,
    list: Option<Option<Vec<T>>>,
    rows: impl FnOnce(&Element, Vec<T>),
) {
    let s = st();
    match list {
        None => {
            add_text(holder, "p", s.loading);
        }
        Some(None) => {
            add_text(holder, "p", s.unreachable).set_class_name("error-text");
        }
        Some(Some(list)) if list.is_empty() => {
            let none = add_text(holder, "p", s.adm_none);
            none.set_class_name("muted");
            set(&none, "id", &format!("{key}-none"));
        }
        Some(Some(list)) => rows(holder, list),
    }
}

/// A labelled field in `row`; returns the input or select.
fn field(row: &Element, id: &str, label: &str, tag: &str) -> Element {
    let (_, input) = super::labelled(row, id, label, tag);
    set(&input, "name", id);
    if tag == "input" {
        set(&input, "type", "text");
        set(&input, "autocomplete", "off");
        set(&input, "spellcheck", "false");
    }
    flag(&input, "required", true);
    input
}

fn options(select: &Element, codes: &[&str]) {
    for code in codes {
        let option = add_text(select, "option", role_label(code));
        set(&option, "value", code);
    }
}

/// The add form's submit button, disabled while `pending`.
fn submit(form: &Element, id: &str, label: &'static str, pending: RwSignal<bool>) {
    let s = st();
    let button = add_class(form, "button", "button button-primary");
    set(&button, "type", "submit");
    set(&button, "id", id);
    crate::components::dom::bind(move || {
        let busy = pending.get();
        flag(&button, "disabled", busy);
        button.set_text_content(Some(if busy { s.sending } else { label }));
    });
}

/// A row's Revoke button (a kiosk, a token): `DELETE path`, then the section's
/// notice says so and its list is asked again.
fn revoke_button(
    actions: &Element,
    id: &str,
    name: &str,
    path: String,
    (staff, notice, reload): (Staff, RwSignal<Option<Notice>>, impl Fn() + Copy + 'static),
) {
    let s = st();
    let name = name.to_owned();
    row_button(
        actions,
        id,
        s.adm_revoke,
        &(s.adm_revoke_for)(&name),
        move || {
            let (path, name) = (path.clone(), name.clone());
            leptos::task::spawn_local(async move {
                let said = match call(staff, "DELETE", &path, None).await {
                    Ok(_) => Notice::Done((s.adm_revoked)(&name)),
                    Err(why) => Notice::Failed(why),
                };
                let _ = notice.try_set(Some(said));
                reload();
            });
        },
    );
}

/// A form that adds something named, with a role (a staff account, a system
/// token), and shows the secret the server made for it once.
struct AddWithRole {
    title: &'static str,
    /// The form's id; its title's is `{key}-title`, its button's `{key}-submit`.
    key: &'static str,
    /// The name's field id, label and JSON member.
    name: (&'static str, &'static str, &'static str),
    role_id: &'static str,
    roles: &'static [&'static str],
    submit: &'static str,
    path: &'static str,
    /// What to say once it is added, from its name.
    added: fn(&str) -> String,
    /// The secret's label, and its JSON member in the answer.
    secret: (&'static str, &'static str),
}

fn add_with_role(
    section: &Element,
    staff: Staff,
    spec: &AddWithRole,
    notice: RwSignal<Option<Notice>>,
    reload: impl Fn() + Copy + 'static,
) {
    let title_id = format!("{}-title", spec.key);
    set(&add_text(section, "h3", spec.title), "id", &title_id);
    let form = add_class(section, "form", "admin-add");
    set(&form, "id", spec.key);
    set(&form, "aria-labelledby", &title_id);
    let row = add_class(&form, "div", "field-row");
    let (name_id, name_label, member) = spec.name;
    let name = field(&row, name_id, name_label, "input");
    let role = field(&row, spec.role_id, st().adm_role, "select");
    options(&role, spec.roles);
    let pending = RwSignal::new(false);
    submit(&row, &format!("{}-submit", spec.key), spec.submit, pending);
    let (path, added, (secret_label, secret_member)) = (spec.path, spec.added, spec.secret);
    on(&form, "submit", move |event| {
        event.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let body = format!(
            "{{\"{member}\":{},\"role\":{}}}",
            to_string(value_of(&name).trim()),
            to_string(value_of(&role).as_str())
        );
        pending.set(true);
        let name = name.clone();
        leptos::task::spawn_local(async move {
            let said = match call(staff, "POST", path, Some(&body)).await {
                Ok(body) => {
                    set_value(&name, "");
                    let body = body.unwrap_or(Json::Null);
                    Notice::Secret {
                        said: added(&str_of(&body, member)),
                        label: secret_label,
                        value: str_of(&body, secret_member),
                    }
                }
                Err(why) => {
                    focus(&name);
                    Notice::Failed(why)
                }
            };
            let _ = pending.try_set(false);
            let _ = notice.try_set(Some(said));
            reload();
        });
    });
}

fn users_section(parent: &Element, staff: Staff) {
    let s = st();
    let users: Loaded<User> = RwSignal::new(None);
    let notice = RwSignal::new(None::<Notice>);
    let reload = move || load(staff, "/api/admin/users", "users", User::read, users);
    reload();
    let me = staff.session.with_untracked(|s| match s {
        SignIn::In(me) => me.username.clone(),
        _ => String::new(),
    });
    let section = section(parent, "users", s.adm_users_title, notice);
    region(
        &section,
        move || users.get(),
        move |list, holder| {
            let me = me.clone();
            listed(holder, "users", list, |holder, list| {
                let body = table(
                    holder,
                    "users",
                    "users-title",
                    &[
                        s.username,
                        s.adm_role,
                        s.inv_col_created,
                        s.adm_state,
                        s.inv_col_actions,
                    ],
                );
                for user in list {
                    let tr = add(&body, "tr");
                    set(&tr, "id", &format!("user-{}", id_part(&user.username)));
                    set(&add_text(&tr, "th", &user.username), "scope", "row");
                    add_text(&tr, "td", role_label(&user.role));
                    add_text(&tr, "td", &short_instant(&user.created));
                    add_text(
                        &tr,
                        "td",
                        if user.disabled {
                            s.adm_disabled
                        } else {
                            s.adm_active
                        },
                    );
                    let actions = add_class(&tr, "td", "admin-actions");
                    let name = user.username.clone();
                    let id = id_part(&name);
                    // The server refuses an admin's disabling of themself too.
                    if name != me {
                        let disable = !user.disabled;
                        let (label, accessible, path_end) = if disable {
                            (s.adm_disable, (s.adm_disable_for)(&name), "disable")
                        } else {
                            (s.adm_enable, (s.adm_enable_for)(&name), "enable")
                        };
                        let who = name.clone();
                        row_button(
                            &actions,
                            &format!("{path_end}-{id}"),
                            label,
                            &accessible,
                            move || {
                                let who = who.clone();
                                leptos::task::spawn_local(async move {
                                    let path = format!(
                                        "/api/admin/users/{}/{path_end}",
                                        api::path_segment(&who)
                                    );
                                    let said = match call(staff, "POST", &path, None).await {
                                        Ok(_) if disable => {
                                            Notice::Done((s.adm_user_disabled)(&who))
                                        }
                                        Ok(_) => Notice::Done((s.adm_user_enabled)(&who)),
                                        Err(why) => Notice::Failed(why),
                                    };
                                    let _ = notice.try_set(Some(said));
                                    reload();
                                });
                            },
                        );
                    }
                    let who = name.clone();
                    row_button(
                        &actions,
                        &format!("reset-{id}"),
                        s.adm_reset,
                        &(s.adm_reset_for)(&name),
                        move || {
                            let who = who.clone();
                            leptos::task::spawn_local(async move {
                                let path = format!(
                                    "/api/admin/users/{}/password",
                                    api::path_segment(&who)
                                );
                                let said = match call(staff, "POST", &path, None).await {
                                    Ok(body) => Notice::Secret {
                                        said: (s.adm_password_reset)(&who),
                                        label: s.password,
                                        value: body
                                            .as_ref()
                                            .map(|b| str_of(b, "password"))
                                            .unwrap_or_default(),
                                    },
                                    Err(why) => Notice::Failed(why),
                                };
                                let _ = notice.try_set(Some(said));
                            });
                        },
                    );
                }
            });
        },
    );

    add_with_role(
        &section,
        staff,
        &AddWithRole {
            title: s.adm_add_user,
            key: "add-user",
            name: ("new-username", s.username, "username"),
            role_id: "new-role",
            roles: &["front-desk", "clinician", "admin"],
            submit: s.adm_add,
            path: "/api/admin/users",
            added: s.adm_user_added,
            secret: (s.password, "password"),
        },
        notice,
        reload,
    );
}

fn kiosks_section(parent: &Element, staff: Staff) {
    let s = st();
    let kiosks: Loaded<Kiosk> = RwSignal::new(None);
    let forms = RwSignal::new(None::<Vec<(String, String)>>);
    let notice = RwSignal::new(None::<Notice>);
    let reload = move || load(staff, "/api/admin/kiosks", "kiosks", Kiosk::read, kiosks);
    reload();
    leptos::task::spawn_local(async move {
        let list = call(staff, "GET", "/api/staff/forms", None)
            .await
            .ok()
            .map(|body| {
                super::model::list(body.as_ref(), "forms")
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
    let section = section(parent, "kiosks", s.adm_kiosks_title, notice);
    region(
        &section,
        move || (kiosks.get(), forms.get()),
        move |(list, forms), holder| {
            let forms = forms.unwrap_or_default();
            listed(holder, "kiosks", list, |holder, list| {
                let body = table(
                    holder,
                    "kiosks",
                    "kiosks-title",
                    &[
                        s.adm_name,
                        s.adm_forms,
                        s.inv_col_created,
                        s.adm_state,
                        s.inv_col_actions,
                    ],
                );
                for kiosk in list {
                    let tr = add(&body, "tr");
                    set(&tr, "id", &format!("kiosk-{}", kiosk.id));
                    set(&add_text(&tr, "th", &kiosk.name), "scope", "row");
                    let titles: Vec<&str> = kiosk
                        .forms
                        .iter()
                        .map(|id| {
                            forms
                                .iter()
                                .find(|(f, _)| f == id)
                                .map_or(id.as_str(), |(_, title)| title.as_str())
                        })
                        .collect();
                    add_text(&tr, "td", &titles.join(", "));
                    add_text(&tr, "td", &short_instant(&kiosk.created));
                    add_text(
                        &tr,
                        "td",
                        if kiosk.revoked {
                            s.adm_revoked_state
                        } else if kiosk.enrolled {
                            s.adm_enrolled
                        } else {
                            s.adm_waiting
                        },
                    );
                    let actions = add_class(&tr, "td", "admin-actions");
                    if !kiosk.revoked {
                        revoke_button(
                            &actions,
                            &format!("revoke-kiosk-{}", kiosk.id),
                            &kiosk.name,
                            format!("/api/admin/kiosks/{}", api::path_segment(&kiosk.id)),
                            (staff, notice, reload),
                        );
                    }
                }
            });
        },
    );

    set(
        &add_text(&section, "h3", s.adm_add_kiosk),
        "id",
        "add-kiosk-title",
    );
    let form = add_class(&section, "form", "admin-add");
    set(&form, "id", "add-kiosk");
    set(&form, "aria-labelledby", "add-kiosk-title");
    let name = field(&form, "new-kiosk-name", s.adm_name, "input");
    let choices = add_class(&form, "fieldset", "field admin-forms");
    add_text(&choices, "legend", s.adm_kiosk_forms);
    let boxes = RwSignal::new(Vec::<(String, Element)>::new());
    region(
        &choices,
        move || forms.get(),
        move |forms, holder| {
            let mut made = Vec::new();
            for (id, title) in forms.unwrap_or_default() {
                let wrap = add_class(holder, "div", "choice-inline");
                let input = add(&wrap, "input");
                let element_id = format!("kiosk-form-{}", id_part(&id));
                for (attr, value) in [("type", "checkbox"), ("id", &element_id), ("value", &id)] {
                    set(&input, attr, value);
                }
                set_checked(&input, id == "registration");
                set(&add_text(&wrap, "label", &title), "for", &element_id);
                made.push((id, input));
            }
            boxes.set(made);
        },
    );
    let pending = RwSignal::new(false);
    submit(&form, "add-kiosk-submit", s.adm_add, pending);
    on(&form, "submit", move |event| {
        event.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let chosen: Vec<String> = boxes.with_untracked(|boxes| {
            boxes
                .iter()
                .filter(|(_, input)| checked(input))
                .map(|(id, _)| to_string(id.as_str()))
                .collect()
        });
        if chosen.is_empty() {
            notice.set(Some(Notice::Failed(s.adm_choose_form.to_owned())));
            return;
        }
        let body = format!(
            "{{\"name\":{},\"forms\":[{}]}}",
            to_string(value_of(&name).trim()),
            chosen.join(",")
        );
        pending.set(true);
        let name = name.clone();
        leptos::task::spawn_local(async move {
            let said = match call(staff, "POST", "/api/admin/kiosks", Some(&body)).await {
                Ok(body) => {
                    set_value(&name, "");
                    let body = body.unwrap_or(Json::Null);
                    Notice::Secret {
                        said: (s.adm_kiosk_added)(
                            &str_of(&body, "name"),
                            &short_instant(&str_of(&body, "codeExpiresAt")),
                        ),
                        label: s.adm_code,
                        value: str_of(&body, "code"),
                    }
                }
                Err(why) => {
                    focus(&name);
                    Notice::Failed(why)
                }
            };
            let _ = pending.try_set(false);
            let _ = notice.try_set(Some(said));
            reload();
        });
    });
}

fn tokens_section(parent: &Element, staff: Staff) {
    let s = st();
    let tokens: Loaded<Token> = RwSignal::new(None);
    let notice = RwSignal::new(None::<Notice>);
    let reload = move || load(staff, "/api/admin/tokens", "tokens", Token::read, tokens);
    reload();
    let section = section(parent, "tokens", s.adm_tokens_title, notice);
    region(
        &section,
        move || tokens.get(),
        move |list, holder| {
            listed(holder, "tokens", list, |holder, list| {
                let body = table(
                    holder,
                    "tokens",
                    "tokens-title",
                    &[
                        s.adm_name,
                        s.adm_role,
                        s.inv_col_created,
                        s.adm_state,
                        s.inv_col_actions,
                    ],
                );
                for token in list {
                    let tr = add(&body, "tr");
                    set(&add_text(&tr, "th", &token.name), "scope", "row");
                    add_text(&tr, "td", role_label(&token.role));
                    add_text(&tr, "td", &short_instant(&token.created));
                    let state = match &token.revoked {
                        Some(at) => format!("{} · {}", s.adm_revoked_state, short_instant(at)),
                        None => s.adm_live.to_owned(),
                    };
                    add_text(&tr, "td", &state);
                    let actions = add_class(&tr, "td", "admin-actions");
                    if token.revoked.is_none() {
                        set(&tr, "id", &format!("token-{}", id_part(&token.name)));
                        revoke_button(
                            &actions,
                            &format!("revoke-token-{}", id_part(&token.name)),
                            &token.name,
                            format!("/api/admin/tokens/{}", api::path_segment(&token.name)),
                            (staff, notice, reload),
                        );
                    }
                }
            });
        },
    );

    add_with_role(
        &section,
        staff,
        &AddWithRole {
            title: s.adm_create_token,
            key: "create-token",
            name: ("new-token-name", s.adm_name, "name"),
            role_id: "new-token-role",
            roles: &["system", "admin"],
            submit: s.adm_create,
            path: "/api/admin/tokens",
            added: s.adm_token_created,
            secret: (s.adm_token, "token"),
        },
        notice,
        reload,
    );
}
