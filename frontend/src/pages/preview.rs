//! `/preview/{id}`: any imported form, as a patient would see it, with what its
//! import could not use. (Staff-only once sign-in exists.)

use std::sync::Arc;

use leptos::prelude::*;

use crate::api;
use crate::components::questionnaire::QuestionnaireForm;
use crate::i18n::t;

#[component]
pub(crate) fn PreviewPage(id: String) -> impl IntoView {
    let s = t();
    let compiled = api::load(async move { api::form(&id).await });
    view! {
            {move || match compiled.get() {
                None => view! { <p>{s.loading}</p> }.into_any(),
                Some(found) => match found {
                Some(compiled) => {
                    let warnings = compiled.warnings.clone();
                    let questionnaire = format!("Questionnaire/{}", compiled.form.id);
                    // In the patient's language where the form has it.
                    let form = compiled.form.localized(s.lang);
                    view! {
                        <h1>{form.title.clone()}</h1>
                        <p class="lead">{s.preview_intro}</p>
                        {(!warnings.is_empty()).then(|| view! {
                            <details class="card import-warnings">
                                <summary>{format!("{} ({})", s.preview_warnings, warnings.len())}</summary>
                                <ul>{warnings.into_iter().map(|w| view! {
                                    <li>{w.link_id.map(|l| format!("[{l}] ")).unwrap_or_default()}{w.message}</li>
                                }).collect_view()}</ul>
                            </details>
                        })}
                        <QuestionnaireForm form=Arc::new(form) questionnaire=questionnaire keep_draft=true/>
                    }.into_any()
                }
                None => view! { <h1>{s.not_found_title}</h1><p>{s.form_not_found}</p> }.into_any(),
            }}}
    }
}
