//! The review API's answers (`/api/staff/review`), read from JSON by hand like
//! everything else the browser reads (`shared::json`), and FHIR values described
//! for a person.

use shared::json::Json;

/// What a queue item asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Which patient is this intake?
    Match,
    /// Proposed demographic updates for a linked patient.
    Demographics,
    /// A dead-lettered (or refused) delivery.
    Delivery,
}

impl Kind {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "match" => Some(Kind::Match),
            "demographics" => Some(Kind::Demographics),
            "delivery" => Some(Kind::Delivery),
            _ => None,
        }
    }
}

fn text(json: &Json, key: &str) -> Option<String> {
    json.get(key)?.as_str().map(str::to_owned)
}

fn number(json: &Json, key: &str) -> Option<f64> {
    match json.get(key)? {
        Json::Number(n) => shared::float::parse_f64(n),
        _ => None,
    }
}

fn flag(json: &Json, key: &str) -> bool {
    matches!(json.get(key), Some(Json::Bool(true)))
}

fn array<'a>(json: &'a Json, key: &str) -> &'a [Json] {
    match json.get(key) {
        Some(Json::Array(items)) => items,
        _ => &[],
    }
}

/// The array `key` of an answer's body, if it has one.
pub(crate) fn list(json: Option<&Json>, key: &str) -> Vec<Json> {
    match json.and_then(|j| j.get(key)) {
        Some(Json::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// One row of the queue.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QueueItem {
    pub(crate) task: String,
    pub(crate) version: String,
    pub(crate) kind: Kind,
    pub(crate) age_seconds: u64,
    pub(crate) top_score: Option<f64>,
    pub(crate) grade: Option<String>,
    pub(crate) summary: String,
    /// A link proposed for an intake without proof of identity (the front desk
    /// may confirm it).
    pub(crate) proposed_link: bool,
}

/// `GET /api/staff/review`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Queue {
    pub(crate) count: u64,
    pub(crate) items: Vec<QueueItem>,
}

impl Queue {
    pub(crate) fn read(json: &Json) -> Option<Self> {
        let items = array(json, "items")
            .iter()
            .map(|item| {
                Some(QueueItem {
                    task: text(item, "task")?,
                    version: text(item, "version").unwrap_or_default(),
                    kind: Kind::parse(item.get("kind")?.as_str()?)?,
                    age_seconds: number(item, "ageSeconds").map_or(0, |s| s.max(0.0) as u64),
                    top_score: number(item, "topScore"),
                    grade: text(item, "grade"),
                    summary: text(item, "summary").unwrap_or_default(),
                    proposed_link: flag(item, "proposedLink"),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Queue {
            count: number(json, "count").map_or(items.len() as u64, |n| n as u64),
            items,
        })
    }
}

/// One field of the matcher's explanation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldLevel {
    pub(crate) field: String,
    pub(crate) level: String,
    pub(crate) weight: f64,
}

/// A chart the intake may belong to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) patient: Json,
    /// `Patient/<id>`; empty for a chart not yet in the EMR (nothing to link to).
    pub(crate) reference: String,
    pub(crate) score: Option<f64>,
    pub(crate) grade: Option<String>,
    pub(crate) fields: Vec<FieldLevel>,
    /// The safety rules that held it below `certain` (`possible-twin`, …).
    pub(crate) held: Vec<String>,
    /// The matching model's version that scored it.
    pub(crate) model: Option<f64>,
    /// (date, what happened), newest first.
    pub(crate) history: Vec<(String, String)>,
}

/// A demographic element the intake would change.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Proposed {
    pub(crate) element: String,
    pub(crate) current: Json,
    pub(crate) proposed: Json,
}

/// A delivery that did not go through.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Delivery {
    pub(crate) attempts: Option<f64>,
    pub(crate) last_error: String,
    pub(crate) status: String,
}

/// `GET /api/staff/review/{task}`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Item {
    pub(crate) version: String,
    pub(crate) kind: Kind,
    /// A link proposed for an intake without proof of identity.
    pub(crate) proposed_link: bool,
    pub(crate) received: String,
    pub(crate) patient: Json,
    /// Only for roles that may see answers.
    pub(crate) answers: Option<Json>,
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) proposed: Vec<Proposed>,
    pub(crate) delivery: Option<Delivery>,
}

impl Item {
    pub(crate) fn read(json: &Json) -> Option<Self> {
        let intake = json.get("intake")?;
        let candidates = array(json, "candidates")
            .iter()
            .map(|c| {
                let patient = c.get("patient")?.clone();
                // A patient accepted but not yet in the EMR has no id to link to.
                let reference = text(&patient, "id")
                    .map(|id| format!("Patient/{id}"))
                    .unwrap_or_default();
                Some(Candidate {
                    reference,
                    patient,
                    score: number(c, "score"),
                    grade: text(c, "grade"),
                    fields: array(c, "fields")
                        .iter()
                        .filter_map(|f| {
                            Some(FieldLevel {
                                field: text(f, "field")?,
                                level: text(f, "level")?,
                                weight: number(f, "weight").unwrap_or(0.0),
                            })
                        })
                        .collect(),
                    held: array(c, "held")
                        .iter()
                        .filter_map(|h| h.as_str().map(str::to_owned))
                        .collect(),
                    model: number(c, "model"),
                    history: array(c, "history")
                        .iter()
                        .filter_map(|h| Some((text(h, "date")?, text(h, "what")?)))
                        .collect(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Item {
            version: text(json, "version")?,
            kind: Kind::parse(json.get("kind")?.as_str()?)?,
            proposed_link: flag(json, "proposedLink"),
            received: text(intake, "received").unwrap_or_default(),
            patient: intake.get("patient").cloned().unwrap_or(Json::Null),
            answers: intake.get("answers").filter(|a| **a != Json::Null).cloned(),
            candidates,
            proposed: array(json, "proposed")
                .iter()
                .filter_map(|p| {
                    Some(Proposed {
                        element: text(p, "element")?,
                        current: p.get("current").cloned().unwrap_or(Json::Null),
                        proposed: p.get("proposed").cloned().unwrap_or(Json::Null),
                    })
                })
                .collect(),
            delivery: json
                .get("delivery")
                .filter(|d| **d != Json::Null)
                .map(|d| Delivery {
                    attempts: number(d, "attempts"),
                    last_error: text(d, "lastError").unwrap_or_default(),
                    status: text(d, "status").unwrap_or_default(),
                }),
        })
    }
}

/// The matcher's fields (`matching::Field::code`), in its order.
pub(crate) const FIELDS: [&str; 12] = [
    "given",
    "family",
    "birthDate",
    "gender",
    "phone",
    "email",
    "streetNumber",
    "street",
    "city",
    "postalCode",
    "state",
    "identifier",
];

/// A Patient's value for one of the matcher's fields, as a person reads it.
pub(crate) fn patient_field(patient: &Json, field: &str) -> String {
    let first = |key: &str| array(patient, key).first();
    let line = first("address")
        .map(|a| array(a, "line"))
        .and_then(<[Json]>::first)
        .and_then(Json::as_str)
        .unwrap_or_default();
    // "12 Main St": the house number is the first word when it starts with a digit.
    let (number, street) = match line.split_once(' ') {
        Some((n, rest)) if n.starts_with(|c: char| c.is_ascii_digit()) => (n, rest),
        _ => ("", line),
    };
    let address = |key: &str| {
        first("address")
            .and_then(|a| text(a, key))
            .unwrap_or_default()
    };
    let telecom = |system: &str| {
        array(patient, "telecom")
            .iter()
            .filter(|t| t.get("system").and_then(Json::as_str) == Some(system))
            .filter_map(|t| text(t, "value"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match field {
        "given" => first("name")
            .map(|n| {
                array(n, "given")
                    .iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        "family" => first("name")
            .and_then(|n| text(n, "family"))
            .unwrap_or_default(),
        "birthDate" => text(patient, "birthDate").unwrap_or_default(),
        "gender" => text(patient, "gender").unwrap_or_default(),
        "phone" => telecom("phone"),
        "email" => telecom("email"),
        "streetNumber" => number.to_owned(),
        "street" => street.to_owned(),
        "city" => address("city"),
        "postalCode" => address("postalCode"),
        "state" => address("state"),
        "identifier" => array(patient, "identifier")
            .iter()
            .filter_map(|i| text(i, "value"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// A Patient's name, as "Given Family".
pub(crate) fn patient_name(patient: &Json) -> String {
    let given = patient_field(patient, "given");
    let family = patient_field(patient, "family");
    format!("{given} {family}").trim().to_owned()
}

/// Any FHIR value (a string, a ContactPoint, an Address, a list of them…) as one
/// line of text.
pub(crate) fn describe(json: &Json) -> String {
    match json {
        Json::Null => String::new(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.clone(),
        Json::String(s) => s.clone(),
        Json::Array(items) => items
            .iter()
            .map(describe)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Json::Object(members) => {
            // A Coding or CodeableConcept reads best as its display.
            for key in ["display", "text", "value"] {
                if let Some(Json::String(s)) = json.get(key) {
                    return s.clone();
                }
            }
            members
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "system" | "use" | "extension" | "id"))
                .map(|(_, v)| describe(v))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A QuestionnaireResponse's answers as (question, answer) lines, depth-first;
/// a group's own line has no answer. The question is the item's `text`, else
/// what `question_text` gives for its linkId (the form's), else the linkId.
pub(crate) fn answer_lines(
    response: &Json,
    question_text: &dyn Fn(&str) -> Option<String>,
) -> Vec<(usize, String, String)> {
    fn walk(
        items: &[Json],
        depth: usize,
        question_text: &dyn Fn(&str) -> Option<String>,
        out: &mut Vec<(usize, String, String)>,
    ) {
        for item in items {
            let link_id = text(item, "linkId").unwrap_or_default();
            let question = text(item, "text")
                .or_else(|| question_text(&link_id))
                .unwrap_or(link_id);
            let answers: Vec<String> = array(item, "answer")
                .iter()
                .map(|a| match a {
                    Json::Object(members) => members
                        .iter()
                        .filter(|(k, _)| k.starts_with("value"))
                        .map(|(_, v)| describe(v))
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => String::new(),
                })
                .collect();
            out.push((depth, question, answers.join("; ")));
            for answer in array(item, "answer") {
                walk(array(answer, "item"), depth + 1, question_text, out);
            }
            walk(array(item, "item"), depth + 1, question_text, out);
        }
    }
    let mut out = Vec::new();
    walk(array(response, "item"), 0, question_text, &mut out);
    out
}

/// A FHIR instant (or a dateTime with a zone) in the browser's time zone, with
/// the zone: "Nov 30, 2026, 08:49 AM GMT+1". A date alone, or anything the
/// browser cannot read, is shown as given.
pub(crate) fn short_instant(instant: &str) -> String {
    use wasm_bindgen::JsValue;
    let date = js_sys::Date::new(&JsValue::from_str(instant));
    if instant.len() <= 10 || date.get_time().is_nan() {
        return instant.to_owned();
    }
    let options = js_sys::Object::new();
    for (name, value) in [
        ("year", "numeric"),
        ("month", "short"),
        ("day", "numeric"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("timeZoneName", "short"),
    ] {
        let _ = js_sys::Reflect::set(&options, &name.into(), &value.into());
    }
    date.to_locale_string(crate::i18n::t().lang, &options)
        .into()
}
