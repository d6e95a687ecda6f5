//! SDC definition-based extraction: a QuestionnaireResponse becomes a transaction
//! `Bundle` of the resources its Questionnaire's definitions describe.
//!
//! What is read (from the stored Questionnaire JSON: the compiled form leaves
//! extraction metadata out):
//! - `sdc-questionnaire-definitionExtract`, in its complex form (`definition`,
//!   `fullUrl`) and the older plain `valueCanonical` form, on the root (one resource,
//!   always) or on an item (one resource per answered instance of the item);
//! - `sdc-questionnaire-itemExtractionContext` (SDC 3.0), with a resource type as
//!   `valueCode` or as the expression (`Patient`, `RelatedPerson?patient=…`);
//! - `item.definition` (`…/Patient#Patient.name.given`, or relative to the
//!   group's data type, `…/datatypes#HumanName.family`): a group with a definition
//!   makes one element per instance, its questions fill it;
//! - `sdc-questionnaire-definitionExtractValue` with a `fixed-value` or an
//!   `expression`, and `sdc-questionnaire-extractAllocateId` (`%NewPatientId`), so
//!   extracted resources reference each other by their `urn:uuid:` fullUrl.
//!
//! Template-based extraction (`templateExtract`, [`template`]) runs beside it.
//! Forms without any of this get a per-form mapping ([`mapping`]). Answers that
//! cannot be recorded where the definition says (text for a date, a code outside a
//! required value set) are errors naming the linkId; metadata this server does
//! not handle (an element outside [`schema`], an expression the shared FHIRPath
//! engine refuses) is a warning naming the linkId, and that element is left out.
//!
//! Expressions run on [`shared::fhirpath`], the engine the browser and the
//! server's checks use, over the response as raw FHIR JSON: one expression means
//! one thing everywhere.
//!
//! Here: `extract` and what it reads of the Questionnaire. `extractor.rs` walks
//! the items, `paths.rs` reads a `definition`, `values.rs` converts an answer,
//! `resources.rs` completes the resources, `expressions.rs` runs FHIRPath,
//! `ids.rs` makes ids; `schema.rs` is the table of elements, `mapping.rs` the
//! per-form mapping, `template.rs` template-based extraction.

mod expressions;
mod extractor;
mod ids;
pub mod mapping;
mod paths;
mod resources;
mod schema;
mod template;
mod values;

pub(crate) use extractor::Extractor;
pub use ids::{IdGenerator, RandomIds, SequentialIds};
pub(crate) use paths::lower_first;
pub(crate) use resources::{complete_required_elements, link_to_the_patient};
pub(crate) use values::to_type;

use std::collections::HashMap;
use std::fmt::Debug;

use serde_json::{Value, json};

use super::outcome::Issue;

/// Where the SDC extensions read here are defined.
mod url {
    pub(super) const DEFINITION_EXTRACT: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-definitionExtract";
    pub(super) const DEFINITION_EXTRACT_VALUE: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-definitionExtractValue";
    pub(super) const ITEM_EXTRACTION_CONTEXT: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-itemExtractionContext";
    pub(super) const ALLOCATE_ID: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-extractAllocateId";
    pub(super) const TEMPLATE_EXTRACT: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-templateExtract";
    /// Every extension that says how to extract.
    pub(super) const ALL: [&str; 4] = [
        DEFINITION_EXTRACT,
        DEFINITION_EXTRACT_VALUE,
        ITEM_EXTRACTION_CONTEXT,
        ALLOCATE_ID,
    ];
}

/// What extraction made.
#[derive(Clone, Debug, PartialEq)]
pub struct Extraction {
    /// A `transaction` Bundle: one entry per extracted resource.
    pub bundle: Value,
    /// What was left out and why (severity warning), each at its linkId.
    pub warnings: Vec<Issue>,
}

/// Extracts the resources `response` (a QuestionnaireResponse as FHIR JSON,
/// already checked against its form) describes, by the definitions in
/// `questionnaire` (as stored) or, for a form without any, by [`mapping`].
/// `now` is a FHIR instant (for `now()` in expressions). Never panics.
///
/// # Errors
/// Answers that cannot be recorded where their definitions say, each issue at
/// the item's linkId.
pub fn extract(
    questionnaire: &Value,
    response: &Value,
    ids: &dyn IdGenerator,
    now: &str,
) -> Result<Extraction, Vec<Issue>> {
    let overlay = mapping::overlay_for(questionnaire);
    let mut x = Extractor {
        response,
        now,
        ids,
        overlay: overlay.as_ref(),
        variables: HashMap::new(),
        frames: Vec::new(),
        entries: Vec::new(),
        answers_written: 0,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut root = x.read_meta(questionnaire, "Questionnaire");
    if root.extract.is_none()
        && let Some(resource_type) = overlay.as_ref().and_then(|o| o.root.clone())
    {
        root.extract = Some(ExtractSpec {
            resource_type,
            profile: None,
            full_url: None,
        });
    }
    for name in &root.allocate {
        let id = format!("urn:uuid:{}", ids.uuid());
        x.variables.insert(name.clone(), id);
    }
    if let Some(spec) = &root.extract {
        x.push_resource(spec, response, true);
    }
    let q_items = items_of(questionnaire);
    let r_items = items_of(response);
    x.items(q_items, r_items);
    if root.extract.is_some() {
        x.apply_values(&root.values, response, "Questionnaire");
        x.pop_resource();
    }
    if find_extension(questionnaire, url::TEMPLATE_EXTRACT) {
        x.templates(questionnaire, response);
    }
    if !x.errors.is_empty() {
        return Err(x.errors);
    }
    let mut entries: Vec<Value> = x.entries.into_iter().flatten().collect();
    link_to_the_patient(&mut entries);
    let completed = response.get("status").and_then(Value::as_str) != Some("in-progress");
    let mut entries = complete_required_elements(entries, completed, &mut x.warnings);
    // The references above are settled: a dropped resource takes nothing with it
    // but itself (resources point at the Patient, never at each other).
    entries.retain(|e| e.is_object());
    Ok(Extraction {
        bundle: json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        warnings: x.warnings,
    })
}

/// Extraction metadata of the Questionnaire or one item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// `item.definition`, the part after `#`: `Patient.name.given`.
    pub definition: Option<String>,
    /// A resource made here.
    pub extract: Option<ExtractSpec>,
    /// Values set without an answer.
    pub values: Vec<ValueSpec>,
    /// `extractAllocateId` variable names.
    pub allocate: Vec<String>,
}

impl Meta {
    fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// A resource to create (definitionExtract or itemExtractionContext).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtractSpec {
    /// `Patient`, `RelatedPerson`, `Observation`.
    pub resource_type: String,
    /// The profile named, when it is not the base resource.
    pub profile: Option<String>,
    /// A FHIRPath expression for the entry's fullUrl.
    pub full_url: Option<String>,
}

/// One definitionExtractValue.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueSpec {
    /// Element path, after `#`.
    pub path: String,
    /// Where the value comes from.
    pub source: Source,
}

/// A fixed value or an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A fixed value.
    Fixed(Datum),
    /// A FHIRPath expression over the response.
    Expression(String),
}

/// A FHIR value with its type: `("code", "phone")`, `("Coding", {…})`.
#[derive(Clone, Debug, PartialEq)]
pub struct Datum {
    /// The FHIR type name.
    pub ty: String,
    /// FHIR JSON.
    pub json: Value,
}

impl Datum {
    /// A datum of type `ty`.
    pub fn new(ty: &str, json: Value) -> Self {
        Self {
            ty: ty.to_owned(),
            json,
        }
    }
}

fn items_of(node: &Value) -> &[Value] {
    node.get("item")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn extensions(node: &Value) -> &[Value] {
    node.get("extension")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn sub_extension<'a>(ext: &'a Value, name: &str) -> Option<&'a Value> {
    extensions(ext)
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(name))
}

/// The value[x] of a sub-extension, whatever its type.
fn sub_value<'a>(ext: &'a Value, name: &str) -> Option<&'a Value> {
    sub_extension(ext, name)?
        .as_object()?
        .iter()
        .find(|(k, _)| k.starts_with("value"))
        .map(|(_, v)| v)
}

/// Whether any extension with this URL is anywhere in `node`.
fn find_extension(node: &Value, wanted: &str) -> bool {
    match node {
        Value::Object(fields) => {
            fields.get("url").and_then(Value::as_str) == Some(wanted)
                || fields.values().any(|v| find_extension(v, wanted))
        }
        Value::Array(items) => items.iter().any(|v| find_extension(v, wanted)),
        _ => false,
    }
}

/// Whether the Questionnaire says anything about extraction by definitions.
pub fn has_extraction_metadata(questionnaire: &Value) -> bool {
    url::ALL.iter().any(|u| find_extension(questionnaire, u))
}

#[cfg(test)]
mod tests;
