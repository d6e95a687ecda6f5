//! The notice under a form that says how the server answered.

use leptos::prelude::*;

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

/// The notice for `notice`.
pub(crate) fn server_notice(notice: ServerNotice) -> AnyView {
    let s = t();
    match notice {
        ServerNotice::Accepted(text) => {
            view! { <div class="notice notice-success"><p>{text}</p></div> }.into_any()
        }
        ServerNotice::Refused(messages) => view! {
            <div class="notice notice-error">
                <p>{s.server_refused}</p>
                <ul>{messages.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
            </div>
        }
        .into_any(),
        ServerNotice::Unreachable => {
            view! { <div class="notice notice-error"><p>{s.server_unreachable}</p></div> }
                .into_any()
        }
    }
}
