//! `/`: where a patient or a member of staff starts.

use web_sys::Element;

use crate::components::dom::{add, add_class, add_text, set};
use crate::i18n::t;

pub(crate) fn landing_page(parent: &Element) {
    let s = t();
    add_text(parent, "h1", s.landing_title);
    add_text(parent, "p", s.landing_intro).set_class_name("lead");
    let start = add_text(&add(parent, "p"), "a", s.landing_start);
    set(&start, "href", "/intake");
    start.set_class_name("button button-primary");
    let list = add_class(parent, "ul", "plain-list");
    for (href, label) in [("/kiosk", s.landing_kiosk), ("/staff", s.landing_staff)] {
        set(&add_text(&add(&list, "li"), "a", label), "href", href);
    }
}
