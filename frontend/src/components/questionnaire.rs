//! Renders any compiled Questionnaire and checks the answers with the same rules
//! the server runs (`shared::answers`) as the patient goes.
//!
//! State is one [`Draft`] (answers by item path). Everything else (which items are
//! enabled, which answers are wrong, calculated values) is derived from it by
//! `Draft::evaluate`, so the screen and the response sent can never disagree.
//!
//! The form's shell (progress, buttons, the server's answer) and its items are
//! built with [`super::dom`], one element per part and one binding per changing
//! value; the items' events are read by listeners on the items' root.

use std::sync::Arc;

use leptos::prelude::*;
use shared::answers::{AnswerProblem, Evaluation, instance_prefix, item_path};
use shared::draft::Draft;
use shared::float::parse_f64;
use shared::form::{AnswerOption, Attachment, Control, Form, Item, ItemKind, Quantity, Value};
use shared::outcome::{OperationOutcome, Severity};
use wasm_bindgen::JsCast as _;
use web_sys::Element;

use super::dom::{
    Part, add, add_class, add_text, append, bind, bind_text, checked, el, el_class, flag, focus,
    on, region, set, set_checked, set_value, target, text, value_of,
};
use crate::api::{self, Answer};
use crate::components::notice::{ServerNotice, server_notice};
use crate::drafts;
use crate::i18n::t;

/// What every item of the form can reach.
#[derive(Clone, Copy)]
struct Ctx {
    form: StoredValue<Arc<Form>>,
    draft: RwSignal<Draft>,
    evaluation: Memo<Evaluation>,
    touched: RwSignal<Vec<String>>,
    submitted: RwSignal<bool>,
}

impl Ctx {
    /// The answers at `path`, as a memo: inputs that read it update only when
    /// their own answers change, not on every keystroke elsewhere in the form.
    /// A calculated item shows what its expression gives once the draft settles.
    fn values(self, path: &str, calculated: bool) -> Memo<Vec<Value>> {
        let (draft, evaluation) = (self.draft, self.evaluation);
        let path = path.to_owned();
        Memo::new(move |_| {
            let answers = || draft.with(|d| d.answers.get(&path).cloned().unwrap_or_default());
            if calculated {
                evaluation
                    .with(|e| e.calculated.get(&path).cloned())
                    .unwrap_or_else(answers)
            } else {
                answers()
            }
        })
    }

    fn set(self, path: &str, values: Vec<Value>) {
        self.draft.update(|d| d.set(path, values));
    }

    fn touch(self, path: &str) {
        if !self.touched.with_untracked(|t| t.iter().any(|p| p == path)) {
            self.touched.update(|t| t.push(path.to_owned()));
        }
    }

    /// The message to show for the item at `path`, once it has been left or the
    /// form sent.
    fn error(self, path: String) -> Memo<Option<String>> {
        Memo::new(move |_| {
            let shown = self.submitted.get() || self.touched.with(|t| t.contains(&path));
            if !shown {
                return None;
            }
            self.evaluation.with(|e| {
                e.issues
                    .iter()
                    .find(|i| i.path == path && i.problem != AnswerProblem::NotEnabled)
                    .map(|i| {
                        let s = t();
                        let message = (s.answer_problem)(&i.problem);
                        // "Not in the expected format" says more with the format.
                        let example = (i.problem == AnswerProblem::PatternMismatch)
                            .then(|| self.item(&i.link_id)?.entry_format)
                            .flatten();
                        match example {
                            Some(example) => format!("{message}. {} {example}", s.for_example),
                            None => message,
                        }
                    })
            })
        })
    }

    /// The item with `link_id`.
    fn item(self, link_id: &str) -> Option<Item> {
        fn find<'a>(items: &'a [Item], link_id: &str) -> Option<&'a Item> {
            items.iter().find_map(|i| {
                if i.link_id == link_id {
                    Some(i)
                } else {
                    find(&i.items, link_id)
                }
            })
        }
        self.form
            .with_value(|form| find(&form.items, link_id).cloned())
    }
}

/// A DOM id for an item path (paths hold `[`, `]` and `.`).
fn dom_id(path: &str) -> String {
    let safe: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("q-{safe}")
}

/// The label of an option (in the form's language for the patient, see
/// `Form::localized`).
fn option_label(option: &AnswerOption) -> String {
    let text = option.display_text();
    match &option.prefix {
        Some(prefix) => format!("{prefix} {text}"),
        None => text,
    }
}

/// An item's prefix and text, as one label.
fn title(item: &Item) -> String {
    match &item.prefix {
        Some(prefix) => format!("{prefix} {}", item.text).trim().to_owned(),
        None => item.text.clone(),
    }
}

thread_local! {
    /// Keeps the form on the page for a reload (see [`carry_over`]).
    static CARRY: std::cell::RefCell<Option<Box<dyn Fn()>>> = std::cell::RefCell::default();
}

/// Session storage: the form carried over a reload, and the focused id.
const CARRY_KEY: &str = "intake.carry";
const FOCUS_KEY: &str = "intake.focus";

fn session() -> web_sys::Storage {
    <gloo_storage::SessionStorage as gloo_storage::Storage>::raw()
}

/// Before the page reloads in another language: the form's answers (kept as a
/// draft is, `drafts::save`, and taken back at once), and a mark that the focus
/// goes back to the language switch, for the page that loads next.
pub(crate) fn carry_over() {
    let _ = session().set_item(FOCUS_KEY, "");
    CARRY.with(|c| c.borrow().as_ref().map(|f| f()));
}

/// After a language switch's reload: the focus back on the switch.
pub(crate) fn restore_focus() {
    if let Ok(Some(_)) = session().get_item(FOCUS_KEY) {
        let _ = session().remove_item(FOCUS_KEY);
        super::dom::focus_later("language-switch".to_owned());
    }
}

/// Where a form's answers go, and whether they are kept on the device meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `/preview`: checked by the server (`$validate`), never kept by the clinic.
    Preview,
    /// A patient's own phone: sent to the clinic (`/api/intakes`); the draft is
    /// kept on the phone until then and offered back.
    Phone,
    /// The shared front-desk kiosk: sent to the clinic; nothing kept on the device.
    Kiosk,
    /// A patient's invitation (`/i`): sent to the clinic with the invitation's
    /// cookie; the answers, prefilled from the chart, are not kept on the phone.
    Invited,
}

/// The whole form: items, a summary of problems, and the server's answer.
/// Appends `form` to `parent`. Once the clinic has the answers (not in a preview),
/// the form gives way to a thank-you. Returns the server's latest answer (the
/// kiosk wipes itself once the answers are accepted).
pub(crate) fn questionnaire_form(
    parent: &Element,
    form: &Arc<Form>,
    questionnaire: String,
    purpose: Purpose,
    prefilled: Option<Draft>,
) -> RwSignal<Option<Answer<OperationOutcome>>> {
    let s = t();
    let keep_draft = !matches!(purpose, Purpose::Kiosk | Purpose::Invited);
    // FHIRPath's today() is the patient's own date (ages, "in the last year").
    let mut initial = Draft::initial_on(form, Some(crate::today()));
    // What the clinic filled in from the chart (the server's populate) wins.
    for (path, values) in prefilled.map(|d| d.answers).unwrap_or_default() {
        initial.answers.insert(path, values);
    }
    // Carried over a language switch's reload: the answers as they were.
    let form_key = drafts::key(form);
    let carried = session().get_item(CARRY_KEY).ok().flatten() == Some(form_key.clone());
    if carried {
        let _ = session().remove_item(CARRY_KEY);
        if let Some(kept) = drafts::load(&form_key) {
            initial.answers = kept.answers;
            initial.instances = kept.instances;
        }
        if !keep_draft {
            // Kept only for the reload: this device keeps no answers.
            drafts::forget(&form_key);
        }
    }
    let draft = RwSignal::new(initial);
    CARRY.with(|c| {
        *c.borrow_mut() = Some(Box::new(move || {
            // A form that is gone (the kiosk's visit wipe) has nothing to keep.
            if draft
                .try_with_untracked(|d| drafts::save(&form_key, d))
                .is_none()
            {
                return;
            }
            let _ = session().set_item(CARRY_KEY, &form_key);
        }));
    });
    let evaluation = {
        let form = Arc::clone(form);
        Memo::new(move |_| draft.with(|d| d.evaluate(&form)))
    };
    let ctx = Ctx {
        form: StoredValue::new(Arc::clone(form)),
        draft,
        evaluation,
        touched: RwSignal::default(),
        submitted: RwSignal::default(),
    };
    let problems = Memo::new(move |_| {
        evaluation.with(|e| {
            e.issues
                .iter()
                .filter(|i| i.problem != AnswerProblem::NotEnabled)
                .count()
        })
    });

    let send = api::Sending::<OperationOutcome>::new();
    let kept_key = keep_draft.then(|| drafts::key(form));
    // Carried over a reload, the answers are on screen already: no offer.
    let offer = RwSignal::new(
        kept_key
            .as_deref()
            .filter(|_| !carried)
            .and_then(drafts::load),
    );
    // Set once the form has been sent and accepted: nothing is kept after that.
    let sent = RwSignal::new(false);
    if let Some(key) = kept_key.clone() {
        let initial = draft.get_untracked();
        let mut pending: Option<TimeoutHandle> = None;
        // Kept as the patient goes, once typing pauses (not on every keystroke);
        // answering instead of taking up the offer starts afresh.
        Effect::new(move |_| {
            if draft.with(|d| d == &initial) {
                return;
            }
            offer.set(None);
            if let Some(handle) = pending.take() {
                handle.clear();
            }
            let key = key.clone();
            let save = move || {
                if !sent.get_untracked() {
                    draft.with_untracked(|d| drafts::save(&key, d));
                }
            };
            pending = set_timeout_with_handle(save, std::time::Duration::from_millis(400)).ok();
        });
    }
    if let Some(key) = kept_key.clone() {
        Effect::new(move |_| {
            let accepted = send.answer.with(|answer| {
                matches!(answer, Some(Answer::Accepted(outcome))
                    if outcome.issue.iter().all(|i| i.severity == Severity::Information))
            });
            if accepted {
                sent.set(true);
                drafts::forget(&key);
            }
        });
    }
    let resume = move |_: web_sys::Event| {
        if let Some(mut kept) = offer.get_untracked() {
            offer.set(None);
            // Not kept with the answers: today is today.
            kept.today = draft.with_untracked(|d| d.today);
            draft.set(kept);
        }
    };
    let start_again = move |_: web_sys::Event| {
        offer.set(None);
        if let Some(key) = &kept_key {
            drafts::forget(key);
        }
    };
    // One idempotency key per submission attempt: the same answers sent again
    // (after no answer came back) reuse it, so the clinic gets them once.
    let mut attempt: Option<(Draft, String)> = None;
    let on_submit = {
        let form = Arc::clone(form);
        move |ev: web_sys::Event| {
            ev.prevent_default();
            ctx.submitted.set(true);
            if problems.get_untracked() != 0 || send.pending.get_untracked() {
                return;
            }
            let response = draft.with_untracked(|d| d.response(&form, questionnaire.clone()));
            if purpose == Purpose::Preview {
                send.send(async move { api::validate_response(&response).await });
                return;
            }
            let now = draft.get_untracked();
            let key = match attempt.take() {
                Some((sent, key)) if sent == now => key,
                _ => api::new_key(),
            };
            attempt = Some((now, key.clone()));
            send.send(async move { api::submit_intake(&response, &key).await });
        }
    };
    // itemControl "page" on the top-level groups: one page at a time, with
    // progress; "Next" shows the page's problems instead of moving on.
    let paged = form.items.iter().any(|i| i.control == Some(Control::Page));
    let position = RwSignal::new(0usize);
    let pages = {
        let form = Arc::clone(form);
        Memo::new(move |_| {
            evaluation.with(|e| {
                form.items
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| !i.hidden && !e.disabled.contains(&i.link_id))
                    .map(|(n, _)| n)
                    .collect::<Vec<usize>>()
            })
        })
    };
    let current = move || {
        pages.with(|p| {
            p.get(position.get().min(p.len().saturating_sub(1)))
                .copied()
        })
    };
    let is_last = move || !paged || pages.with(|p| position.get() + 1 >= p.len());
    let next = {
        let form = Arc::clone(form);
        move |_: web_sys::Event| {
            let Some(n) = pages.with_untracked(|p| p.get(position.get_untracked()).copied()) else {
                return;
            };
            let link_id = form.items[n].link_id.clone();
            let here: Vec<String> = evaluation.with_untracked(|e| {
                e.issues
                    .iter()
                    .filter(|i| i.problem != AnswerProblem::NotEnabled)
                    .filter(|i| i.path == link_id || i.path.starts_with(&format!("{link_id}[")))
                    .map(|i| i.path.clone())
                    .collect()
            });
            if here.is_empty() {
                position.update(|p| *p += 1);
                show_progress();
            } else {
                ctx.touched.update(|t| t.extend(here));
            }
        }
    };
    let back = move |_: web_sys::Event| {
        position.update(|p| *p = p.saturating_sub(1));
        show_progress();
    };

    let root = el_class("div", "items");
    for (n, item) in form.items.iter().enumerate() {
        if paged {
            let page = el_class("div", "page");
            render_item(ctx, item, "", &page);
            bind({
                let page = page.clone();
                move || flag(&page, "hidden", current() != Some(n))
            });
            append(&root, &page);
        } else {
            render_item(ctx, item, "", &root);
        }
    }
    listen(ctx, &root);

    let element = add_class(parent, "form", "form questionnaire");
    flag(&element, "novalidate", true);
    on(&element, "submit", on_submit);
    let offer_box = add_class(&element, "div", "notice resume-offer");
    set(&offer_box, "id", "resume-offer");
    set(&offer_box, "role", "region");
    set(&offer_box, "aria-label", s.resume_continue);
    {
        let offer_box = offer_box.clone();
        bind(move || flag(&offer_box, "hidden", offer.with(Option::is_none)));
    }
    add_text(&offer_box, "p", s.resume_offer);
    let button = |parent: &Element, class: &str, label: &str| {
        let button = add_class(parent, "button", class);
        set(&button, "type", "button");
        text(&button, label);
        button
    };
    let resume_button = button(&offer_box, "button button-primary", s.resume_continue);
    set(&resume_button, "id", "resume-continue");
    on(&resume_button, "click", resume);
    text(&offer_box, " ");
    let again_button = button(&offer_box, "button button-secondary", s.resume_start_again);
    set(&again_button, "id", "resume-start-again");
    on(&again_button, "click", start_again);
    if paged {
        let progress_line = add_class(&element, "p", "page-progress");
        set(&progress_line, "id", "page-progress");
        set(&progress_line, "tabindex", "-1");
        set(&progress_line, "aria-live", "polite");
        bind_text(&progress_line, move || {
            let count = pages.with(Vec::len);
            format!(
                "{} {} {} {}",
                s.page_label,
                position.get().min(count.saturating_sub(1)) + 1,
                s.page_of,
                count
            )
        });
        let progress = add(&element, "progress");
        bind(move || {
            set(&progress, "max", &pages.with(Vec::len).to_string());
            set(&progress, "value", &(position.get() + 1).to_string());
        });
    }
    let holder = add_class(&element, "div", "items-holder");
    append(&holder, &root);
    // Once the form is on screen and can take input (the benchmark reads it).
    request_animation_frame(|| crate::mark("intake:form-interactive"));
    let problems_line = add_text(&element, "p", s.form_has_problems);
    problems_line.set_class_name("notice notice-error");
    set(&problems_line, "role", "alert");
    set(&problems_line, "id", "form-problems");
    bind(move || {
        flag(
            &problems_line,
            "hidden",
            !ctx.submitted.get() || problems.get() == 0,
        );
    });
    let actions = add_class(&element, "div", "form-actions");
    if paged {
        let back_button = button(&actions, "button button-secondary page-back", s.back);
        on(&back_button, "click", back);
        bind(move || flag(&back_button, "hidden", position.get() == 0));
        let next_button = button(&actions, "button button-primary page-next", s.next);
        on(&next_button, "click", next);
        bind(move || flag(&next_button, "hidden", is_last()));
    }
    let submit = add_class(&actions, "button", "button button-primary");
    set(&submit, "type", "submit");
    {
        let submit = submit.clone();
        bind(move || {
            flag(&submit, "hidden", !is_last());
            flag(&submit, "disabled", send.pending.get());
        });
    }
    bind_text(&submit, move || {
        if send.pending.get() {
            s.submitting
        } else {
            s.form_submit
        }
        .to_owned()
    });
    let answer = add(&element, "div");
    set(&answer, "id", "server-answer");
    set(&answer, "role", "status");
    set(&answer, "aria-live", "polite");
    region(
        &answer,
        move || send.answer.get(),
        |answer, holder| {
            if let Some(answer) = answer {
                server_answer(holder, &answer);
            }
        },
    );
    if purpose != Purpose::Preview {
        // Sent: the form gives way to a thank-you, which takes the focus so that
        // screen readers say it.
        let thanks = add_class(parent, "section", "notice notice-success intake-sent");
        set(&thanks, "id", "intake-sent");
        let heading = add_text(&thanks, "h2", s.sent_title);
        set(&heading, "tabindex", "-1");
        add_text(
            &thanks,
            "p",
            if purpose == Purpose::Kiosk {
                s.sent_kiosk
            } else {
                s.sent_phone
            },
        );
        bind(move || {
            let done = send.answer.with(|a| matches!(a, Some(Answer::Accepted(_))));
            flag(&element, "hidden", done);
            flag(&thanks, "hidden", !done);
            if done {
                focus(&heading);
            }
        });
    }
    send.answer
}

/// After a page change: back to the top, and focus on the progress line so that
/// screen readers say which page this is.
fn show_progress() {
    request_animation_frame(|| {
        window().scroll_to_with_x_and_y(0.0, 0.0);
        if let Some(progress) = document().get_element_by_id("page-progress") {
            focus(&progress);
        }
    });
}

fn server_answer(parent: &Element, answer: &Answer<OperationOutcome>) {
    server_notice(
        parent,
        match answer {
            Answer::Accepted(outcome)
                if outcome
                    .issue
                    .iter()
                    .all(|i| i.severity == Severity::Information) =>
            {
                ServerNotice::Accepted(t().form_server_valid)
            }
            Answer::Accepted(outcome) | Answer::Refused(outcome) => ServerNotice::Refused(
                outcome
                    .issue
                    .iter()
                    .filter(|i| i.severity != Severity::Information)
                    .map(|i| {
                        format!(
                            "{} ({})",
                            i.diagnostics.clone().unwrap_or_default(),
                            i.expression.join(", ")
                        )
                    })
                    .collect(),
            ),
            Answer::Unreachable => ServerNotice::Unreachable,
        },
    );
}

/// Appends `item` at `prefix` to `parent`; it is on the page only while enabled.
fn render_item(ctx: Ctx, item: &Item, prefix: &str, parent: &Element) {
    if item.hidden {
        return;
    }
    // Where the item goes when it is switched on.
    let anchor = document().create_text_node("");
    let _ = parent.append_child(&anchor);
    let path = item_path(prefix, &item.link_id);
    let (item, prefix) = (item.clone(), prefix.to_owned());
    let owner = Owner::current();
    let mut shown: Option<Part> = None;
    bind(move || {
        let enabled = ctx.evaluation.with(|e| !e.disabled.contains(&path));
        if enabled == shown.is_some() {
            return;
        }
        if let Some(part) = shown.take() {
            part.remove();
            return;
        }
        let part = Part::build(owner.as_ref(), || match item.kind {
            ItemKind::Group => group(ctx, &item, &prefix, &path),
            ItemKind::Display => {
                let p = el_class("p", "display-item");
                text(&p, &title(&item));
                p
            }
            _ => question(ctx, &item, &prefix, &path),
        });
        if let Some(parent) = anchor.parent_node() {
            let _ = parent.insert_before(part.element(), Some(&anchor));
        }
        shown = Some(part);
    });
}

/// The children of group instance `inner` into `parent`. Child groups shown as
/// tabs (itemControl `tab`, or the groups of a `tab-container`) become one tab set
/// where the first of them stands.
fn render_children(ctx: Ctx, item: &Item, inner: &str, parent: &Element) {
    let is_tab = |child: &Item| {
        child.kind == ItemKind::Group
            && !child.hidden
            && (child.control == Some(Control::Tab) || item.control == Some(Control::TabContainer))
    };
    let tabs: Vec<&Item> = item.items.iter().filter(|c| is_tab(c)).collect();
    let mut tabs_placed = tabs.len() < 2;
    for child in &item.items {
        if tabs_placed || !is_tab(child) {
            if !is_tab(child) || tabs.len() < 2 {
                render_item(ctx, child, inner, parent);
            }
            continue;
        }
        tab_set(ctx, &tabs, inner, parent);
        tabs_placed = true;
    }
}

/// Groups as tabs: a tab list (arrow keys move along it) and one panel shown.
fn tab_set(ctx: Ctx, tabs: &[&Item], inner: &str, parent: &Element) {
    let holder = el_class("div", "tabs");
    let list = el_class("div", "tab-list");
    set(&list, "role", "tablist");
    set(&list, "aria-label", t().tabs_label);
    append(&holder, &list);
    let selected = RwSignal::new(0usize);
    let mut buttons = Vec::new();
    for (index, tab) in tabs.iter().enumerate() {
        let id = dom_id(&item_path(inner, &tab.link_id));
        let button = el_class("button", "tab");
        set(&button, "type", "button");
        set(&button, "role", "tab");
        set(&button, "id", &format!("{id}-tab"));
        set(&button, "aria-controls", &format!("{id}-panel"));
        text(&button, &title(tab));
        append(&list, &button);
        let panel = el_class("div", "tab-panel");
        set(&panel, "role", "tabpanel");
        set(&panel, "id", &format!("{id}-panel"));
        set(&panel, "aria-labelledby", &format!("{id}-tab"));
        render_item(ctx, tab, inner, &panel);
        append(&holder, &panel);
        let path = item_path(inner, &tab.link_id);
        let shown = button.clone();
        bind(move || {
            let on = selected.get() == index;
            set(&shown, "aria-selected", if on { "true" } else { "false" });
            set(&shown, "tabindex", if on { "0" } else { "-1" });
            flag(&panel, "hidden", !on);
            // A tab whose group is switched off goes with it.
            flag(
                &shown,
                "hidden",
                ctx.evaluation.with(|e| e.disabled.contains(&path)),
            );
        });
        on(&button, "click", move |_| selected.set(index));
        buttons.push(button);
    }
    let count = tabs.len();
    on(&list, "keydown", move |event| {
        let Some(key) = event
            .dyn_ref::<web_sys::KeyboardEvent>()
            .map(web_sys::KeyboardEvent::key)
        else {
            return;
        };
        let now = selected.get_untracked();
        let next = match key.as_str() {
            "ArrowRight" => (now + 1) % count,
            "ArrowLeft" => (now + count - 1) % count,
            "Home" => 0,
            "End" => count - 1,
            _ => return,
        };
        event.prevent_default();
        selected.set(next);
        if let Some(button) = buttons.get(next) {
            focus(button);
        }
    });
    append(parent, &holder);
}

fn group(ctx: Ctx, item: &Item, prefix: &str, path: &str) -> Element {
    let s = t();
    let heading = title(item);
    if !item.repeats {
        let fieldset = el_class("fieldset", "group");
        set(&fieldset, "id", &dom_id(path));
        let legend = el("legend");
        text(&legend, &heading);
        append(&fieldset, &legend);
        if let Some(help) = &item.help {
            let hint = el_class("p", "hint");
            text(&hint, help);
            append(&fieldset, &hint);
        }
        render_children(
            ctx,
            item,
            &instance_prefix(prefix, &item.link_id, 0),
            &fieldset,
        );
        return fieldset;
    }
    let holder = el_class("div", "repeating-group");
    set(&holder, "id", &dom_id(path));
    let add = el_class("button", "button button-secondary add-instance");
    set(&add, "type", "button");
    set(&add, "data-act", "add");
    set(&add, "data-path", path);
    text(&add, s.add_another);
    append(&holder, &add);
    let count = {
        let path = path.to_owned();
        Memo::new(move |_| ctx.draft.with(|d| d.instance_count(&path)))
    };
    // Instances are rebuilt when one is added or removed (their paths move up),
    // each under its own reactive owner so that its bindings go with it.
    let (item, prefix, path) = (item.clone(), prefix.to_owned(), path.to_owned());
    let mut shown: Vec<Part> = Vec::new();
    let instances = holder.clone();
    let owner = Owner::current();
    bind(move || {
        let count = count.get();
        for part in shown.drain(..) {
            part.remove();
        }
        for index in 0..count {
            let part = Part::build(owner.as_ref(), || {
                let fieldset = el_class("fieldset", "group");
                let legend = el("legend");
                text(&legend, &format!("{heading} {}", index + 1));
                append(&fieldset, &legend);
                render_children(
                    ctx,
                    &item,
                    &instance_prefix(&prefix, &item.link_id, index),
                    &fieldset,
                );
                let remove = el_class("button", "button button-secondary");
                set(&remove, "type", "button");
                set(&remove, "data-act", "remove");
                set(&remove, "data-path", &path);
                set(&remove, "data-index", &index.to_string());
                text(&remove, s.remove);
                append(&fieldset, &remove);
                fieldset
            });
            let _ = instances.insert_before(part.element(), Some(&add));
            shown.push(part);
        }
    });
    holder
}

/// How a question's answers are entered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Yes / No radio buttons.
    YesNo,
    /// One radio button or check box per option.
    Options,
    /// A `<select>`.
    DropDown,
    /// A file or photo.
    File,
    /// Typed text in one slot per answer.
    Typed,
    /// A number on a slider (itemControl `slider`).
    Slider,
    /// Typed text with the options suggested (itemControl `autocomplete`).
    Suggest,
}

fn entry(item: &Item) -> Entry {
    match item.kind {
        ItemKind::Boolean => Entry::YesNo,
        ItemKind::Attachment => Entry::File,
        ItemKind::Integer | ItemKind::Decimal if item.control == Some(Control::Slider) => {
            Entry::Slider
        }
        ItemKind::Choice | ItemKind::OpenChoice
            if !item.options.is_empty()
                && !item.repeats
                && item.control == Some(Control::Autocomplete) =>
        {
            Entry::Suggest
        }
        ItemKind::Choice | ItemKind::OpenChoice if !item.options.is_empty() => {
            if item.control == Some(Control::DropDown)
                || (!item.repeats
                    && item.options.len() > 6
                    && item.control != Some(Control::RadioButton))
            {
                Entry::DropDown
            } else {
                Entry::Options
            }
        }
        _ => Entry::Typed,
    }
}

/// One question: label, hint, error line and its inputs; then any items nested
/// under it.
fn question(ctx: Ctx, item: &Item, prefix: &str, path: &str) -> Element {
    let s = t();
    let id = dom_id(path);
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let entry = entry(item);
    let grouped = matches!(entry, Entry::YesNo | Entry::Options);
    let field = el_class(if grouped { "fieldset" } else { "div" }, "field");
    let label = el(if grouped { "legend" } else { "label" });
    // An item without text is named by its help (android-fhir puts the question
    // in a flyover); the help is then not repeated as a hint.
    let named_by_help = item.text.trim().is_empty() && item.help.is_some();
    let name = if named_by_help {
        item.help.clone().unwrap_or_default()
    } else if item.text.trim().is_empty() && item.options.len() == 1 {
        // A lone check box with no question text: its option says what it is.
        option_label(&item.options[0])
    } else {
        title(item)
    };
    text(&label, &name);
    if item.required {
        text(&label, " ");
        let required = el_class("span", "optional");
        text(&required, s.required);
        append(&label, &required);
    }
    append(&field, &label);
    if grouped {
        set(&field, "id", &id);
        set(&field, "aria-describedby", &format!("{hint_id} {error_id}"));
    } else {
        set(&label, "for", &id);
    }
    let hint = item.help.clone().filter(|_| !named_by_help).or_else(|| {
        item.unresolved_value_set
            .as_ref()
            .map(|_| s.free_text_fallback.to_owned())
    });
    if let Some(hint) = hint {
        let p = el_class("p", "hint");
        set(&p, "id", &hint_id);
        text(&p, &hint);
        append(&field, &p);
    }
    let error_line = el_class("p", "field-error");
    set(&error_line, "id", &error_id);
    set(&error_line, "aria-live", "polite");
    append(&field, &error_line);
    let error = ctx.error(path.to_owned());
    bind({
        let field = field.clone();
        move || {
            let message = error.get();
            error_line.set_text_content(None);
            field.set_class_name(if message.is_some() {
                "field field-invalid"
            } else {
                "field"
            });
            if let Some(message) = message {
                let prefix = el_class("span", "visually-hidden");
                text(&prefix, &format!("{} ", t().error_prefix));
                append(&error_line, &prefix);
                text(&error_line, &message);
            }
        }
    });
    let values = ctx.values(path, item.expressions.calculated.is_some());
    let control = Inputs {
        ctx,
        read_only: item.read_only || item.expressions.calculated.is_some(),
        item,
        path,
        id: &id,
        described_by: &format!("{hint_id} {error_id}"),
        values,
        error,
    };
    match entry {
        Entry::YesNo => control.yes_no(&field),
        Entry::Options => control.options(&field),
        Entry::DropDown => control.drop_down(&field),
        Entry::File => control.file(&field),
        Entry::Typed => control.typed(&field),
        Entry::Slider => control.slider(&field),
        Entry::Suggest => control.suggest(&field),
    }
    if item.kind == ItemKind::OpenChoice
        && matches!(entry, Entry::Options | Entry::DropDown)
        && !control.read_only
    {
        control.other(&field);
    }
    if item.items.is_empty() {
        return field;
    }
    let holder = el_class("div", "question-with-items");
    append(&holder, &field);
    render_children(
        ctx,
        item,
        &instance_prefix(prefix, &item.link_id, 0),
        &holder,
    );
    holder
}

/// What the inputs of one question need.
struct Inputs<'a> {
    ctx: Ctx,
    /// Read-only items and calculated ones (their value comes from the form).
    read_only: bool,
    item: &'a Item,
    path: &'a str,
    id: &'a str,
    described_by: &'a str,
    values: Memo<Vec<Value>>,
    error: Memo<Option<String>>,
}

impl Inputs<'_> {
    /// An input carrying what the listeners need to find its answer.
    fn input(&self, kind: &str, id: &str) -> Element {
        let input = el("input");
        set(&input, "type", kind);
        set(&input, "id", id);
        self.tag(&input);
        input
    }

    fn tag(&self, element: &Element) {
        set(element, "data-path", self.path);
        set(element, "data-link", &self.item.link_id);
    }

    /// `aria-required` (not on radio buttons: their group carries it) and
    /// `aria-invalid` while the question shows an error.
    fn common(&self, element: &Element) {
        if self.item.required {
            set(element, "aria-required", "true");
        }
        self.invalid_while_error(element);
    }

    fn invalid_while_error(&self, element: &Element) {
        let error = self.error;
        let element = element.clone();
        bind(move || flag_value(&element, "aria-invalid", error.with(Option::is_some)));
    }

    /// A radio button or check box with its label, checked while `is_on`.
    fn choice(
        &self,
        parent: &Element,
        kind: &str,
        index: &str,
        label: &str,
        is_on: impl Fn(&[Value]) -> bool + 'static,
    ) -> Element {
        let row = el_class("div", "choice");
        let input_id = format!("{}-{index}", self.id);
        let input = self.input(kind, &input_id);
        set(&input, "name", self.id);
        set(&input, "data-choice", index);
        set(&input, "aria-describedby", self.described_by);
        self.invalid_while_error(&input);
        flag(&input, "disabled", self.read_only);
        let values = self.values;
        let bound = input.clone();
        bind(move || set_checked(&bound, values.with(|v| is_on(v))));
        append(&row, &input);
        let text_label = el("label");
        set(&text_label, "for", &input_id);
        text(&text_label, label);
        append(&row, &text_label);
        append(parent, &row);
        input
    }

    fn yes_no(&self, field: &Element) {
        let s = t();
        for (answer, label) in [(true, s.yes), (false, s.no)] {
            self.choice(
                field,
                "radio",
                if answer { "true" } else { "false" },
                label,
                move |v| v == [Value::Boolean(answer)],
            );
        }
    }

    fn options(&self, field: &Element) {
        let list = el_class("div", "choices");
        let kind = if self.item.repeats {
            "checkbox"
        } else {
            "radio"
        };
        for (index, option) in self.item.options.iter().enumerate() {
            let value = option.value.clone();
            self.choice(
                &list,
                kind,
                &index.to_string(),
                &option_label(option),
                move |v| v.contains(&value),
            );
        }
        append(field, &list);
    }

    fn drop_down(&self, field: &Element) {
        let select = el("select");
        set(&select, "id", self.id);
        set(&select, "aria-describedby", self.described_by);
        self.tag(&select);
        self.common(&select);
        flag(&select, "disabled", self.read_only);
        let none = el("option");
        set(&none, "value", "");
        text(&none, t().choose);
        append(&select, &none);
        for (index, option) in self.item.options.iter().enumerate() {
            let choice = el("option");
            set(&choice, "value", &index.to_string());
            text(&choice, &option_label(option));
            append(&select, &choice);
        }
        let options = self.item.options.clone();
        let values = self.values;
        let bound = select.clone();
        bind(move || {
            let index = values.with(|values| {
                options
                    .iter()
                    .position(|o| values.contains(&o.value))
                    .map(|i| i.to_string())
                    .unwrap_or_default()
            });
            set_value(&bound, &index);
        });
        append(field, &select);
    }

    /// The free-text answer of an open choice.
    fn other(&self, field: &Element) {
        let holder = el_class("div", "field other-answer");
        let other_id = format!("{}-other", self.id);
        let label = el("label");
        set(&label, "for", &other_id);
        text(&label, t().other_answer);
        append(&holder, &label);
        let input = self.input("text", &other_id);
        set(&input, "data-other", "");
        set(&input, "aria-describedby", self.described_by);
        let (options, values, bound) = (self.item.options.clone(), self.values, input.clone());
        bind(move || {
            let typed = values.with(|values| {
                values
                    .iter()
                    .find_map(|v| match v {
                        Value::String(s) if !options.iter().any(|o| &o.value == v) => {
                            Some(s.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_default()
            });
            set_value(&bound, &typed);
        });
        append(&holder, &input);
        append(field, &holder);
    }

    /// A range input between the item's minValue and maxValue (0 to 100 when
    /// it sets none), with the chosen number beside it; until the patient moves
    /// it there is no answer, and it says so.
    fn slider(&self, field: &Element) {
        let bound = |limit: &Option<Value>, default: &str| match limit {
            Some(Value::Integer(i)) => i.to_string(),
            Some(Value::Decimal(d)) => number_text(*d),
            _ => default.to_owned(),
        };
        let constraints = &self.item.constraints;
        let row = el_class("div", "slider");
        let input = self.input("range", self.id);
        set(&input, "min", &bound(&constraints.min_value, "0"));
        set(&input, "max", &bound(&constraints.max_value, "100"));
        set(
            &input,
            "step",
            if self.item.kind == ItemKind::Integer {
                "1"
            } else {
                "any"
            },
        );
        set(&input, "data-slot", "0");
        set(&input, "aria-describedby", self.described_by);
        self.common(&input);
        flag(&input, "disabled", self.read_only);
        append(&row, &input);
        let shown = el("output");
        set(&shown, "for", self.id);
        append(&row, &shown);
        append(field, &row);
        let values = self.values;
        bind(move || {
            let value = values.with(|v| v.first().map(shown_text));
            match value {
                Some(value) => {
                    set_value(&input, &value);
                    shown.set_text_content(Some(&value));
                }
                None => shown.set_text_content(Some(t().slider_unset)),
            }
        });
    }

    /// A text input that suggests the options as the patient types (a native
    /// `<datalist>`): a typed text equal to an option's label chooses it.
    fn suggest(&self, field: &Element) {
        let list_id = format!("{}-options", self.id);
        let input = self.input("text", self.id);
        set(&input, "list", &list_id);
        set(&input, "autocomplete", "off");
        set(&input, "data-suggest", "");
        set(&input, "aria-describedby", self.described_by);
        self.common(&input);
        flag(&input, "readonly", self.read_only);
        append(field, &input);
        let list = el("datalist");
        set(&list, "id", &list_id);
        for option in &self.item.options {
            let choice = el("option");
            set(&choice, "value", &option_label(option));
            append(&list, &choice);
        }
        append(field, &list);
        let (options, values) = (self.item.options.clone(), self.values);
        bind(move || {
            let typed = values.with(|values| match values.first() {
                Some(Value::String(s)) => s.clone(),
                Some(value) => options
                    .iter()
                    .find(|o| &o.value == value)
                    .map(option_label)
                    .unwrap_or_default(),
                None => String::new(),
            });
            set_value(&input, &typed);
        });
    }

    fn file(&self, field: &Element) {
        let s = t();
        let hint = el_class("p", "hint");
        text(&hint, s.attachment_hint);
        append(field, &hint);
        let input = self.input("file", self.id);
        let accept = if self.item.constraints.mime_types.is_empty() {
            "image/*,application/pdf".to_owned()
        } else {
            self.item.constraints.mime_types.join(",")
        };
        set(&input, "accept", &accept);
        set(&input, "aria-describedby", self.described_by);
        self.common(&input);
        flag(&input, "disabled", self.read_only);
        append(field, &input);
        let chosen = el("div");
        append(field, &chosen);
        let values = self.values;
        bind(move || {
            chosen.set_text_content(None);
            let file = values.with(|values| {
                values.iter().find_map(|v| match v {
                    Value::Attachment(a) => Some(a.clone()),
                    _ => None,
                })
            });
            let Some(file) = file else { return };
            let line = el_class("p", "attachment-chosen");
            text(
                &line,
                &format!(
                    "{} {}",
                    s.attachment_chosen,
                    file.title.clone().unwrap_or_default()
                ),
            );
            if let Some(bytes) = file.size {
                text(&line, &format!(" ({} kB)", bytes.div_ceil(1024)));
            }
            append(&chosen, &line);
            let image = file
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("image/"));
            if let (Some(data), true) = (&file.data, image) {
                let img = el_class("img", "attachment-thumbnail");
                set(&img, "alt", "");
                set(
                    &img,
                    "src",
                    &format!(
                        "data:{};base64,{data}",
                        file.content_type.clone().unwrap_or_default()
                    ),
                );
                append(&chosen, &img);
            }
        });
    }

    /// Text, number, date and time inputs: one slot per answer, and for a
    /// repeating question one more, empty, to add another.
    fn typed(&self, field: &Element) {
        let item = self.item;
        if !item.repeats || self.read_only {
            append(field, &self.slot(0));
            return;
        }
        let holder = el_class("div", "repeat-answers");
        append(field, &holder);
        let count = {
            let (draft, path) = (self.ctx.draft, self.path.to_owned());
            Memo::new(move |_| draft.with(|d| d.answers.get(&path).map_or(0, Vec::len)))
        };
        // Slots are added and removed at the end only, so typing never rebuilds
        // the input being typed in.
        let template = SlotTemplate::of(self);
        let mut slots: Vec<Part> = Vec::new();
        let owner = Owner::current();
        bind(move || {
            let wanted = count.get() + 1;
            while slots.len() > wanted {
                if let Some(part) = slots.pop() {
                    part.remove();
                }
            }
            while slots.len() < wanted {
                let index = slots.len();
                let part = Part::build(owner.as_ref(), || template.slot(index));
                append(&holder, part.element());
                slots.push(part);
            }
        });
    }

    fn slot(&self, index: usize) -> Element {
        SlotTemplate::of(self).slot(index)
    }
}

/// Sets `name="true"` or removes it.
fn flag_value(element: &Element, name: &str, on: bool) {
    if on {
        set(element, name, "true");
    } else {
        let _ = element.remove_attribute(name);
    }
}

/// What every answer slot of a typed question shares.
struct SlotTemplate {
    id: String,
    path: String,
    link_id: String,
    label: String,
    described_by: String,
    kind: ItemKind,
    required: bool,
    read_only: bool,
    placeholder: Option<String>,
    max_length: Option<u32>,
    values: Memo<Vec<Value>>,
    error: Memo<Option<String>>,
}

impl SlotTemplate {
    fn of(control: &Inputs<'_>) -> Self {
        let item = control.item;
        SlotTemplate {
            id: control.id.to_owned(),
            path: control.path.to_owned(),
            link_id: item.link_id.clone(),
            label: item.text.clone(),
            described_by: control.described_by.to_owned(),
            kind: item.kind,
            required: item.required,
            read_only: control.read_only,
            placeholder: item.entry_format.clone(),
            max_length: item.constraints.max_length,
            values: control.values,
            error: control.error,
        }
    }

    fn slot(&self, index: usize) -> Element {
        let (input_type, inputmode) = match self.kind {
            ItemKind::Integer => ("text", Some("numeric")),
            ItemKind::Decimal | ItemKind::Quantity => ("text", Some("decimal")),
            ItemKind::Date => ("date", None),
            ItemKind::DateTime => ("datetime-local", None),
            ItemKind::Time => ("time", None),
            ItemKind::Url => ("url", Some("url")),
            _ => ("text", None),
        };
        let input = if self.kind == ItemKind::Text {
            let area = el("textarea");
            set(&area, "rows", "4");
            area
        } else {
            let input = el("input");
            set(&input, "type", input_type);
            if let Some(mode) = inputmode {
                set(&input, "inputmode", mode);
            }
            if let Some(placeholder) = &self.placeholder {
                set(&input, "placeholder", placeholder);
            }
            input
        };
        // The first slot has the id the label points at; the others are named by
        // their number.
        let slot_id = if index == 0 {
            self.id.clone()
        } else {
            let id = format!("{}-{index}", self.id);
            set(
                &input,
                "aria-label",
                &format!("{} ({})", self.label, index + 1),
            );
            id
        };
        set(&input, "id", &slot_id);
        set(&input, "name", &slot_id);
        set(&input, "aria-describedby", &self.described_by);
        set(&input, "data-path", &self.path);
        set(&input, "data-link", &self.link_id);
        set(&input, "data-slot", &index.to_string());
        if self.required {
            set(&input, "aria-required", "true");
        }
        flag(&input, "readonly", self.read_only);
        if let Some(max) = self.max_length {
            set(&input, "maxlength", &max.to_string());
        }
        let error = self.error;
        let values = self.values;
        let bound = input.clone();
        bind(move || {
            flag_value(&bound, "aria-invalid", error.with(Option::is_some));
            let shown = values.with(|values| values.get(index).map(shown_text).unwrap_or_default());
            set_value(&bound, &shown);
        });
        input
    }
}

/// The text an input shows for an answer.
fn shown_text(value: &Value) -> String {
    match value {
        Value::String(s) | Value::Uri(s) | Value::Date(s) | Value::Reference(s) => s.clone(),
        Value::Time(s) => s.get(..5).unwrap_or(s).to_owned(),
        Value::DateTime(s) => s.get(..16).unwrap_or(s).to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Decimal(d) => number_text(*d),
        Value::Quantity(q) => q.value.map(number_text).unwrap_or_default(),
        _ => String::new(),
    }
}

/// A number as `Display` writes it (the shortest text that reads back as the
/// same number), without the standard library's float formatter (see
/// `shared::float::format_f64`).
fn number_text(x: f64) -> String {
    shared::float::format_f64(x)
}

/// The answer typed as `raw` into an item of `kind`; text that is not a number
/// where one is asked for is kept as text, so the rules can say what is wrong.
fn parse(kind: ItemKind, raw: String) -> Option<Value> {
    let trimmed = raw.trim().to_owned();
    if trimmed.is_empty() {
        return None;
    }
    Some(match kind {
        ItemKind::Integer => trimmed.parse().map_or(Value::String(raw), Value::Integer),
        // `shared::float`: `str::parse`'s result without its table.
        ItemKind::Decimal => parse_f64(&trimmed).map_or(Value::String(raw), Value::Decimal),
        ItemKind::Quantity => parse_f64(&trimmed).map_or(Value::String(raw), |v| {
            Value::Quantity(Quantity {
                value: Some(v),
                ..Quantity::default()
            })
        }),
        ItemKind::Date => Value::Date(trimmed),
        ItemKind::Time => Value::Time(format!("{trimmed}:00")),
        ItemKind::DateTime => Value::DateTime(local_date_time(&trimmed)),
        ItemKind::Url => Value::Uri(trimmed),
        ItemKind::Reference => Value::Reference(trimmed),
        _ => Value::String(raw),
    })
}

/// The listeners on the items' root: every input, choice and button of the form
/// reports here, named by its `data-` attributes.
fn listen(ctx: Ctx, root: &Element) {
    let on_input = move |event: web_sys::Event| {
        let Some(input) = target(&event) else { return };
        let Some(path) = input.get_attribute("data-path") else {
            return;
        };
        if input.has_attribute("data-other") {
            let typed = value_of(&input);
            ctx.draft.update(|d| {
                let mut values: Vec<Value> = d.answers.get(&path).cloned().unwrap_or_default();
                values.retain(|v| !matches!(v, Value::String(_)));
                if !typed.trim().is_empty() {
                    values.push(Value::String(typed));
                }
                d.set(&path, values);
            });
            return;
        }
        if input.has_attribute("data-suggest") {
            let Some(item) = input.get_attribute("data-link").and_then(|l| ctx.item(&l)) else {
                return;
            };
            let typed = value_of(&input);
            let wanted = shared::case::to_lower(typed.trim());
            let chosen = item
                .options
                .iter()
                .find(|o| shared::case::to_lower(&option_label(o)) == wanted)
                .map(|o| o.value.clone());
            let values = match chosen {
                Some(value) => vec![value],
                None if wanted.is_empty() => vec![],
                // Not one of the options: kept as typed, so the rules can say so
                // (or, for an open choice, it is the answer).
                None => vec![Value::String(typed)],
            };
            ctx.set(&path, values);
            return;
        }
        let Some(slot) = input
            .get_attribute("data-slot")
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return;
        };
        let Some(item) = input.get_attribute("data-link").and_then(|l| ctx.item(&l)) else {
            return;
        };
        // Typing in slot `slot` sets that answer; emptying it removes the answer;
        // typing in the slot after the last adds one.
        let value = parse(item.kind, value_of(&input));
        ctx.draft.update(|d| {
            let mut values = d.answers.get(&path).cloned().unwrap_or_default();
            match value {
                Some(value) if slot < values.len() => values[slot] = value,
                Some(value) => values.push(value),
                None if slot < values.len() => {
                    values.remove(slot);
                }
                None => {}
            }
            d.set(&path, values);
        });
    };
    let on_change = move |event: web_sys::Event| {
        let Some(input) = target(&event) else { return };
        let Some(path) = input.get_attribute("data-path") else {
            return;
        };
        let Some(item) = input.get_attribute("data-link").and_then(|l| ctx.item(&l)) else {
            return;
        };
        match input.tag_name().as_str() {
            "SELECT" => {
                let chosen = value_of(&input)
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| item.options.get(i).cloned());
                ctx.set(&path, chosen.map(|o| vec![o.value]).unwrap_or_default());
                ctx.touch(&path);
            }
            "INPUT" if item.kind == ItemKind::Attachment => choose_file(ctx, &item, &path, &input),
            "INPUT" => {
                let Some(choice) = input.get_attribute("data-choice") else {
                    return;
                };
                let chosen = match choice.as_str() {
                    "true" => Some(Value::Boolean(true)),
                    "false" => Some(Value::Boolean(false)),
                    index => index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| item.options.get(i))
                        .map(|o| o.value.clone()),
                };
                let Some(chosen) = chosen else { return };
                let on = checked(&input);
                let multiple = item.repeats && item.kind != ItemKind::Boolean;
                ctx.draft.update(|d| {
                    let mut values = if multiple {
                        d.answers.get(&path).cloned().unwrap_or_default()
                    } else {
                        vec![]
                    };
                    values.retain(|v| v != &chosen);
                    if on {
                        values.push(chosen);
                    }
                    d.set(&path, values);
                });
                ctx.touch(&path);
            }
            _ => {}
        }
    };
    let on_click = move |event: web_sys::Event| {
        let Some(button) =
            target(&event).and_then(|t| t.closest("button[data-act]").ok().flatten())
        else {
            return;
        };
        let Some(path) = button.get_attribute("data-path") else {
            return;
        };
        match button.get_attribute("data-act").as_deref() {
            Some("add") => ctx.draft.update(|d| d.add_instance(&path)),
            Some("remove") => {
                if let Some(index) = button
                    .get_attribute("data-index")
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    ctx.draft.update(|d| d.remove_instance(&path, index));
                }
            }
            _ => {}
        }
    };
    // An answer is checked once the patient moves on to another field (a click
    // elsewhere that only moves the page must not show errors and shift layout
    // under the pointer).
    let on_focus_out = move |event: web_sys::Event| {
        let Some(path) = target(&event).and_then(|t| t.get_attribute("data-path")) else {
            return;
        };
        let moved_to_field = event
            .dyn_ref::<web_sys::FocusEvent>()
            .and_then(web_sys::FocusEvent::related_target)
            .and_then(|t| t.dyn_into::<Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        if moved_to_field {
            ctx.touch(&path);
        }
    };
    on(root, "input", on_input);
    on(root, "change", on_change);
    on(root, "click", on_click);
    on(root, "focusout", on_focus_out);
}

/// A photo or file: read in the browser (after a size check, so a huge file is
/// never loaded), kept as base64 in the answer, shown as a thumbnail if an image.
fn choose_file(ctx: Ctx, item: &Item, path: &str, input: &Element) {
    let max = item
        .constraints
        .max_size
        .unwrap_or(shared::answers::DEFAULT_MAX_ATTACHMENT_BYTES);
    let file = input
        .dyn_ref::<web_sys::HtmlInputElement>()
        .and_then(web_sys::HtmlInputElement::files)
        .and_then(|files| files.get(0));
    let Some(file) = file else {
        ctx.set(path, vec![]);
        return;
    };
    let file = gloo_file::File::from(file);
    let mut attachment = Attachment {
        content_type: Some(file.raw_mime_type()).filter(|m| !m.is_empty()),
        title: Some(file.name()),
        size: Some(file.size()),
        ..Attachment::default()
    };
    let path = path.to_owned();
    ctx.touch(&path);
    if file.size() > max {
        // Too large to read: recorded with its size, so the rule reports it.
        ctx.set(&path, vec![Value::Attachment(attachment)]);
        return;
    }
    // The reader stops if dropped: it is kept until its callback has run.
    let reader = std::rc::Rc::new(std::cell::RefCell::new(None));
    let kept = std::rc::Rc::clone(&reader);
    *reader.borrow_mut() = Some(gloo_file::callbacks::read_as_data_url(&file, move |read| {
        if let Ok(url) = read {
            attachment.data = url.split_once(',').map(|(_, data)| data.to_owned());
            ctx.set(&path, vec![Value::Attachment(attachment)]);
        }
        // Dropped after its callback has returned, not inside it.
        wasm_bindgen_futures::spawn_local(async move { drop(kept) });
    }));
}

/// `YYYY-MM-DDTHH:MM` typed in the browser's zone → a FHIR dateTime with offset.
fn local_date_time(typed: &str) -> String {
    let offset_minutes = -(js_sys::Date::new_0().get_timezone_offset() as i64);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let minutes = offset_minutes.abs();
    format!("{typed}:00{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}
