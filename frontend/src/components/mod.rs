//! Reusable pieces of pages.

pub(crate) mod dom;
pub(crate) mod notice;
pub(crate) mod questionnaire;
