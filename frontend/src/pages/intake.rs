//! `/intake/…`: a patient fills in their details on their own phone.

use leptos::prelude::*;

use crate::components::demographics_form::DemographicsForm;
use crate::i18n::t;

#[component]
pub(crate) fn IntakePage() -> impl IntoView {
    let s = t();
    view! {
        <h1>{s.intake_title}</h1>
        <p class="lead">{s.intake_intro}</p>
        <DemographicsForm/>
    }
}
