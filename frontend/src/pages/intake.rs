//! `/intake/…`: a patient fills in their details on their own phone.

use web_sys::Element;

use crate::components::demographics_form::demographics_form;
use crate::components::dom::add_text;
use crate::i18n::t;

pub(crate) fn intake_page(parent: &Element) {
    let s = t();
    add_text(parent, "h1", s.intake_title);
    add_text(parent, "p", s.intake_intro).set_class_name("lead");
    demographics_form(parent);
}
