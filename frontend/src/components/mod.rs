//! Reusable pieces of pages.

pub(crate) mod demographics_form;
pub(crate) mod field;
pub(crate) mod questionnaire;
