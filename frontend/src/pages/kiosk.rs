//! `/kiosk`: the front-desk tablet. The registration form, sent to the clinic and
//! never kept on the device; "Start over" throws away everything entered, so
//! nothing of one patient is left for the next.

use leptos::prelude::*;
use web_sys::Element;

use crate::components::dom::{add_class, add_text, on, region, set};
use crate::components::questionnaire::Purpose;
use crate::i18n::t;
use crate::pages::intake::registration_form;

pub(crate) fn kiosk_page(parent: &Element) {
    let s = t();
    // Bumping the generation re-creates the form, dropping all of its state.
    let generation = RwSignal::new(0u32);
    let kiosk = add_class(parent, "div", "kiosk");
    add_text(&kiosk, "h1", s.kiosk_title);
    add_text(&kiosk, "p", s.kiosk_intro).set_class_name("lead");
    region(
        &kiosk,
        move || generation.track(),
        |(), holder| registration_form(holder, Purpose::Kiosk),
    );
    let start_over = add_text(&kiosk, "button", s.start_over);
    set(&start_over, "type", "button");
    start_over.set_class_name("button button-secondary start-over");
    on(&start_over, "click", move |_| {
        generation.update(|g| *g += 1);
    });
}
