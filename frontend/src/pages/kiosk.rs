//! `/kiosk`: the front-desk tablet. "Start over" throws away everything entered,
//! so nothing of one patient is left for the next.

use leptos::prelude::*;
use web_sys::Element;

use crate::components::demographics_form::demographics_form;
use crate::components::dom::{add_class, add_text, on, region, set};
use crate::i18n::t;

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
        |(), holder| demographics_form(holder),
    );
    let start_over = add_text(&kiosk, "button", s.start_over);
    set(&start_over, "type", "button");
    start_over.set_class_name("button button-secondary");
    on(&start_over, "click", move |_| {
        generation.update(|g| *g += 1);
    });
}
