//! Reusable pieces of pages.

pub(crate) mod demographics_form;
pub(crate) mod dom;
pub(crate) mod field;
pub(crate) mod notice;
pub(crate) mod questionnaire;
