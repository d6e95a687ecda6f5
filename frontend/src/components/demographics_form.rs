//! The demographics form: validated in the browser as the patient types, by the
//! same rules (`shared`) the server applies when it is sent.

use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use shared::date::compose_date;
use shared::{Demographics, Field, FieldIssue, Gender, ValidationContext};

use crate::api::{self, Answer};
use crate::components::field::{ErrorMessage, TextField, focus_moved_to_field};
use crate::components::notice::{ServerNotice, server_notice};
use crate::i18n::t;

/// Everything the patient has typed, one signal per input.
#[derive(Clone, Copy)]
struct FormState {
    family: RwSignal<String>,
    given: RwSignal<String>,
    birth_month: RwSignal<String>,
    birth_day: RwSignal<String>,
    birth_year: RwSignal<String>,
    gender: RwSignal<String>,
    phone: RwSignal<String>,
    email: RwSignal<String>,
    /// Fields the patient has left for another field: their errors show from then on.
    touched: RwSignal<Vec<Field>>,
    /// Whether the patient has tried to send the form: every error shows.
    submitted: RwSignal<bool>,
}

impl FormState {
    fn new() -> Self {
        Self {
            family: RwSignal::default(),
            given: RwSignal::default(),
            birth_month: RwSignal::default(),
            birth_day: RwSignal::default(),
            birth_year: RwSignal::default(),
            gender: RwSignal::default(),
            phone: RwSignal::default(),
            email: RwSignal::default(),
            touched: RwSignal::default(),
            submitted: RwSignal::default(),
        }
    }

    fn demographics(&self) -> Demographics {
        Demographics {
            family: self.family.get(),
            given: self
                .given
                .get()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            birth_date: compose_date(
                &self.birth_year.get(),
                &self.birth_month.get(),
                &self.birth_day.get(),
            ),
            gender: self.gender.get(),
            phone: self.phone.get(),
            email: self.email.get(),
        }
    }

    fn touch(&self, field: Field) {
        if !self.touched.with_untracked(|t| t.contains(&field)) {
            self.touched.update(|t| t.push(field));
        }
    }
}

/// The id of the input that an error summary link moves to.
fn input_id(field: Field) -> &'static str {
    match field {
        Field::Family => "family",
        Field::Given => "given",
        Field::BirthDate => "birth-month",
        Field::Gender => "gender-female",
        Field::Phone => "phone",
        Field::Email => "email",
    }
}

fn focus_by_id(id: &str) {
    use wasm_bindgen::JsCast as _;
    if let Some(element) = document()
        .get_element_by_id(id)
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = element.focus();
    }
}

#[component]
pub(crate) fn DemographicsForm() -> impl IntoView {
    let s = t();
    let form = FormState::new();
    let context = ValidationContext {
        today: crate::today(),
    };
    let issues: Memo<Vec<FieldIssue>> = Memo::new(move |_| form.demographics().issues(&context));

    let error = move |field: Field| {
        Signal::derive(move || {
            let complete_date =
                field == Field::BirthDate && form.birth_year.with(|y| y.trim().len() == 4);
            let shown =
                form.submitted.get() || complete_date || form.touched.with(|t| t.contains(&field));
            if !shown {
                return None;
            }
            issues.with(|all| {
                all.iter()
                    .find(|i| i.field == field)
                    .map(|i| (s.problem)(i.field, i.problem))
            })
        })
    };
    let touch = move |field: Field| Callback::new(move |()| form.touch(field));

    let send = Action::new_unsync(|demographics: &Demographics| {
        let demographics = demographics.clone();
        async move { api::validate_demographics(&demographics).await }
    });
    let summary = NodeRef::<html::Div>::new();
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        form.submitted.set(true);
        if issues.with_untracked(Vec::is_empty) {
            send.dispatch(form.demographics());
        } else {
            // After the summary has rendered, move focus to it so that it is read out.
            request_animation_frame(move || {
                if let Some(summary) = summary.get_untracked() {
                    let _ = summary.focus();
                }
            });
        }
    };

    view! {
        <form class="form" novalidate on:submit=on_submit>
            <Show when=move || form.submitted.get() && !issues.with(Vec::is_empty)>
                <div class="error-summary" role="alert" tabindex="-1" node_ref=summary>
                    <h2>{s.error_summary_title}</h2>
                    <ul>
                        {move || issues.get().into_iter().map(|issue| {
                            let id = input_id(issue.field);
                            view! {
                                <li>
                                    <a href=format!("#{id}") on:click=move |ev| {
                                        ev.prevent_default();
                                        focus_by_id(id);
                                    }>{(s.problem)(issue.field, issue.problem)}</a>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </div>
            </Show>

            <TextField id="family" label=s.family_label value=form.family
                error=error(Field::Family) on_blur=touch(Field::Family) autocomplete="family-name"/>
            <TextField id="given" label=s.given_label hint=s.given_hint value=form.given
                error=error(Field::Given) on_blur=touch(Field::Given) autocomplete="given-name"/>
            <DateOfBirth form=form error=error(Field::BirthDate)/>
            <GenderChoice form=form error=error(Field::Gender)/>
            <TextField id="phone" label=s.phone_label hint=s.phone_hint value=form.phone optional=true
                error=error(Field::Phone) on_blur=touch(Field::Phone) input_type="tel" autocomplete="tel"/>
            <TextField id="email" label=s.email_label hint=s.email_hint value=form.email optional=true
                error=error(Field::Email) on_blur=touch(Field::Email) input_type="email"
                autocomplete="email" inputmode="email"/>

            <button type="submit" class="button button-primary" disabled=move || send.pending().get()>
                {move || if send.pending().get() { s.submitting } else { s.submit }}
            </button>
            <div id="server-answer" role="status" aria-live="polite">
                {move || send.value().get().map(|answer| server_answer(&answer))}
            </div>
        </form>
    }
}

fn server_answer(answer: &Answer<Demographics>) -> AnyView {
    server_notice(match answer {
        Answer::Accepted(_) => ServerNotice::Accepted(t().server_accepted),
        Answer::Refused(outcome) => ServerNotice::Refused(
            outcome
                .field_messages()
                .map(|(_, message)| message.to_owned())
                .collect(),
        ),
        Answer::Unreachable => ServerNotice::Unreachable,
    })
}

/// Three inputs (month, day, year) in a fieldset: easier than a date picker for a
/// date people know by heart, and no calendar to scroll back decades.
#[component]
fn DateOfBirth(form: FormState, error: Signal<Option<&'static str>>) -> impl IntoView {
    let s = t();
    let described_by = "birth-date-hint birth-date-error";
    let invalid = move || error.get().map(|_| "true");
    let part = move |id: &'static str,
                     label: &'static str,
                     value: RwSignal<String>,
                     autocomplete: &'static str,
                     width: &'static str| {
        view! {
            <div class=format!("date-part {width}")>
                <label for=id>{label}</label>
                <input id=id name=id type="text" inputmode="numeric" autocomplete=autocomplete
                    maxlength=if width == "w4" { "4" } else { "2" }
                    aria-describedby=described_by aria-required="true" aria-invalid=invalid
                    prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev))
                    on:blur=move |ev| if id == "birth-year" && focus_moved_to_field(&ev) {
                        form.touch(Field::BirthDate);
                    }
                />
            </div>
        }
    };
    view! {
        <fieldset class=move || if error.get().is_some() { "field field-invalid" } else { "field" }
            role="group" aria-describedby=described_by>
            <legend>{s.birth_date_legend}</legend>
            <p class="hint" id="birth-date-hint">{s.birth_date_hint}</p>
            <ErrorMessage id="birth-date-error".to_owned() error=error/>
            <div class="date-parts">
                {part("birth-month", s.month_label, form.birth_month, "bday-month", "w2")}
                {part("birth-day", s.day_label, form.birth_day, "bday-day", "w2")}
                {part("birth-year", s.year_label, form.birth_year, "bday-year", "w4")}
            </div>
        </fieldset>
    }
}

/// Administrative gender as radio buttons, each a large touch target.
#[component]
fn GenderChoice(form: FormState, error: Signal<Option<&'static str>>) -> impl IntoView {
    let s = t();
    view! {
        <fieldset class=move || if error.get().is_some() { "field field-invalid" } else { "field" }
            aria-describedby="gender-error">
            <legend>{s.gender_legend}</legend>
            <ErrorMessage id="gender-error".to_owned() error=error/>
            <div class="choices">
                {Gender::ALL.into_iter().map(|gender| {
                    let code = gender.code();
                    let id = format!("gender-{code}");
                    view! {
                        <div class="choice">
                            <input type="radio" id=id.clone() name="gender" value=code
                                aria-invalid=move || error.get().map(|_| "true")
                                prop:checked=move || form.gender.with(|g| g == code)
                                on:change=move |_| { form.gender.set(code.to_owned()); form.touch(Field::Gender); }
                            />
                            <label for=id>{(s.gender)(gender)}</label>
                        </div>
                    }
                }).collect_view()}
            </div>
        </fieldset>
    }
}
