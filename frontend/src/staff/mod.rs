//! The staff app (`/staff`), a wasm of its own (`src/bin/staff.rs`): sign-in,
//! idle logoff, the system status, the match-resolution screen
//! (`/staff/review`), patient invitations (`/staff/invitations`) and, for
//! admins, accounts, kiosks and tokens (`/staff/admin`).
//!
//! Who is signed in is one signal ([`SignIn`]); everything under `main` is built
//! from it and the route, so signing out (by hand, after 15 idle minutes, or when
//! the server says the session is over) drops whatever was on screen.

mod admin;
mod idle;
mod invite;
mod item;
mod model;
mod queue;
mod signin;
mod status;

use leptos::prelude::*;
use web_sys::Element;

use crate::api;
use wasm_bindgen::JsCast as _;

use crate::components::dom::{
    add, add_class, add_text, bind, focus, on, region, set, set_opt, text,
};
use crate::i18n::{st, switch_language, t};
use crate::router::{follow, is_staff_path};

/// A staff member's role, as the server names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    FrontDesk,
    Clinician,
    Admin,
}

impl Role {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "front-desk" => Some(Role::FrontDesk),
            "clinician" => Some(Role::Clinician),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether the role resolves matches (front desk only sees the queue).
    pub(crate) fn decides(self) -> bool {
        matches!(self, Role::Clinician | Role::Admin)
    }

    fn label(self) -> &'static str {
        let s = st();
        match self {
            Role::FrontDesk => s.role_front_desk,
            Role::Clinician => s.role_clinician,
            Role::Admin => s.role_admin,
        }
    }
}

/// The signed-in user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Me {
    pub(crate) username: String,
    pub(crate) role: Role,
}

impl Me {
    /// Reads login's and `me`'s answer, keeping its CSRF token for later requests.
    fn from_reply(body: Option<&shared::json::Json>) -> Option<Self> {
        let body = body?;
        let me = Me {
            username: body.get("username")?.as_str()?.to_owned(),
            role: Role::parse(body.get("role")?.as_str()?)?,
        };
        api::set_csrf(Some(body.get("csrf")?.as_str()?.to_owned()));
        Some(me)
    }
}

/// Whether someone is signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SignIn {
    /// Asking the server (`GET /api/staff/me`) as the page loads.
    Checking,
    /// Signed out, with why if it was not by hand.
    Out(Option<&'static str>),
    In(Me),
}

/// The staff app's state, shared by its pages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Staff {
    pub(crate) session: RwSignal<SignIn>,
    /// A message for the next page shown (a decision saved).
    pub(crate) flash: RwSignal<Option<&'static str>>,
}

impl Staff {
    /// Ends the session on screen: everything shown goes, the sign-in form comes.
    pub(crate) fn signed_out(self, why: Option<&'static str>) {
        api::set_csrf(None);
        self.flash.set(None);
        self.session.set(SignIn::Out(why));
    }

    /// What every staff call does with a 401: the session is over.
    /// Returns the reply if it was anything else.
    pub(crate) fn check(self, reply: Option<api::StaffReply>) -> Option<api::StaffReply> {
        if reply.as_ref().is_some_and(|r| r.status == 401) {
            self.signed_out(Some(st().session_ended));
        }
        reply
    }

    /// The signed-in user's role, if any.
    pub(crate) fn role(self) -> Option<Role> {
        self.session.with_untracked(|s| match s {
            SignIn::In(me) => Some(me.role),
            _ => None,
        })
    }
}

/// A page of the staff app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StaffRoute {
    Home,
    Queue,
    /// `/staff/invitations`.
    Invitations,
    /// `/staff/admin` (admins).
    Admin,
    /// `/staff/review/{task}`.
    Item(String),
    NotFound,
}

impl StaffRoute {
    /// The route for a path; `None` outside `/staff`.
    pub(crate) fn parse(path: &str) -> Option<Self> {
        if !is_staff_path(path) {
            return None;
        }
        let rest = path.trim_start_matches("/staff").trim_matches('/');
        Some(match rest.split_once('/') {
            None if rest.is_empty() => StaffRoute::Home,
            None if rest == "review" => StaffRoute::Queue,
            None if rest == "invitations" => StaffRoute::Invitations,
            None if rest == "admin" => StaffRoute::Admin,
            Some(("review", task)) if !task.is_empty() && !task.contains('/') => {
                StaffRoute::Item(task.to_owned())
            }
            _ => StaffRoute::NotFound,
        })
    }
}

/// The staff app, appended to `root`.
pub(crate) fn app(root: &Element) {
    let s = st();
    let route = follow(StaffRoute::parse, StaffRoute::NotFound);
    let staff = Staff {
        session: RwSignal::new(SignIn::Checking),
        flash: RwSignal::new(None),
    };
    leptos::task::spawn_local(async move {
        let reply = api::staff("GET", "/api/staff/me", None, None).await;
        let state = match reply {
            Some(reply) if reply.status == 200 => {
                Me::from_reply(reply.body.as_ref()).map_or(SignIn::Out(None), SignIn::In)
            }
            _ => SignIn::Out(None),
        };
        staff.session.set(state);
    });

    let skip = add_class(root, "a", "skip-link");
    set(&skip, "href", "#main");
    text(&skip, t().skip_to_content);
    let header = add_class(root, "header", "app-header staff-header");
    let brand = add_text(&header, "a", s.app_name);
    set(&brand, "href", "/staff");
    brand.set_class_name("brand");
    let signed_in = Memo::new(move |_| {
        staff.session.with(|s| match s {
            SignIn::In(me) => Some(me.clone()),
            _ => None,
        })
    });
    region(
        &header,
        move || signed_in.get(),
        move |me, holder| {
            let nav = add(holder, "nav");
            set(&nav, "aria-label", s.nav_label);
            if let Some(me) = me {
                let review = (
                    "/staff/review",
                    s.nav_queue,
                    (|r: &StaffRoute| matches!(r, StaffRoute::Queue | StaffRoute::Item(_)))
                        as fn(&StaffRoute) -> bool,
                );
                // The front desk starts at the invitations (its `/staff`).
                let mut links = if me.role == Role::FrontDesk {
                    vec![
                        (
                            "/staff/invitations",
                            s.nav_invitations,
                            (|r: &StaffRoute| {
                                matches!(r, StaffRoute::Invitations | StaffRoute::Home)
                            }) as fn(&StaffRoute) -> bool,
                        ),
                        review,
                    ]
                } else {
                    vec![
                        review,
                        ("/staff/invitations", s.nav_invitations, |r: &StaffRoute| {
                            r == &StaffRoute::Invitations
                        }),
                        ("/staff", s.nav_status, |r: &StaffRoute| {
                            r == &StaffRoute::Home
                        }),
                    ]
                };
                // Others are told "not allowed" if they type the address.
                if me.role == Role::Admin {
                    links.push(("/staff/admin", s.nav_admin, |r: &StaffRoute| {
                        r == &StaffRoute::Admin
                    }));
                }
                for (href, label, is_here) in links {
                    let link = add_text(&nav, "a", label);
                    set(&link, "href", href);
                    bind(move || {
                        set_opt(&link, "aria-current", route.with(is_here).then_some("page"));
                    });
                }
                let who = add_class(&nav, "span", "signed-in");
                set(&who, "id", "signed-in-as");
                text(
                    &who,
                    &format!("{} {} ({})", s.signed_in_as, me.username, me.role.label()),
                );
                let out = add_class(&nav, "button", "sign-out");
                set(&out, "type", "button");
                set(&out, "id", "sign-out");
                text(&out, s.sign_out);
                on(&out, "click", move |_| {
                    leptos::task::spawn_local(async move {
                        // Whatever the answer, the screen forgets the session; the
                        // server forgets it on this request or at its idle timeout.
                        let _ = api::staff("POST", "/api/staff/logout", None, None).await;
                        staff.signed_out(Some(st().signed_out));
                    });
                });
            }
            let switch = add_class(&nav, "button", "language-switch");
            set(&switch, "type", "button");
            set(&switch, "lang", t().switch_to);
            set(&switch, "id", "language-switch");
            text(&switch, t().switch_to_label);
            on(&switch, "click", move |_| switch_language(t().switch_to));
        },
    );

    let main = add(root, "main");
    set(&main, "id", "main");
    set(&main, "tabindex", "-1");
    let state = Memo::new(move |_| {
        let session = staff.session.get();
        // While signed out, the page is the sign-in form whatever the route.
        let route = matches!(session, SignIn::In(_)).then(|| route.get());
        (session, route)
    });
    region(
        &main,
        move || state.get(),
        move |(session, route), page| match (session, route) {
            (SignIn::Checking, _) => {
                add_text(page, "p", s.loading).set_class_name("boot");
            }
            (SignIn::Out(why), _) => signin::signin_page(page, staff, why),
            (SignIn::In(me), Some(StaffRoute::Home)) if me.role == Role::FrontDesk => {
                invite::invitations_page(page, staff);
            }
            (SignIn::In(_), Some(StaffRoute::Home)) => status::home_page(page),
            (SignIn::In(_), Some(StaffRoute::Queue)) => queue::queue_page(page, staff),
            (SignIn::In(_), Some(StaffRoute::Item(task))) => item::item_page(page, staff, task),
            (SignIn::In(_), Some(StaffRoute::Invitations)) => {
                invite::invitations_page(page, staff);
            }
            (SignIn::In(_), Some(StaffRoute::Admin)) => admin::admin_page(page, staff),
            (SignIn::In(_), _) => {
                add_text(page, "h1", s.not_found_title);
                set(
                    &add_text(&add(page, "p"), "a", s.back_to_queue),
                    "href",
                    "/staff/review",
                );
            }
        },
    );
    idle::watch(root, staff);
}

/// Moves focus to `element` once it is on the page (a region builds its content
/// before moving it into place).
pub(crate) fn focus_soon(element: &Element) {
    let element = element.clone();
    let later = wasm_bindgen::closure::Closure::once_into_js(move || focus(&element));
    let _ = window().set_timeout_with_callback(later.unchecked_ref());
}

/// A labelled control in a `div.field` under `parent`: (label, control).
pub(crate) fn labelled(parent: &Element, id: &str, label: &str, tag: &str) -> (Element, Element) {
    let wrap = add_class(parent, "div", "field");
    let label = add_text(&wrap, "label", label);
    set(&label, "for", id);
    let control = add(&wrap, tag);
    set(&control, "id", id);
    (label, control)
}

/// A read-only field holding something to copy (an invitation's link, a password
/// or code shown once): its label, the value (`id`), a copy button
/// (`{id}-copy`) and a status line (`{id}-copied`) that says so once the
/// clipboard took it. Returns the field's box.
pub(crate) fn copy_field(
    parent: &Element,
    id: &str,
    label: &str,
    value: &str,
    button: &str,
) -> Element {
    let wrap = add_class(parent, "div", "field copy-field");
    set(&add_text(&wrap, "label", label), "for", id);
    let input = add(&wrap, "input");
    for (name, v) in [
        ("id", id),
        ("type", "text"),
        ("readonly", ""),
        ("spellcheck", "false"),
        ("autocomplete", "off"),
    ] {
        set(&input, name, v);
    }
    crate::components::dom::set_value(&input, value);
    let copy = add_class(&wrap, "button", "button");
    set(&copy, "type", "button");
    set(&copy, "id", &format!("{id}-copy"));
    text(&copy, button);
    let copied = add_class(&wrap, "span", "muted");
    set(&copied, "role", "status");
    set(&copied, "id", &format!("{id}-copied"));
    let value = value.to_owned();
    on(&copy, "click", move |_| {
        if let Some(field) = input.dyn_ref::<web_sys::HtmlInputElement>() {
            field.select();
        }
        // Only a secure context has a clipboard; elsewhere the value stays
        // selected, for the keyboard's copy.
        let navigator = window().navigator();
        let clipboard =
            js_sys::Reflect::get(&navigator, &"clipboard".into()).is_ok_and(|c| !c.is_undefined());
        if clipboard {
            let written = navigator.clipboard().write_text(&value);
            let copied = copied.clone();
            leptos::task::spawn_local(async move {
                if wasm_bindgen_futures::JsFuture::from(written).await.is_ok() {
                    copied.set_text_content(Some(st().inv_copied));
                }
            });
        }
    });
    wrap
}
