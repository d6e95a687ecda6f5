//! Domain types and validation rules shared by the browser and the server.
//!
//! Everything here is pure: no I/O, no clock (callers pass `today`), no FHIR library.
//! The same code runs in the WebAssembly app as the patient types and in the server
//! when a submission arrives, so the two can never disagree about what is valid.

pub mod answers;
pub mod case;
pub mod date;
pub mod demographics;
pub mod draft;
pub mod fhirpath;
pub mod float;
pub mod form;
pub mod health;
pub mod i18n;
pub mod json;
pub mod kiosk;
pub mod map;
pub mod outcome;
pub mod regex;
pub mod response;
mod rules;
#[cfg(test)]
mod test_forms;

pub use date::Date;
pub use demographics::{
    Demographics, Field, FieldIssue, Gender, Problem, ValidDemographics, ValidationContext,
};
