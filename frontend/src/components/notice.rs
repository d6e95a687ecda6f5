//! The notice under a form that says how the server answered.

use web_sys::Element;

use super::dom::{add, add_class, add_text};
use crate::i18n::t;

/// What the server said, as the patient reads it.
pub(crate) enum ServerNotice {
    /// Accepted: the text to show.
    Accepted(&'static str),
    /// Refused, with the server's reasons.
    Refused(Vec<String>),
    /// No usable answer.
    Unreachable,
}

/// Appends the notice for `notice` to `parent`.
pub(crate) fn server_notice(parent: &Element, notice: ServerNotice) {
    let s = t();
    match notice {
        ServerNotice::Accepted(text) => {
            add_text(
                &add_class(parent, "div", "notice notice-success"),
                "p",
                text,
            );
        }
        ServerNotice::Refused(messages) => {
            let notice = add_class(parent, "div", "notice notice-error");
            add_text(&notice, "p", s.server_refused);
            let list = add(&notice, "ul");
            for message in messages {
                add_text(&list, "li", &message);
            }
        }
        ServerNotice::Unreachable => {
            add_text(
                &add_class(parent, "div", "notice notice-error"),
                "p",
                s.server_unreachable,
            );
        }
    }
}
