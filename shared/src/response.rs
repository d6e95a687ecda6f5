//! A FHIR R4 `QuestionnaireResponse`: the patient's answers, in FHIR's own JSON.
//!
//! A small serde model rather than a FHIR library, so the browser can build one.
//! Answers keep FHIR's `value[x]` names on the wire and are a typed [`Value`] in
//! Rust. No `flatten` or untagged enums: the backend's serde_json runs with
//! `arbitrary_precision`, under which those fail on numbers.

use serde::{Deserialize, Serialize};

use crate::form::{Attachment, Coding, Quantity, Value};

/// A QuestionnaireResponse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionnaireResponse {
    /// Always `QuestionnaireResponse`.
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The form answered: its canonical URL, or `Questionnaire/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questionnaire: Option<String>,
    /// `in-progress`, `completed`, `amended`, `entered-in-error` or `stopped`.
    pub status: String,
    /// When it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authored: Option<String>,
    /// The answers, in form order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<ResponseItem>,
}

impl QuestionnaireResponse {
    /// A response with these items, to `questionnaire` if named, in `status`
    /// (`in-progress` while being filled in, `completed` when sent).
    pub fn new(questionnaire: Option<String>, status: &str, item: Vec<ResponseItem>) -> Self {
        Self {
            resource_type: "QuestionnaireResponse".into(),
            id: None,
            questionnaire,
            status: status.into(),
            authored: None,
            item,
        }
    }
}

/// One answered item (or one instance of a repeating group).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseItem {
    /// The Questionnaire item's `linkId`.
    pub link_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer: Vec<ResponseAnswer>,
    /// Child items (of a group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<ResponseItem>,
}

/// One answer, with the items nested under it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AnswerWire", into = "AnswerWire")]
pub struct ResponseAnswer {
    /// The value.
    pub value: Value,
    /// Items nested under this answer.
    pub item: Vec<ResponseItem>,
}

/// A reference as FHIR writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ReferenceWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display: Option<String>,
}

/// `answer` as FHIR writes it: exactly one `value[x]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_boolean: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_decimal: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_integer: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_coding: Option<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_reference: Option<ReferenceWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_attachment: Option<Attachment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    item: Vec<ResponseItem>,
}

impl TryFrom<AnswerWire> for ResponseAnswer {
    type Error = String;

    fn try_from(wire: AnswerWire) -> Result<Self, String> {
        let values = [
            wire.value_boolean.map(Value::Boolean),
            wire.value_decimal.map(Value::Decimal),
            wire.value_integer.map(Value::Integer),
            wire.value_date.map(Value::Date),
            wire.value_date_time.map(Value::DateTime),
            wire.value_time.map(Value::Time),
            wire.value_string.map(Value::String),
            wire.value_uri.map(Value::Uri),
            wire.value_coding.map(Value::Coding),
            wire.value_quantity.map(Value::Quantity),
            wire.value_reference
                .map(|r| Value::Reference(r.reference.or(r.display).unwrap_or_default())),
            wire.value_attachment.map(Value::Attachment),
        ];
        let mut present = values.into_iter().flatten();
        match (present.next(), present.next()) {
            (Some(value), None) => Ok(ResponseAnswer {
                value,
                item: wire.item,
            }),
            (None, _) => Err("an answer needs exactly one value[x]; it has none".to_owned()),
            (Some(_), Some(_)) => {
                Err("an answer needs exactly one value[x]; it has several".to_owned())
            }
        }
    }
}

impl From<ResponseAnswer> for AnswerWire {
    fn from(answer: ResponseAnswer) -> Self {
        let mut wire = AnswerWire {
            item: answer.item,
            ..AnswerWire::default()
        };
        match answer.value {
            Value::Boolean(v) => wire.value_boolean = Some(v),
            Value::Decimal(v) => wire.value_decimal = Some(v),
            Value::Integer(v) => wire.value_integer = Some(v),
            Value::Date(v) => wire.value_date = Some(v),
            Value::DateTime(v) => wire.value_date_time = Some(v),
            Value::Time(v) => wire.value_time = Some(v),
            Value::String(v) => wire.value_string = Some(v),
            Value::Uri(v) => wire.value_uri = Some(v),
            Value::Coding(v) => wire.value_coding = Some(v),
            Value::Quantity(v) => wire.value_quantity = Some(v),
            Value::Reference(v) => {
                wire.value_reference = Some(ReferenceWire {
                    reference: Some(v),
                    display: None,
                });
            }
            Value::Attachment(v) => wire.value_attachment = Some(v),
        }
        wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_use_fhir_value_names_and_round_trip() {
        let json = serde_json::json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "http://example.org/Questionnaire/phq9",
            "status": "completed",
            "item": [
                {"linkId": "q1", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6568-5", "display": "Not at all"}}]},
                {"linkId": "q2", "answer": [{"valueDecimal": 72.5}, {"valueInteger": 3}]},
                {"linkId": "g", "item": [{"linkId": "g.1", "answer": [{"valueString": "x", "item": [{"linkId": "n", "answer": [{"valueBoolean": true}]}]}]}]},
                {"linkId": "q3", "answer": [{"valueDate": "1980-02"}, {"valueQuantity": {"value": 1.8, "unit": "m"}}]}
            ]
        });
        let response: QuestionnaireResponse = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(response.item[1].answer[0].value, Value::Decimal(72.5));
        assert_eq!(
            response.item[2].item[0].answer[0].item[0].answer[0].value,
            Value::Boolean(true)
        );
        assert_eq!(serde_json::to_value(&response).unwrap(), json);
    }

    #[test]
    fn an_answer_without_exactly_one_value_is_refused() {
        for answer in [
            serde_json::json!({}),
            serde_json::json!({"valueString": "a", "valueBoolean": true}),
        ] {
            let json = serde_json::json!({"resourceType": "QuestionnaireResponse", "status": "completed",
                "item": [{"linkId": "a", "answer": [answer]}]});
            assert!(serde_json::from_value::<QuestionnaireResponse>(json).is_err());
        }
    }
}
