//! FHIR resources, built and parsed with fhirbolt. The only module that sees
//! fhirbolt types: everything outside works with our own enums and structs.

pub mod bundle;
pub mod extract;
pub mod outcome;
pub mod patient;
pub mod questionnaire;
pub mod resource;

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";
