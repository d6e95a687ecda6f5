//! What an intake really changes in a chart: the demographics a linked intake
//! proposes, compared field by field after the matcher's normalisation, so that
//! a patient who confirms their prefilled details unchanged proposes nothing.
//!
//! Comparing the Patients' JSON, as this once did, saw a difference in anything
//! the chart carries and the form does not write: a name's `use`, a `meta`, a
//! phone's `rank`, the order of elements, "SMITH" for "Smith", "(555) 123-4567"
//! for "555-123-4567". Each value the intake gives is instead compared with the
//! chart as [`normalize`] brings it to one form. A value the intake leaves out is
//! not a change (the form may not ask for it); only a value the intake gives that
//! the chart does not hold is. Pure functions over JSON, tested below.

use matching::normalize;
use serde_json::{Value, json};

/// A demographic field an intake may propose to change. The Task names it by
/// [`Field::code`]; staff accept or refuse each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// `Patient.name` (family, given, suffix).
    Name,
    /// `Patient.birthDate`.
    BirthDate,
    /// `Patient.gender`.
    Gender,
    /// The `telecom` entries with system `phone`.
    Phone,
    /// The `telecom` entries with system `email`.
    Email,
    /// `Patient.address` (lines, city, state, postal code, country).
    Address,
}

impl Field {
    /// Every field, in the order a Task lists them.
    pub(crate) const ALL: [Field; 6] = [
        Field::Name,
        Field::BirthDate,
        Field::Gender,
        Field::Phone,
        Field::Email,
        Field::Address,
    ];

    /// As in the Task's `input` and the review API.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::BirthDate => "birthDate",
            Field::Gender => "gender",
            Field::Phone => "phone",
            Field::Email => "email",
            Field::Address => "address",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        Field::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The `telecom` system of a contact field.
    fn system(self) -> Option<&'static str> {
        match self {
            Field::Phone => Some("phone"),
            Field::Email => Some("email"),
            _ => None,
        }
    }
}

/// The fields where `intake` (the extracted Patient) gives a value that `chart`
/// does not hold, in [`Field::ALL`]'s order. `country` is the calling code
/// assumed for phone numbers written without one (the matcher's
/// `default_country`).
pub(crate) fn changed(chart: &Value, intake: &Value, country: &str) -> Vec<Field> {
    Field::ALL
        .into_iter()
        .filter(|f| match f {
            Field::Name => name_changed(chart, intake),
            Field::BirthDate => birth_date_changed(chart, intake),
            Field::Gender => {
                let fold = |p: &Value| text(p.get("gender")).map(|g| g.to_ascii_lowercase());
                fold(intake).is_some_and(|g| fold(chart) != Some(g))
            }
            Field::Phone => contacts_changed(chart, intake, "phone", |v| {
                normalize::phone(v, country).unwrap_or_else(|| digits(v))
            }),
            Field::Email => contacts_changed(chart, intake, "email", |v| {
                normalize::email(v).unwrap_or_else(|| normalize::fold(v))
            }),
            Field::Address => address_changed(chart, intake),
        })
        .collect()
}

/// The Patient a Task proposes: the intake's values of the changed fields only.
pub(crate) fn proposal(intake: &Value, fields: &[Field]) -> Value {
    let mut proposed = json!({"resourceType": "Patient", "id": "proposed"});
    for f in fields {
        apply(&mut proposed, intake, f.code());
    }
    proposed
}

/// A Patient's value of a field a Task names, as staff compare it: the element
/// (a contact field: its `telecom` entries), `Null` when absent. A name that is
/// not a [`Field`] is the top-level element of that name (Tasks written before
/// phone and e-mail were told apart name `telecom`).
pub(crate) fn value_of(patient: &Value, field: &str) -> Value {
    match Field::parse(field).and_then(Field::system) {
        Some(system) => {
            let entries: Vec<Value> = telecom(patient)
                .iter()
                .filter(|t| has_system(t, system))
                .cloned()
                .collect();
            if entries.is_empty() {
                Value::Null
            } else {
                Value::Array(entries)
            }
        }
        None => patient.get(field).cloned().unwrap_or(Value::Null),
    }
}

/// Writes `proposed`'s value of `field` into `chart`: the element replaced (or
/// removed when `proposed` has none), or for a contact field the chart's entries
/// of that system replaced by the proposed ones, its other contacts kept.
pub(crate) fn apply(chart: &mut Value, proposed: &Value, field: &str) {
    let Some(patient) = chart.as_object_mut() else {
        return;
    };
    match Field::parse(field).and_then(Field::system) {
        Some(system) => {
            let mut entries: Vec<Value> = patient
                .get("telecom")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter(|e| !has_system(e, system))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            entries.extend(
                telecom(proposed)
                    .iter()
                    .filter(|t| has_system(t, system))
                    .cloned(),
            );
            // FHIR has no empty arrays.
            if entries.is_empty() {
                patient.remove("telecom");
            } else {
                patient.insert("telecom".to_owned(), Value::Array(entries));
            }
        }
        None => match proposed.get(field) {
            Some(v) => {
                patient.insert(field.to_owned(), v.clone());
            }
            None => {
                patient.remove(field);
            }
        },
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| text(Some(i)))
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn list<'a>(patient: &'a Value, element: &str) -> &'a [Value] {
    patient
        .get(element)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn telecom(patient: &Value) -> &[Value] {
    list(patient, "telecom")
}

fn has_system(contact: &Value, system: &str) -> bool {
    contact.get("system").and_then(Value::as_str) == Some(system)
}

fn uses(entry: &Value, any_of: &[&str]) -> bool {
    entry
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| any_of.contains(&u))
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// A folded value with its spaces removed: "Mary Ann", "Mary-Ann" and "MARYANN"
/// are one name (as the matcher's comparison treats them).
fn squashed(s: Option<&str>) -> Option<String> {
    s.map(normalize::squashed).filter(|s| !s.is_empty())
}

/// The chart's current names (not `old`, not `maiden`) and addresses (not `old`):
/// the intake agrees with the chart when it agrees with any of them, since the
/// prefilled form shows the first and the matcher picks the official or home one.
fn current<'a>(
    chart: &'a Value,
    element: &str,
    past: &'a [&str],
) -> impl Iterator<Item = &'a Value> {
    list(chart, element).iter().filter(move |e| !uses(e, past))
}

/// The intake's name: the one it extracted (the official, else the first).
fn intake_entry<'a>(intake: &'a Value, element: &str, preferred: &str) -> Option<&'a Value> {
    let entries = list(intake, element);
    entries
        .iter()
        .find(|e| uses(e, &[preferred]))
        .or_else(|| entries.first())
}

fn split(name: &Value) -> normalize::Name {
    let family = text(name.get("family"));
    normalize::split_name(
        &strings(name.get("given")),
        family,
        &strings(name.get("suffix")),
    )
}

/// A changed name: a family, first or middle name or suffix the intake gives that
/// no current chart name has. The form asks only for a first name, so an intake
/// without a middle name agrees with a chart that has one.
fn name_changed(chart: &Value, intake: &Value) -> bool {
    let Some(name) = intake_entry(intake, "name", "official") else {
        return false;
    };
    let given = split(name);
    if given == normalize::Name::default() {
        return false;
    }
    let agrees = |part: &Option<String>, other: &Option<String>| {
        part.is_none() || squashed(part.as_deref()) == squashed(other.as_deref())
    };
    !current(chart, "name", &["old", "maiden"]).any(|c| {
        let held = split(c);
        agrees(&given.family, &held.family)
            && agrees(&given.given, &held.given)
            && agrees(&given.middle, &held.middle)
            && agrees(&given.suffix, &held.suffix)
    })
}

fn birth_date_changed(chart: &Value, intake: &Value) -> bool {
    let Some(given) = text(intake.get("birthDate")) else {
        return false;
    };
    let held = text(chart.get("birthDate"));
    match (
        normalize::BirthDate::parse(given),
        held.and_then(normalize::BirthDate::parse),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => held != Some(given),
    }
}

/// A changed contact: a number or address of `system` the intake gives that the
/// chart does not hold (the form asks for one; a chart may hold several).
fn contacts_changed(
    chart: &Value,
    intake: &Value,
    system: &str,
    norm: impl Fn(&str) -> String,
) -> bool {
    let values = |p: &Value| -> Vec<String> {
        telecom(p)
            .iter()
            .filter(|t| has_system(t, system))
            .filter_map(|t| text(t.get("value")))
            .map(&norm)
            .filter(|v| !v.is_empty())
            .collect()
    };
    let held = values(chart);
    values(intake).iter().any(|v| !held.contains(v))
}

/// A changed address: a part the intake gives (street number and name, city,
/// state, postal code, country) that no current chart address agrees with.
fn address_changed(chart: &Value, intake: &Value) -> bool {
    let Some(address) = intake_entry(intake, "address", "home") else {
        return false;
    };
    let lines = |a: &Value| strings(a.get("line"));
    let folded = |a: &Value, key: &str| text(a.get(key)).map(normalize::fold);
    let postal = |a: &Value| text(a.get("postalCode")).and_then(normalize::postal_code);
    let intake_lines = lines(address);
    let street = (!intake_lines.is_empty()).then(|| normalize::street(&intake_lines));
    let parts = ["city", "district", "state", "country"];
    let given_postal = postal(address);
    if street.is_none()
        && given_postal.is_none()
        && parts.iter().all(|k| folded(address, k).is_none())
    {
        return false;
    }
    !current(chart, "address", &["old"]).any(|c| {
        street
            .as_ref()
            .is_none_or(|s| *s == normalize::street(&lines(c)))
            && given_postal
                .as_ref()
                .is_none_or(|p| postal(c).as_ref() == Some(p))
            && parts.iter().all(|k| {
                folded(address, k).is_none_or(|v| {
                    squashed(Some(&v)) == folded(c, k).and_then(|h| squashed(Some(&h)))
                })
            })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A chart as an EMR may hold it: elements the form never writes, a name
    /// with its `use`, two phones ranked, an address on two lines.
    fn chart() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "3", "lastUpdated": "2026-01-02T03:04:05Z"},
            "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
            "name": [
                {"use": "maiden", "family": "Jones", "given": ["Ana"]},
                {"use": "official", "family": "SMITH", "given": ["Ana", "Maria"], "prefix": ["Ms"]},
            ],
            "gender": "female",
            "birthDate": "1980-03-27",
            "telecom": [
                {"system": "phone", "value": "(617) 555-0100", "use": "mobile", "rank": 1},
                {"system": "email", "value": "Ana.Smith@Example.org"},
                {"system": "phone", "value": "617 555 0199", "use": "home", "rank": 2},
            ],
            "address": [{"use": "home", "line": ["12 Elm Street", "Apt 4"], "city": "Springfield",
                "state": "MA", "postalCode": "01101", "country": "US"}],
        })
    }

    /// What the registration form extracts when the patient confirms the chart
    /// as prefilled, with `edit` applied.
    fn intake(edit: impl FnOnce(&mut Value)) -> Value {
        let mut p = json!({
            "resourceType": "Patient",
            "name": [{"family": "Smith", "given": ["Ana"]}],
            "birthDate": "1980-03-27",
            "gender": "female",
            "telecom": [
                {"system": "phone", "value": "617-555-0100"},
                {"system": "email", "value": "ana.smith@example.org"},
            ],
            "address": [{"line": ["12 Elm St"], "city": "springfield", "postalCode": "01101"}],
        });
        edit(&mut p);
        p
    }

    fn codes(fields: &[Field]) -> Vec<&'static str> {
        fields.iter().map(|f| f.code()).collect()
    }

    #[test]
    fn only_what_really_changed_is_a_change() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("confirmed unchanged", intake(|_| {}), vec![]),
            (
                "case, accents and spacing",
                intake(|p| {
                    p["name"] = json!([{"family": " smith ", "given": ["ANA"]}]);
                    p["address"][0]["line"] = json!(["12  elm street"]);
                    p["address"][0]["city"] = json!("SPRINGFIELD");
                }),
                vec![],
            ),
            (
                "first and middle name typed together",
                intake(|p| p["name"][0]["given"] = json!(["Ana Maria"])),
                vec![],
            ),
            (
                "phone written another way, with the country code",
                intake(|p| p["telecom"][0]["value"] = json!("+1 (617) 555 0100")),
                vec![],
            ),
            (
                "the chart's other phone",
                intake(|p| p["telecom"][0]["value"] = json!("6175550199")),
                vec![],
            ),
            (
                "elements in another order, a use and a rank",
                intake(|p| {
                    p["telecom"] = json!([
                        {"system": "email", "value": "ANA.SMITH@example.org "},
                        {"system": "phone", "value": "617.555.0100", "use": "mobile", "rank": 1},
                    ]);
                }),
                vec![],
            ),
            (
                "fields left out",
                json!({"resourceType": "Patient"}),
                vec![],
            ),
            (
                "a new phone",
                intake(|p| p["telecom"][0]["value"] = json!("(617) 555-0142")),
                vec!["phone"],
            ),
            (
                "a new e-mail",
                intake(|p| p["telecom"][1]["value"] = json!("ana@example.net")),
                vec!["email"],
            ),
            (
                "a new family name",
                intake(|p| p["name"][0]["family"] = json!("Smith-Lee")),
                vec!["name"],
            ),
            (
                "another middle name",
                intake(|p| p["name"][0]["given"] = json!(["Ana", "Luisa"])),
                vec!["name"],
            ),
            (
                "the maiden name is not the current one",
                intake(|p| p["name"][0]["family"] = json!("Jones")),
                vec!["name"],
            ),
            (
                "another birth date and gender",
                intake(|p| {
                    p["birthDate"] = json!("1980-03-28");
                    p["gender"] = json!("other");
                }),
                vec!["birthDate", "gender"],
            ),
            (
                "a move",
                intake(|p| {
                    p["address"] =
                        json!([{"line": ["9 Oak Ave"], "city": "Boston", "postalCode": "02101"}]);
                }),
                vec!["address"],
            ),
            (
                "another city only",
                intake(|p| p["address"][0]["city"] = json!("Shelbyville")),
                vec!["address"],
            ),
        ];
        for (what, intake, expected) in cases {
            assert_eq!(codes(&changed(&chart(), &intake, "1")), expected, "{what}");
        }
    }

    #[test]
    fn a_chart_without_a_value_the_intake_gives_changes() {
        let bare =
            json!({"resourceType": "Patient", "name": [{"family": "Smith", "given": ["Ana"]}]});
        assert_eq!(
            codes(&changed(&bare, &intake(|_| {}), "1")),
            ["birthDate", "gender", "phone", "email", "address"]
        );
    }

    #[test]
    fn numbers_without_a_country_code_take_the_configured_one() {
        let chart = json!({"telecom": [{"system": "phone", "value": "+44 20 7946 0958"}]});
        let intake = json!({"telecom": [{"system": "phone", "value": "020 7946 0958"}]});
        assert!(changed(&chart, &intake, "44").is_empty());
        assert_eq!(codes(&changed(&chart, &intake, "1")), ["phone"]);
    }

    #[test]
    fn the_proposal_holds_only_the_changed_fields_and_accepting_a_phone_keeps_the_email() {
        let new = intake(|p| p["telecom"][0]["value"] = json!("617-555-0142"));
        let fields = changed(&chart(), &new, "1");
        let proposed = proposal(&new, &fields);
        assert_eq!(
            proposed,
            json!({"resourceType": "Patient", "id": "proposed",
                "telecom": [{"system": "phone", "value": "617-555-0142"}]})
        );
        assert_eq!(value_of(&chart(), "phone").as_array().unwrap().len(), 2);
        assert_eq!(value_of(&proposed, "email"), Value::Null);
        let mut updated = chart();
        apply(&mut updated, &proposed, "phone");
        assert_eq!(
            updated["telecom"],
            json!([
                {"system": "email", "value": "Ana.Smith@Example.org"},
                {"system": "phone", "value": "617-555-0142"},
            ])
        );
        // A Task written before phones and e-mails were told apart.
        assert_eq!(value_of(&chart(), "telecom"), chart()["telecom"]);
        apply(&mut updated, &json!({}), "telecom");
        assert!(updated.get("telecom").is_none());
    }
}
