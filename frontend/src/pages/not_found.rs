//! Any route the app does not know.

use web_sys::Element;

use crate::components::dom::{add, add_text, set};
use crate::i18n::t;

pub(crate) fn not_found(parent: &Element) {
    let s = t();
    add_text(parent, "h1", s.not_found_title);
    add_text(parent, "p", s.not_found_body);
    set(&add_text(&add(parent, "p"), "a", s.nav_home), "href", "/");
}
