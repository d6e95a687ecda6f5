//! The part of FHIR R4's structure the extractor writes: Patient, RelatedPerson,
//! Observation and the data types they use. Each element is named with its kind
//! and whether it repeats, so an answer lands as the right JSON (a `Coding` in a
//! `CodeableConcept`, `value[x]` as `valueQuantity`) and a second answer to a
//! single element is noticed instead of silently overwriting the first.
//!
//! A table, not a generated model: extraction writes a few dozen elements, and an
//! element missing here is reported as unsupported (with the item's linkId), never
//! guessed at.

/// What an element holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A FHIR primitive type, by its FHIR name (`string`, `code`, `date`).
    Primitive(&'static str),
    /// A complex data type or backbone element, by its name in [`elements`]
    /// (`HumanName`, `Patient.contact`).
    Complex(&'static str),
    /// A choice element (`value[x]`): the types allowed, in FHIR's order.
    Choice(&'static [&'static str]),
}

/// One element of a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) kind: Kind,
    /// `0..*`.
    pub(crate) many: bool,
}

const fn one(kind: Kind) -> Element {
    Element { kind, many: false }
}
const fn many(kind: Kind) -> Element {
    Element { kind, many: true }
}
use Kind::{Choice, Complex, Primitive as P};

/// FHIR's primitive types.
pub(crate) const PRIMITIVES: &[&str] = &[
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
];

/// The resource types the extractor can create.
pub(crate) const RESOURCES: &[&str] = &["Patient", "RelatedPerson", "Observation"];

/// The element `name` of `type_name`, if the extractor knows it.
pub(crate) fn element(type_name: &str, name: &str) -> Option<Element> {
    let e = match (type_name, name) {
        // Every resource.
        (t, "id") if RESOURCES.contains(&t) => one(P("id")),
        (t, "language") if RESOURCES.contains(&t) => one(P("code")),
        (
            "Patient"
            | "RelatedPerson"
            | "Observation"
            | "Patient.contact"
            | "HumanName"
            | "ContactPoint"
            | "Address"
            | "Identifier"
            | "CodeableConcept"
            | "Coding"
            | "Quantity"
            | "Reference"
            | "Period"
            | "Attachment"
            | "Annotation"
            | "Patient.communication"
            | "RelatedPerson.communication"
            | "Observation.component",
            "extension",
        ) => return None,

        ("Patient", "identifier") => many(Complex("Identifier")),
        ("Patient", "active") => one(P("boolean")),
        ("Patient", "name") => many(Complex("HumanName")),
        ("Patient", "telecom") => many(Complex("ContactPoint")),
        ("Patient", "gender") => one(P("code")),
        ("Patient", "birthDate") => one(P("date")),
        ("Patient", "deceased") => one(Choice(&["boolean", "dateTime"])),
        ("Patient", "address") => many(Complex("Address")),
        ("Patient", "maritalStatus") => one(Complex("CodeableConcept")),
        ("Patient", "multipleBirth") => one(Choice(&["boolean", "integer"])),
        ("Patient", "photo") => many(Complex("Attachment")),
        ("Patient", "contact") => many(Complex("Patient.contact")),
        ("Patient", "communication") => many(Complex("Patient.communication")),
        ("Patient", "generalPractitioner") => many(Complex("Reference")),
        ("Patient", "managingOrganization") => one(Complex("Reference")),
        ("Patient.contact", "relationship") => many(Complex("CodeableConcept")),
        ("Patient.contact", "name") => one(Complex("HumanName")),
        ("Patient.contact", "telecom") => many(Complex("ContactPoint")),
        ("Patient.contact", "address") => one(Complex("Address")),
        ("Patient.contact", "gender") => one(P("code")),
        ("Patient.contact", "organization") => one(Complex("Reference")),
        ("Patient.contact", "period") => one(Complex("Period")),
        ("Patient.communication" | "RelatedPerson.communication", "language") => {
            one(Complex("CodeableConcept"))
        }
        ("Patient.communication" | "RelatedPerson.communication", "preferred") => one(P("boolean")),

        ("RelatedPerson", "identifier") => many(Complex("Identifier")),
        ("RelatedPerson", "active") => one(P("boolean")),
        ("RelatedPerson", "patient") => one(Complex("Reference")),
        ("RelatedPerson", "relationship") => many(Complex("CodeableConcept")),
        ("RelatedPerson", "name") => many(Complex("HumanName")),
        ("RelatedPerson", "telecom") => many(Complex("ContactPoint")),
        ("RelatedPerson", "gender") => one(P("code")),
        ("RelatedPerson", "birthDate") => one(P("date")),
        ("RelatedPerson", "address") => many(Complex("Address")),
        ("RelatedPerson", "photo") => many(Complex("Attachment")),
        ("RelatedPerson", "period") => one(Complex("Period")),
        ("RelatedPerson", "communication") => many(Complex("RelatedPerson.communication")),

        ("Observation", "identifier") => many(Complex("Identifier")),
        ("Observation", "basedOn" | "partOf" | "focus" | "performer" | "hasMember") => {
            many(Complex("Reference"))
        }
        ("Observation", "derivedFrom") => many(Complex("Reference")),
        ("Observation", "status") => one(P("code")),
        ("Observation", "category") => many(Complex("CodeableConcept")),
        ("Observation", "code") => one(Complex("CodeableConcept")),
        ("Observation", "subject" | "encounter" | "specimen" | "device") => {
            one(Complex("Reference"))
        }
        ("Observation", "effective") => one(Choice(&["dateTime", "Period", "instant"])),
        ("Observation", "issued") => one(P("instant")),
        ("Observation", "value") | ("Observation.component", "value") => one(Choice(&[
            "Quantity",
            "CodeableConcept",
            "string",
            "boolean",
            "integer",
            "time",
            "dateTime",
            "Period",
        ])),
        ("Observation", "dataAbsentReason" | "interpretation" | "bodySite" | "method") => {
            if name == "interpretation" {
                many(Complex("CodeableConcept"))
            } else {
                one(Complex("CodeableConcept"))
            }
        }
        ("Observation", "note") => many(Complex("Annotation")),
        ("Observation", "component") => many(Complex("Observation.component")),
        ("Observation.component", "code") => one(Complex("CodeableConcept")),

        ("HumanName", "use") => one(P("code")),
        ("HumanName", "text" | "family") => one(P("string")),
        ("HumanName", "given" | "prefix" | "suffix") => many(P("string")),
        ("HumanName" | "ContactPoint" | "Address" | "Identifier", "period") => {
            one(Complex("Period"))
        }
        ("ContactPoint", "system" | "use") => one(P("code")),
        ("ContactPoint", "value") => one(P("string")),
        ("ContactPoint", "rank") => one(P("positiveInt")),
        ("Address", "use" | "type") => one(P("code")),
        ("Address", "text" | "city" | "district" | "state" | "postalCode" | "country") => {
            one(P("string"))
        }
        ("Address", "line") => many(P("string")),
        ("Identifier", "use") => one(P("code")),
        ("Identifier", "type") => one(Complex("CodeableConcept")),
        ("Identifier", "system") => one(P("uri")),
        ("Identifier", "value") => one(P("string")),
        ("Identifier", "assigner") => one(Complex("Reference")),
        ("CodeableConcept", "coding") => many(Complex("Coding")),
        ("CodeableConcept", "text") => one(P("string")),
        ("Coding", "system") => one(P("uri")),
        ("Coding", "version" | "display") => one(P("string")),
        ("Coding", "code") => one(P("code")),
        ("Coding", "userSelected") => one(P("boolean")),
        ("Quantity", "value") => one(P("decimal")),
        ("Quantity", "comparator" | "code") => one(P("code")),
        ("Quantity", "unit") => one(P("string")),
        ("Quantity", "system") => one(P("uri")),
        ("Reference", "reference" | "display") => one(P("string")),
        ("Reference", "type") => one(P("uri")),
        ("Reference", "identifier") => one(Complex("Identifier")),
        ("Period", "start" | "end") => one(P("dateTime")),
        ("Attachment", "contentType" | "language") => one(P("code")),
        ("Attachment", "data") => one(P("base64Binary")),
        ("Attachment", "url") => one(P("url")),
        ("Attachment", "size") => one(P("unsignedInt")),
        ("Attachment", "title") => one(P("string")),
        ("Attachment", "creation") => one(P("dateTime")),
        ("Annotation", "text") => one(P("markdown")),
        ("Annotation", "time") => one(P("dateTime")),
        _ => return None,
    };
    Some(e)
}

/// The codes a `code` element may hold, where R4 binds it to a closed value set
/// (`required`). `None`: any code.
pub(crate) fn required_codes(type_name: &str, name: &str) -> Option<&'static [&'static str]> {
    Some(match (type_name, name) {
        ("Patient" | "RelatedPerson" | "Patient.contact", "gender") => {
            &["male", "female", "other", "unknown"]
        }
        ("ContactPoint", "system") => &["phone", "fax", "email", "pager", "url", "sms", "other"],
        ("ContactPoint", "use") => &["home", "work", "temp", "old", "mobile"],
        ("Address", "use") => &["home", "work", "temp", "old", "billing"],
        ("Address", "type") => &["postal", "physical", "both"],
        ("HumanName", "use") => &[
            "usual",
            "official",
            "temp",
            "nickname",
            "anonymous",
            "old",
            "maiden",
        ],
        ("Identifier", "use") => &["usual", "official", "temp", "secondary", "old"],
        ("Observation", "status") => crate::fhir::resource::OBSERVATION_STATUSES,
        ("Quantity", "comparator") => &["<", "<=", ">=", ">"],
        _ => return None,
    })
}

/// The JSON name of a choice element holding `type_name`: `value` + `Quantity`.
pub(crate) fn choice_name(element: &str, type_name: &str) -> String {
    let mut chars = type_name.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    format!(
        "{element}{}{}",
        first.map(String::from).unwrap_or_default(),
        chars.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_elements_are_named_with_their_type() {
        assert_eq!(choice_name("value", "Quantity"), "valueQuantity");
        assert_eq!(choice_name("effective", "dateTime"), "effectiveDateTime");
    }

    #[test]
    fn every_complex_kind_in_the_table_has_elements() {
        for (t, e) in [
            ("Patient", "name"),
            ("Patient", "contact"),
            ("Observation", "code"),
        ] {
            let Some(Element {
                kind: Kind::Complex(inner),
                ..
            }) = element(t, e)
            else {
                panic!("{t}.{e}");
            };
            assert!(
                ["text", "coding", "name", "family"]
                    .iter()
                    .any(|n| element(inner, n).is_some()),
                "{inner}"
            );
        }
    }
}
