//! `/preview/{id}`: any imported form, as a patient would see it, with what its
//! import could not use. (Staff-only once sign-in exists.)

use std::sync::Arc;

use web_sys::Element;

use crate::components::dom::{add, add_class, add_text};
use crate::components::questionnaire::{Purpose, questionnaire_form};
use crate::i18n::t;
use crate::pages::intake::with_form;

pub(crate) fn preview_page(parent: &Element, id: String) {
    let s = t();
    with_form(
        parent,
        id,
        true,
        Box::new(move |compiled, holder| {
            let questionnaire = format!("Questionnaire/{}", compiled.form.id);
            // In the patient's language where the form has it.
            let form = compiled.form.localized(s.lang);
            add_text(holder, "h1", &form.title);
            add_text(holder, "p", s.preview_intro).set_class_name("lead");
            let warnings = compiled.warnings;
            if !warnings.is_empty() {
                let details = add_class(holder, "details", "card import-warnings");
                add_text(
                    &details,
                    "summary",
                    &format!("{} ({})", s.preview_warnings, warnings.len()),
                );
                let list = add(&details, "ul");
                for warning in warnings {
                    let line = match warning.link_id {
                        Some(link_id) => format!("[{link_id}] {}", warning.message),
                        None => warning.message,
                    };
                    add_text(&list, "li", &line);
                }
            }
            questionnaire_form(
                holder,
                &Arc::new(form),
                questionnaire,
                Purpose::Preview,
                None,
            );
        }),
    );
}
