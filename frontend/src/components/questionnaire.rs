//! Renders any compiled Questionnaire and checks the answers with the same rules
//! the server runs (`shared::answers`) as the patient goes.
//!
//! State is one [`Draft`] (answers by item path). Everything else (which items are
//! enabled, which answers are wrong) is derived from it by `Draft::evaluate`, so
//! the screen and the response sent can never disagree.

use std::sync::Arc;

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use shared::answers::{AnswerProblem, Evaluation, instance_prefix, item_path};
use shared::draft::Draft;
use shared::form::{AnswerOption, Control, Form, Item, ItemKind, Quantity, Value};
use shared::outcome::{OperationOutcome, Severity};
use shared::response::QuestionnaireResponse;

use crate::api::{self, Answer};
use crate::components::field::focus_moved_to_field;
use crate::components::notice::{ServerNotice, server_notice};
use crate::i18n::t;

/// What every item of the form can reach.
#[derive(Clone, Copy)]
struct Ctx {
    draft: RwSignal<Draft>,
    evaluation: Memo<Evaluation>,
    touched: RwSignal<Vec<String>>,
    submitted: RwSignal<bool>,
}

impl Ctx {
    /// The answers at `path`, as a memo: inputs that read it update only when
    /// their own answers change, not on every keystroke elsewhere in the form.
    fn values(&self, path: &str) -> Memo<Vec<Value>> {
        let draft = self.draft;
        let path = path.to_owned();
        // A calculated item shows what its expression gives once the draft settles.
        if self
            .evaluation
            .with_untracked(|e| e.calculated.contains_key(&path))
        {
            let evaluation = self.evaluation;
            return Memo::new(move |_| {
                evaluation.with(|e| e.calculated.get(&path).cloned().unwrap_or_default())
            });
        }
        Memo::new(move |_| draft.with(|d| d.answers.get(&path).cloned().unwrap_or_default()))
    }

    fn set(&self, path: &str, values: Vec<Value>) {
        self.draft.update(|d| d.set(path, values));
    }

    fn touch(&self, path: &str) {
        if !self.touched.with_untracked(|t| t.iter().any(|p| p == path)) {
            self.touched.update(|t| t.push(path.to_owned()));
        }
    }

    /// The message to show for the item at `path`, once it has been left or the
    /// form sent.
    fn error(&self, path: String) -> Memo<Option<String>> {
        let ctx = *self;
        Memo::new(move |_| {
            let shown = ctx.submitted.get() || ctx.touched.with(|t| t.contains(&path));
            if !shown {
                return None;
            }
            ctx.evaluation.with(|e| {
                e.issues
                    .iter()
                    .find(|i| i.path == path && i.problem != AnswerProblem::NotEnabled)
                    .map(|i| (t().answer_problem)(&i.problem))
            })
        })
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

/// The label of an option.
fn option_label(option: &AnswerOption) -> String {
    let text = match &option.value {
        Value::Coding(c) => c
            .display
            .clone()
            .or_else(|| c.code.clone())
            .unwrap_or_default(),
        Value::String(s) | Value::Date(s) | Value::Time(s) | Value::Reference(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        // Options are codes, text, integers, dates, times or references (R4).
        _ => String::new(),
    };
    match &option.prefix {
        Some(prefix) => format!("{prefix} {text}"),
        None => text,
    }
}

/// The whole form: items, a summary of problems, and the server's check.
// Leptos components take their props by value.
#[allow(clippy::needless_pass_by_value)]
#[component]
pub(crate) fn QuestionnaireForm(form: Arc<Form>, questionnaire: String) -> impl IntoView {
    let s = t();
    let draft = RwSignal::new(Draft::initial(&form));
    let evaluation = {
        let form = Arc::clone(&form);
        Memo::new(move |_| draft.with(|d| d.evaluate(&form)))
    };
    let ctx = Ctx {
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

    let send = Action::new_unsync(|response: &QuestionnaireResponse| {
        let response = response.clone();
        async move { api::validate_response(&response).await }
    });
    let on_submit = {
        let form = Arc::clone(&form);
        move |ev: SubmitEvent| {
            ev.prevent_default();
            ctx.submitted.set(true);
            if problems.get_untracked() == 0 {
                send.dispatch(draft.with_untracked(|d| d.response(&form, questionnaire.clone())));
            }
        }
    };
    // itemControl "page" on the top-level groups: one page at a time, with
    // progress; "Next" shows the page's problems instead of moving on.
    let paged = form.items.iter().any(|i| i.control == Some(Control::Page));
    let position = RwSignal::new(0usize);
    let pages = {
        let form = Arc::clone(&form);
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
        let form = Arc::clone(&form);
        move |_| {
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
    let back = move |_| {
        position.update(|p| *p = p.saturating_sub(1));
        show_progress();
    };
    // Once the form is on screen and can take input (the benchmark reads it).
    Effect::new(move |_| request_animation_frame(|| crate::mark("intake:form-interactive")));
    let items: Vec<(usize, Item)> = form.items.clone().into_iter().enumerate().collect();
    view! {
        <form class="form questionnaire" novalidate on:submit=on_submit>
            {paged.then(|| view! {
                <p class="page-progress" id="page-progress" tabindex="-1" aria-live="polite">
                    {move || format!("{} {} {} {}", s.page_label, position.get().min(pages.with(Vec::len).saturating_sub(1)) + 1, s.page_of, pages.with(Vec::len))}
                </p>
                <progress max=move || pages.with(Vec::len).to_string() value=move || (position.get() + 1).to_string()></progress>
            })}
            {items.into_iter().map(|(n, item)| {
                let view = item_view(ctx, item, String::new());
                if paged {
                    view! { <div class="page" hidden=move || current() != Some(n)>{view}</div> }.into_any()
                } else {
                    view
                }
            }).collect_view()}
            <p class="notice notice-error" role="alert" id="form-problems"
                hidden=move || !ctx.submitted.get() || problems.get() == 0>
                {s.form_has_problems}
            </p>
            <div class="form-actions">
                {paged.then(|| view! {
                    <button type="button" class="button button-secondary page-back" hidden=move || position.get() == 0
                        on:click=back>{s.back}</button>
                    <button type="button" class="button button-primary page-next" hidden=is_last
                        on:click=next>{s.next}</button>
                })}
                <button type="submit" class="button button-primary" hidden=move || !is_last()
                    disabled=move || send.pending().get()>
                    {move || if send.pending().get() { s.submitting } else { s.form_submit }}
                </button>
            </div>
            <div id="server-answer" role="status" aria-live="polite">
                {move || send.value().get().map(|answer| server_answer(&answer))}
            </div>
        </form>
    }
}

/// After a page change: back to the top, and focus on the progress line so that
/// screen readers say which page this is.
fn show_progress() {
    use wasm_bindgen::JsCast as _;
    request_animation_frame(|| {
        window().scroll_to_with_x_and_y(0.0, 0.0);
        if let Some(progress) = document()
            .get_element_by_id("page-progress")
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = progress.focus();
        }
    });
}

fn server_answer(answer: &Answer<OperationOutcome>) -> AnyView {
    server_notice(match answer {
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
    })
}

/// One item at `prefix`, shown only while enabled.
fn item_view(ctx: Ctx, item: Item, prefix: String) -> AnyView {
    if item.hidden {
        return ().into_any();
    }
    let path = item_path(&prefix, &item.link_id);
    let enabled = {
        let path = path.clone();
        Memo::new(move |_| ctx.evaluation.with(|e| !e.disabled.contains(&path)))
    };
    // Rebuilt only when the item switches on or off; the answers live in the draft.
    (move || {
        enabled.get().then(|| match item.kind {
            ItemKind::Group => group_view(ctx, item.clone(), prefix.clone()),
            ItemKind::Display => view! {
                <p class="display-item">{item.prefix.clone()}" "{item.text.clone()}</p>
            }
            .into_any(),
            _ => question_view(ctx, &item, &prefix),
        })
    })
    .into_any()
}

fn group_view(ctx: Ctx, item: Item, prefix: String) -> AnyView {
    let s = t();
    let path = item_path(&prefix, &item.link_id);
    let title = format!("{} {}", item.prefix.clone().unwrap_or_default(), item.text)
        .trim()
        .to_owned();
    if !item.repeats {
        let inner = instance_prefix(&prefix, &item.link_id, 0);
        let children = item.items.clone();
        return view! {
            <fieldset class="group" id=dom_id(&path)>
                <legend>{title}</legend>
                {item.help.clone().map(|h| view! { <p class="hint">{h}</p> })}
                {children.into_iter().map(|child| item_view(ctx, child, inner.clone())).collect_view()}
            </fieldset>
        }
        .into_any();
    }
    let count = {
        let path = path.clone();
        Memo::new(move |_| ctx.draft.with(|d| d.instance_count(&path)))
    };
    let add_path = path.clone();
    let group_id = dom_id(&path);
    view! {
        <div class="repeating-group" id=group_id>
            {move || (0..count.get()).map(|index| {
                let inner = instance_prefix(&prefix, &item.link_id, index);
                let remove_path = path.clone();
                let legend = format!("{title} {}", index + 1);
                view! {
                    <fieldset class="group">
                        <legend>{legend}</legend>
                        {item.items.clone().into_iter().map(|child| item_view(ctx, child, inner.clone())).collect_view()}
                        <button type="button" class="button button-secondary"
                            on:click=move |_| ctx.draft.update(|d| d.remove_instance(&remove_path, index))>
                            {s.remove}
                        </button>
                    </fieldset>
                }
            }).collect_view()}
            <button type="button" class="button button-secondary add-instance"
                on:click=move |_| ctx.draft.update(|d| d.add_instance(&add_path))>
                {s.add_another}
            </button>
        </div>
    }
    .into_any()
}

fn question_view(ctx: Ctx, item: &Item, prefix: &str) -> AnyView {
    let s = t();
    let path = item_path(prefix, &item.link_id);
    let id = dom_id(&path);
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = format!("{hint_id} {error_id}");
    let error = ctx.error(path.clone());
    let label = format!("{} {}", item.prefix.clone().unwrap_or_default(), item.text)
        .trim()
        .to_owned();
    let required = item.required.then_some(s.required);
    let children_prefix = instance_prefix(prefix, &item.link_id, 0);
    let children = item.items.clone();
    let hint = item.help.clone().or_else(|| {
        item.unresolved_value_set
            .as_ref()
            .map(|_| s.free_text_fallback.to_owned())
    });
    let grouped = matches!(item.kind, ItemKind::Boolean)
        || (matches!(item.kind, ItemKind::Choice | ItemKind::OpenChoice)
            && !item.options.is_empty()
            && item.control != Some(Control::DropDown)
            && (item.repeats
                || item.options.len() <= 6
                || item.control == Some(Control::RadioButton)));
    let control = input_view(ctx, item, &path, &id, &described_by);
    let error_view = view! {
        <p class="field-error" id=error_id aria-live="polite">
            {move || error.get().map(|m| view! { <span class="visually-hidden">{t().error_prefix}" "</span>{m} })}
        </p>
    };
    let class = move || {
        if error.get().is_some() {
            "field field-invalid"
        } else {
            "field"
        }
    };
    let body = if grouped {
        view! {
            <fieldset class=class aria-describedby=described_by.clone() id=id.clone()>
                <legend>{label}" "{required.map(|r| view! { <span class="optional">{r}</span> })}</legend>
                {hint.map(|h| view! { <p class="hint" id=hint_id.clone()>{h}</p> })}
                {error_view}
                {control}
            </fieldset>
        }
        .into_any()
    } else {
        view! {
            <div class=class>
                <label for=id.clone()>{label}" "{required.map(|r| view! { <span class="optional">{r}</span> })}</label>
                {hint.map(|h| view! { <p class="hint" id=hint_id.clone()>{h}</p> })}
                {error_view}
                {control}
            </div>
        }
        .into_any()
    };
    view! {
        {body}
        {children.into_iter().map(|child| item_view(ctx, child, children_prefix.clone())).collect_view()}
    }
    .into_any()
}

/// The input(s) for a question, by type and item control.
fn input_view(ctx: Ctx, item: &Item, path: &str, id: &str, described_by: &str) -> AnyView {
    let s = t();
    let path = path.to_owned();
    let id = id.to_owned();
    let described_by = described_by.to_owned();
    let required = item.required.then_some("true");
    let read_only = item.read_only;
    let invalid = {
        let error = ctx.error(path.clone());
        move || error.get().map(|_| "true")
    };
    let blur_path = path.clone();
    let on_blur = move |ev: leptos::ev::FocusEvent| {
        if focus_moved_to_field(&ev) {
            ctx.touch(&blur_path);
        }
    };
    let values = ctx.values(&path);
    // The text shown in answer slot `index` (a repeating question has several).
    let text_of = {
        move |index: usize| {
            values
                .with(|values| values.get(index).cloned())
                .map(|v| match v {
                    Value::String(s) | Value::Uri(s) | Value::Date(s) | Value::Reference(s) => {
                        s.clone()
                    }
                    Value::Time(s) => s.get(..5).unwrap_or(&s).to_owned(),
                    Value::DateTime(s) => s.get(..16).unwrap_or(&s).to_owned(),
                    Value::Integer(i) => i.to_string(),
                    Value::Decimal(d) => d.to_string(),
                    Value::Quantity(q) => q.value.map(|v| v.to_string()).unwrap_or_default(),
                    _ => String::new(),
                })
                .unwrap_or_default()
        }
    };
    let kind = item.kind;
    let parse = move |raw: String| -> Option<Value> {
        let raw_trimmed = raw.trim().to_owned();
        if raw_trimmed.is_empty() {
            return None;
        }
        Some(match kind {
            ItemKind::Integer => raw_trimmed
                .parse()
                .map_or(Value::String(raw), Value::Integer),
            ItemKind::Decimal => raw_trimmed
                .parse()
                .map_or(Value::String(raw), Value::Decimal),
            ItemKind::Quantity => raw_trimmed.parse().map_or(Value::String(raw), |v| {
                Value::Quantity(Quantity {
                    value: Some(v),
                    ..Quantity::default()
                })
            }),
            ItemKind::Date => Value::Date(raw_trimmed),
            ItemKind::Time => Value::Time(format!("{raw_trimmed}:00")),
            ItemKind::DateTime => Value::DateTime(local_date_time(&raw_trimmed)),
            ItemKind::Url => Value::Uri(raw_trimmed),
            ItemKind::Reference => Value::Reference(raw_trimmed),
            _ => Value::String(raw),
        })
    };
    // Typing in slot `index` sets that answer; emptying it removes the answer;
    // typing in the slot after the last adds one.
    let set_at = {
        let path = path.clone();
        move |index: usize, raw: String| {
            let value = parse(raw);
            ctx.draft.update(|d| {
                let mut values = d.answers.get(&path).cloned().unwrap_or_default();
                match value {
                    Some(value) if index < values.len() => values[index] = value,
                    Some(value) => values.push(value),
                    None if index < values.len() => {
                        values.remove(index);
                    }
                    None => {}
                }
                d.set(&path, values);
            });
        }
    };
    match item.kind {
        ItemKind::Boolean => {
            let choices = [(true, s.yes), (false, s.no)];
            choices
                .into_iter()
                .map(|(answer, label)| {
                    let input_id = format!("{id}-{answer}");
                    let path_set = path.clone();
                    view! {
                        <div class="choice">
                            <input type="radio" id=input_id.clone() name=id.clone() aria-invalid=invalid disabled=read_only
                                prop:checked=move || values.with(|v| v == &[Value::Boolean(answer)])
                                on:change=move |_| { ctx.set(&path_set, vec![Value::Boolean(answer)]); ctx.touch(&path_set); }/>
                            <label for=input_id>{label}</label>
                        </div>
                    }
                })
                .collect_view()
                .into_any()
        }
        ItemKind::Choice | ItemKind::OpenChoice if !item.options.is_empty() => {
            choice_view(ctx, item, values, &path, &id, &described_by)
        }
        ItemKind::Attachment => attachment_view(ctx, item, values, &path, &id, &described_by),
        _ => {
            let (input_type, inputmode) = match item.kind {
                ItemKind::Integer => ("text", Some("numeric")),
                ItemKind::Decimal | ItemKind::Quantity => ("text", Some("decimal")),
                ItemKind::Date => ("date", None),
                ItemKind::DateTime => ("datetime-local", None),
                ItemKind::Time => ("time", None),
                ItemKind::Url => ("url", Some("url")),
                _ => ("text", None),
            };
            let textarea = item.kind == ItemKind::Text;
            let placeholder = item.entry_format.clone();
            let max_length = item.constraints.max_length.map(|m| m.to_string());
            let label = item.text.clone();
            let slot = move |index: usize| -> AnyView {
                // The first slot has the id the label points at; the others are
                // named by their number.
                let slot_id = if index == 0 {
                    id.clone()
                } else {
                    format!("{id}-{index}")
                };
                let slot_label = (index > 0).then(|| format!("{label} ({})", index + 1));

                let set_at = set_at.clone();
                let on_input = move |ev: leptos::ev::Event| set_at(index, event_target_value(&ev));
                if textarea {
                    view! {
                        <textarea id=slot_id.clone() name=slot_id aria-label=slot_label aria-describedby=described_by.clone()
                            aria-required=required aria-invalid=invalid readonly=read_only
                            maxlength=max_length.clone() rows="4"
                            prop:value=move || text_of(index) on:input=on_input on:blur=on_blur.clone()></textarea>
                    }
                    .into_any()
                } else {
                    view! {
                        <input id=slot_id.clone() name=slot_id type=input_type inputmode=inputmode aria-label=slot_label
                            aria-describedby=described_by.clone() aria-required=required aria-invalid=invalid readonly=read_only
                            placeholder=placeholder.clone() maxlength=max_length.clone()
                            prop:value=move || text_of(index) on:input=on_input on:blur=on_blur.clone()/>
                    }
                    .into_any()
                }
            };
            if item.repeats && !read_only {
                // One slot per answer and an empty one to add another. Keyed by slot
                // number, so typing never rebuilds the input being typed in.
                let count = {
                    let path = path.clone();
                    Memo::new(move |_| ctx.draft.with(|d| d.answers.get(&path).map_or(0, Vec::len)))
                };
                view! {
                    <div class="repeat-answers">
                        <For each=move || 0..=count.get() key=|index| *index children=slot/>
                    </div>
                }
                .into_any()
            } else {
                slot(0)
            }
        }
    }
}

/// Options as radio buttons, check boxes (repeating) or a drop-down (many, or
/// asked for); an open choice adds a free-text answer.
fn choice_view(
    ctx: Ctx,
    item: &Item,
    values: Memo<Vec<Value>>,
    path: &str,
    id: &str,
    described_by: &str,
) -> AnyView {
    let s = t();
    let options = Arc::new(item.options.clone());
    let drop_down = item.control == Some(Control::DropDown)
        || (!item.repeats && options.len() > 6 && item.control != Some(Control::RadioButton));
    let required = item.required.then_some("true");
    let read_only = item.read_only;
    let other = (item.kind == ItemKind::OpenChoice && !read_only).then(|| {
        let other_id = format!("{id}-other");
        let path_set = path.to_owned();
        let options = Arc::clone(&options);
        view! {
            <div class="field other-answer">
                <label for=other_id.clone()>{s.other_answer}</label>
                <input id=other_id type="text"
                    prop:value=move || values.get().into_iter().find_map(|v| match v {
                        Value::String(s) if !options.iter().any(|o| o.value == Value::String(s.clone())) => Some(s),
                        _ => None,
                    }).unwrap_or_default()
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        ctx.draft.update(|d| {
                            let mut values: Vec<Value> = d.answers.get(&path_set).cloned().unwrap_or_default()
                                .into_iter().filter(|v| !matches!(v, Value::String(_))).collect();
                            if !text.trim().is_empty() { values.push(Value::String(text)); }
                            d.set(&path_set, values);
                        });
                    }/>
            </div>
        }
    });
    if drop_down {
        let path_set = path.to_owned();
        let selected_options = Arc::clone(&options);
        let set_options = Arc::clone(&options);
        let selected = move || {
            let values = values.get();
            selected_options
                .iter()
                .position(|o| values.contains(&o.value))
                .map(|i| i.to_string())
                .unwrap_or_default()
        };
        return view! {
            <select id=id.to_owned() aria-describedby=described_by.to_owned() aria-required=required disabled=read_only
                prop:value=selected
                on:change=move |ev| {
                    let chosen = event_target_value(&ev).parse::<usize>().ok().and_then(|i| set_options.get(i).cloned());
                    ctx.set(&path_set, chosen.map(|o| vec![o.value]).unwrap_or_default());
                    ctx.touch(&path_set);
                }>
                <option value="">{s.choose}</option>
                {options.iter().enumerate().map(|(i, o)| view! { <option value=i.to_string()>{option_label(o)}</option> }).collect_view()}
            </select>
            {other}
        }
        .into_any();
    }
    let multiple = item.repeats;
    let input_type = if multiple { "checkbox" } else { "radio" };
    view! {
        <div class="choices">
            {options.iter().enumerate().map(|(index, option)| {
                let input_id = format!("{id}-{index}");
                let value = option.value.clone();
                let value_set = option.value.clone();
                let path_set = path.to_owned();
                view! {
                    <div class="choice">
                        <input type=input_type id=input_id.clone() name=id.to_owned() disabled=read_only
                            prop:checked=move || values.with(|v| v.contains(&value))
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                ctx.draft.update(|d| {
                                    let mut values = if multiple { d.answers.get(&path_set).cloned().unwrap_or_default() } else { vec![] };
                                    values.retain(|v| v != &value_set);
                                    if on { values.push(value_set.clone()); }
                                    d.set(&path_set, values);
                                });
                                ctx.touch(&path_set);
                            }/>
                        <label for=input_id>{option_label(option)}</label>
                    </div>
                }
            }).collect_view()}
        </div>
        {other}
    }
    .into_any()
}

/// A photo or file: read in the browser (after a size check, so a huge file is
/// never loaded), kept as base64 in the answer, shown as a thumbnail if an image.
fn attachment_view(
    ctx: Ctx,
    item: &Item,
    values: Memo<Vec<Value>>,
    path: &str,
    id: &str,
    described_by: &str,
) -> AnyView {
    use wasm_bindgen::JsCast as _;
    let s = t();
    let accept = if item.constraints.mime_types.is_empty() {
        "image/*,application/pdf".to_owned()
    } else {
        item.constraints.mime_types.join(",")
    };
    let max = item
        .constraints
        .max_size
        .unwrap_or(shared::answers::DEFAULT_MAX_ATTACHMENT_BYTES);
    let path_set = path.to_owned();
    let on_change = move |ev: leptos::ev::Event| {
        let file = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0));
        let Some(file) = file else {
            ctx.set(&path_set, vec![]);
            return;
        };
        let file = gloo_file::File::from(file);
        let mut attachment = shared::form::Attachment {
            content_type: Some(file.raw_mime_type()).filter(|m| !m.is_empty()),
            title: Some(file.name()),
            size: Some(file.size()),
            ..shared::form::Attachment::default()
        };
        let path = path_set.clone();
        ctx.touch(&path);
        if file.size() > max {
            // Too large to read: recorded with its size, so the rule reports it.
            ctx.set(&path, vec![Value::Attachment(attachment)]);
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(url) = gloo_file::futures::read_as_data_url(&file).await {
                attachment.data = url.split_once(',').map(|(_, data)| data.to_owned());
                ctx.set(&path, vec![Value::Attachment(attachment)]);
            }
        });
    };
    let chosen = move || {
        values.get().into_iter().find_map(|v| match v {
            Value::Attachment(a) => Some(a),
            _ => None,
        })
    };
    view! {
        <p class="hint">{s.attachment_hint}</p>
        <input id=id.to_owned() type="file" accept=accept aria-describedby=described_by.to_owned()
            aria-required=item.required.then_some("true") disabled=item.read_only on:change=on_change/>
        {move || chosen().map(|file| {
            let image = file.content_type.as_deref().is_some_and(|t| t.starts_with("image/"));
            let thumbnail = match (&file.data, image) {
                (Some(data), true) => Some(format!("data:{};base64,{data}", file.content_type.clone().unwrap_or_default())),
                _ => None,
            };
            view! {
                <p class="attachment-chosen">
                    {s.attachment_chosen}" "{file.title.clone().unwrap_or_default()}
                    {file.size.map(|b| format!(" ({} kB)", b.div_ceil(1024)))}
                </p>
                {thumbnail.map(|src| view! { <img class="attachment-thumbnail" src=src alt=""/> })}
            }
        })}
    }
    .into_any()
}

/// `YYYY-MM-DDTHH:MM` typed in the browser's zone → a FHIR dateTime with offset.
fn local_date_time(typed: &str) -> String {
    let offset_minutes = -(js_sys::Date::new_0().get_timezone_offset() as i64);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let minutes = offset_minutes.abs();
    format!("{typed}:00{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}
