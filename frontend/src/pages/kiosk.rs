//! `/kiosk`: the front-desk tablet. "Start over" throws away everything entered,
//! so nothing of one patient is left for the next.

use leptos::prelude::*;

use crate::components::demographics_form::DemographicsForm;
use crate::i18n::t;

#[component]
pub(crate) fn KioskPage() -> impl IntoView {
    let s = t();
    // Bumping the generation re-creates the form, dropping all of its state.
    let generation = RwSignal::new(0u32);
    view! {
        <div class="kiosk">
            <h1>{s.kiosk_title}</h1>
            <p class="lead">{s.kiosk_intro}</p>
            {move || {
                generation.track();
                view! { <DemographicsForm/> }
            }}
            <button type="button" class="button button-secondary" on:click=move |_| generation.update(|g| *g += 1)>
                {s.start_over}
            </button>
        </div>
    }
}
