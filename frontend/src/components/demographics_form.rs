//! The demographics form: validated in the browser as the patient types, by the
//! same rules (`shared`) the server applies when it is sent.

use leptos::prelude::*;
use shared::date::compose_date;
use shared::{Demographics, Field, FieldIssue, Gender, ValidationContext};
use web_sys::Element;

use crate::api::{self, Answer};
use crate::components::dom::{
    add, add_class, add_text, bind, bind_text, flag, focus, on, region, set, set_checked,
};
use crate::components::field::{
    TextField, bind_field_class, bind_invalid, bind_value, error_message, focus_moved_to_field,
    text_field,
};
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
    if let Some(element) = document().get_element_by_id(id) {
        focus(&element);
    }
}

/// Appends the demographics form to `parent`.
pub(crate) fn demographics_form(parent: &Element) {
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

    let send = api::Sending::<Demographics>::new();

    let element = add_class(parent, "form", "form");
    flag(&element, "novalidate", true);
    on(&element, "submit", move |ev| {
        ev.prevent_default();
        form.submitted.set(true);
        if issues.with_untracked(Vec::is_empty) {
            let demographics = form.demographics();
            send.send(async move { api::validate_demographics(&demographics).await });
        } else {
            // After the summary has rendered, move focus to it so that it is read out.
            request_animation_frame(|| {
                if let Ok(Some(summary)) = document().query_selector(".error-summary") {
                    focus(&summary);
                }
            });
        }
    });

    let show_summary = Memo::new(move |_| form.submitted.get() && !issues.with(Vec::is_empty));
    region(
        &element,
        move || show_summary.get(),
        move |shown, holder| {
            if shown {
                error_summary(holder, issues);
            }
        },
    );

    let field = |id, label, hint, optional, input_type, autocomplete, inputmode| TextField {
        id,
        label,
        hint,
        optional,
        input_type,
        autocomplete,
        inputmode,
    };
    let touch = move |field: Field| move || form.touch(field);
    text_field(
        &element,
        &field(
            "family",
            s.family_label,
            None,
            false,
            "text",
            "family-name",
            None,
        ),
        form.family,
        error(Field::Family),
        touch(Field::Family),
    );
    text_field(
        &element,
        &field(
            "given",
            s.given_label,
            Some(s.given_hint),
            false,
            "text",
            "given-name",
            None,
        ),
        form.given,
        error(Field::Given),
        touch(Field::Given),
    );
    date_of_birth(&element, form, error(Field::BirthDate));
    gender_choice(&element, form, error(Field::Gender));
    text_field(
        &element,
        &field(
            "phone",
            s.phone_label,
            Some(s.phone_hint),
            true,
            "tel",
            "tel",
            None,
        ),
        form.phone,
        error(Field::Phone),
        touch(Field::Phone),
    );
    text_field(
        &element,
        &field(
            "email",
            s.email_label,
            Some(s.email_hint),
            true,
            "email",
            "email",
            Some("email"),
        ),
        form.email,
        error(Field::Email),
        touch(Field::Email),
    );

    let button = add_class(&element, "button", "button button-primary");
    set(&button, "type", "submit");
    {
        let button = button.clone();
        bind(move || flag(&button, "disabled", send.pending.get()));
    }
    bind_text(&button, move || {
        if send.pending.get() {
            s.submitting
        } else {
            s.submit
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
}

/// The list of every problem, each a link to its input.
fn error_summary(parent: &Element, issues: Memo<Vec<FieldIssue>>) {
    let s = t();
    let summary = add_class(parent, "div", "error-summary");
    set(&summary, "role", "alert");
    set(&summary, "tabindex", "-1");
    add_text(&summary, "h2", s.error_summary_title);
    let list = add(&summary, "ul");
    region(
        &list,
        move || issues.get(),
        move |issues, holder| {
            for issue in issues {
                let id = input_id(issue.field);
                let link = add_text(
                    &add(holder, "li"),
                    "a",
                    (s.problem)(issue.field, issue.problem),
                );
                set(&link, "href", &format!("#{id}"));
                on(&link, "click", move |ev| {
                    ev.prevent_default();
                    focus_by_id(id);
                });
            }
        },
    );
}

fn server_answer(parent: &Element, answer: &Answer<Demographics>) {
    server_notice(
        parent,
        match answer {
            Answer::Accepted(_) => ServerNotice::Accepted(t().server_accepted),
            Answer::Refused(outcome) => ServerNotice::Refused(
                outcome
                    .field_messages()
                    .map(|(_, message)| message.to_owned())
                    .collect(),
            ),
            Answer::Unreachable => ServerNotice::Unreachable,
        },
    );
}

/// Three inputs (month, day, year) in a fieldset: easier than a date picker for a
/// date people know by heart, and no calendar to scroll back decades.
fn date_of_birth(parent: &Element, form: FormState, error: Signal<Option<&'static str>>) {
    let s = t();
    let described_by = "birth-date-hint birth-date-error";
    let fieldset = add(parent, "fieldset");
    bind_field_class(&fieldset, error);
    set(&fieldset, "role", "group");
    set(&fieldset, "aria-describedby", described_by);
    add_text(&fieldset, "legend", s.birth_date_legend);
    let hint = add_text(&fieldset, "p", s.birth_date_hint);
    hint.set_class_name("hint");
    set(&hint, "id", "birth-date-hint");
    error_message(&fieldset, "birth-date-error", error);
    let parts = add_class(&fieldset, "div", "date-parts");
    let parts_of = [
        (
            "birth-month",
            s.month_label,
            form.birth_month,
            "bday-month",
            "w2",
        ),
        ("birth-day", s.day_label, form.birth_day, "bday-day", "w2"),
        (
            "birth-year",
            s.year_label,
            form.birth_year,
            "bday-year",
            "w4",
        ),
    ];
    for (id, label, value, autocomplete, width) in parts_of {
        let part = add_class(
            &parts,
            "div",
            if width == "w4" {
                "date-part w4"
            } else {
                "date-part w2"
            },
        );
        set(&add_text(&part, "label", label), "for", id);
        let input = add(&part, "input");
        for (name, attribute) in [
            ("id", id),
            ("name", id),
            ("type", "text"),
            ("inputmode", "numeric"),
            ("autocomplete", autocomplete),
            ("maxlength", if width == "w4" { "4" } else { "2" }),
            ("aria-describedby", described_by),
            ("aria-required", "true"),
        ] {
            set(&input, name, attribute);
        }
        bind_invalid(&input, error);
        bind_value(&input, value);
        on(&input, "blur", move |ev| {
            if id == "birth-year" && focus_moved_to_field(&ev) {
                form.touch(Field::BirthDate);
            }
        });
    }
}

/// Administrative gender as radio buttons, each a large touch target.
fn gender_choice(parent: &Element, form: FormState, error: Signal<Option<&'static str>>) {
    let s = t();
    let fieldset = add(parent, "fieldset");
    bind_field_class(&fieldset, error);
    set(&fieldset, "aria-describedby", "gender-error");
    add_text(&fieldset, "legend", s.gender_legend);
    error_message(&fieldset, "gender-error", error);
    let choices = add_class(&fieldset, "div", "choices");
    for gender in Gender::ALL {
        let code = gender.code();
        let id = format!("gender-{code}");
        let choice = add_class(&choices, "div", "choice");
        let input = add(&choice, "input");
        set(&input, "type", "radio");
        set(&input, "id", &id);
        set(&input, "name", "gender");
        set(&input, "value", code);
        bind_invalid(&input, error);
        {
            let input = input.clone();
            bind(move || set_checked(&input, form.gender.with(|g| g == code)));
        }
        on(&input, "change", move |_| {
            form.gender.set(code.to_owned());
            form.touch(Field::Gender);
        });
        set(&add_text(&choice, "label", (s.gender)(gender)), "for", &id);
    }
}
