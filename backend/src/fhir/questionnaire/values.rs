//! FHIR values as the compiled form holds them: codes, strings, numbers,
//! codings, quantities, references and the answers of conditions and options.

use fhirbolt::model::r4::resources::{
    QuestionnaireItemAnswerOptionValue, QuestionnaireItemEnableWhenAnswer,
    QuestionnaireItemInitialValue,
};
use fhirbolt::model::r4::types::{Coding as FhirCoding, ExtensionValue};
use shared::form::{Coding, Quantity, Value};

use super::url;

pub(crate) fn codes(value: Option<&ExtensionValue>) -> Vec<String> {
    match value {
        Some(ExtensionValue::CodeableConcept(cc)) => cc
            .coding
            .iter()
            .filter_map(|c| c.code.as_ref().and_then(|c| c.value.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

/// `matches('^[0-9]{4}$')` (FHIRPath style, as some forms write it) → the pattern.
pub(crate) fn unwrap_matches(regex: &str) -> String {
    let trimmed = regex.trim();
    trimmed
        .strip_prefix("matches(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::trim)
        .and_then(|r| r.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .map_or_else(|| trimmed.to_owned(), |r| r.replace("\\'", "'"))
}

pub(crate) fn string(value: Option<&fhirbolt::model::r4::types::String>) -> Option<String> {
    value
        .and_then(|v| v.value.clone())
        .filter(|s| !s.is_empty())
}

pub(crate) fn text_value(value: Option<&ExtensionValue>) -> Option<String> {
    match value? {
        ExtensionValue::String(s) => s.value.clone(),
        ExtensionValue::Code(c) => c.value.clone(),
        ExtensionValue::Markdown(m) => m.value.clone(),
        _ => None,
    }
}

pub(crate) fn integer_value(value: Option<&ExtensionValue>) -> Option<i32> {
    match value? {
        ExtensionValue::Integer(i) => i.value,
        ExtensionValue::PositiveInt(i) => i.value.and_then(|v| i32::try_from(v).ok()),
        ExtensionValue::UnsignedInt(i) => i.value.and_then(|v| i32::try_from(v).ok()),
        _ => None,
    }
}

pub(crate) fn decimal_value(value: Option<&ExtensionValue>) -> Option<f64> {
    match value? {
        ExtensionValue::Decimal(d) => d.value.as_deref().and_then(|v| v.parse().ok()),
        ExtensionValue::Integer(i) => i.value.map(f64::from),
        _ => None,
    }
}

pub(crate) fn expression_text(value: Option<&ExtensionValue>) -> Option<String> {
    match value? {
        ExtensionValue::Expression(x) => string(x.expression.as_ref()),
        _ => None,
    }
}

pub(crate) fn coding(c: &FhirCoding) -> Coding {
    Coding {
        system: c.system.as_ref().and_then(|s| s.value.clone()),
        code: c.code.as_ref().and_then(|s| s.value.clone()),
        display: string(c.display.as_ref()),
    }
}

pub(crate) fn decimal(value: Option<&str>) -> Option<f64> {
    value.and_then(|v| v.parse().ok())
}

pub(crate) fn quantity(q: &fhirbolt::model::r4::types::Quantity) -> Quantity {
    Quantity {
        value: decimal(q.value.as_ref().and_then(|v| v.value.as_deref())),
        unit: string(q.unit.as_ref()),
        system: q.system.as_ref().and_then(|s| s.value.clone()),
        code: q.code.as_ref().and_then(|s| s.value.clone()),
    }
}

pub(crate) fn reference(r: &fhirbolt::model::r4::types::Reference) -> String {
    string(r.reference.as_ref())
        .or_else(|| string(r.display.as_ref()))
        .unwrap_or_default()
}

pub(crate) fn extension_value(value: &ExtensionValue) -> Option<Value> {
    Some(match value {
        ExtensionValue::Boolean(b) => Value::Boolean(b.value?),
        ExtensionValue::Decimal(d) => Value::Decimal(decimal(d.value.as_deref())?),
        ExtensionValue::Integer(i) => Value::Integer(i64::from(i.value?)),
        ExtensionValue::Date(d) => Value::Date(d.value.clone()?),
        ExtensionValue::DateTime(d) => Value::DateTime(d.value.clone()?),
        ExtensionValue::Time(t) => Value::Time(t.value.clone()?),
        ExtensionValue::String(s) => Value::String(s.value.clone()?),
        ExtensionValue::Quantity(q) => Value::Quantity(quantity(q)),
        _ => return None,
    })
}

/// The expression a limit's value is computed by (`cqf-expression` on the
/// primitive, e.g. `"_valueDate": {"extension": [...today()...]}`).
pub(crate) fn computed_value(value: &ExtensionValue) -> Option<String> {
    let extensions = match value {
        ExtensionValue::Date(d) => &d.extension,
        ExtensionValue::DateTime(d) => &d.extension,
        ExtensionValue::Time(t) => &t.extension,
        ExtensionValue::Integer(i) => &i.extension,
        ExtensionValue::Decimal(d) => &d.extension,
        _ => return None,
    };
    extensions
        .iter()
        .find(|e| e.url == url::CQF_EXPRESSION)
        .and_then(|e| expression_text(e.value.as_ref()))
}

pub(crate) fn enable_when_answer(answer: &QuestionnaireItemEnableWhenAnswer) -> Option<Value> {
    use QuestionnaireItemEnableWhenAnswer as A;
    Some(match answer {
        A::Boolean(b) => Value::Boolean(b.value?),
        A::Decimal(d) => Value::Decimal(decimal(d.value.as_deref())?),
        A::Integer(i) => Value::Integer(i64::from(i.value?)),
        A::Date(d) => Value::Date(d.value.clone()?),
        A::DateTime(d) => Value::DateTime(d.value.clone()?),
        A::Time(t) => Value::Time(t.value.clone()?),
        A::String(s) => Value::String(s.value.clone()?),
        A::Coding(c) => Value::Coding(coding(c)),
        A::Quantity(q) => Value::Quantity(quantity(q)),
        A::Reference(r) => Value::Reference(reference(r)),
        A::Invalid => return None,
    })
}

pub(crate) fn answer_option_value(value: &QuestionnaireItemAnswerOptionValue) -> Option<Value> {
    use QuestionnaireItemAnswerOptionValue as V;
    Some(match value {
        V::Integer(i) => Value::Integer(i64::from(i.value?)),
        V::Date(d) => Value::Date(d.value.clone()?),
        V::Time(t) => Value::Time(t.value.clone()?),
        V::String(s) => Value::String(s.value.clone()?),
        V::Coding(c) => Value::Coding(coding(c)),
        V::Reference(r) => Value::Reference(reference(r)),
        V::Invalid => return None,
    })
}

pub(crate) fn initial_value(value: &QuestionnaireItemInitialValue) -> Option<Value> {
    use QuestionnaireItemInitialValue as V;
    Some(match value {
        V::Boolean(b) => Value::Boolean(b.value?),
        V::Decimal(d) => Value::Decimal(decimal(d.value.as_deref())?),
        V::Integer(i) => Value::Integer(i64::from(i.value?)),
        V::Date(d) => Value::Date(d.value.clone()?),
        V::DateTime(d) => Value::DateTime(d.value.clone()?),
        V::Time(t) => Value::Time(t.value.clone()?),
        V::String(s) => Value::String(s.value.clone()?),
        V::Uri(u) => Value::Uri(u.value.clone()?),
        V::Coding(c) => Value::Coding(coding(c)),
        V::Quantity(q) => Value::Quantity(quantity(q)),
        V::Reference(r) => Value::Reference(reference(r)),
        V::Attachment(_) | V::Invalid => return None,
    })
}
