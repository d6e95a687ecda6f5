//! SDC template-based extraction: an item with `templateExtract` names a contained
//! resource; each answered instance of the item gets a copy of it, where
//! `templateExtractContext` repeats (or drops) an element once per value of its
//! expression, and `templateExtractValue` fills an element with its expression's
//! value (dropped when empty). Expressions run on the response item, in the same
//! FHIRPath subset as definition-based extraction.

use serde_json::{Map, Value, json};

use super::schema::{self, Kind};
use super::{Datum, Extractor, extensions, items_of, sub_value, to_type};
use crate::fhir::outcome::IssueType;

const TEMPLATE_EXTRACT: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-templateExtract";
const CONTEXT: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-templateExtractContext";
const VALUE: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-templateExtractValue";

/// A template named on an item: the contained resource and the fullUrl expression.
struct Template {
    resource: Value,
    full_url: Option<String>,
}

impl Extractor<'_> {
    /// Template-based extraction over the whole form: the root, then every item.
    pub(super) fn templates(&mut self, questionnaire: &Value, response: &Value) {
        let contained = questionnaire
            .get("contained")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        self.template_node(questionnaire, response, contained, "Questionnaire");
        self.template_items(items_of(questionnaire), items_of(response), contained);
    }

    fn template_items(&mut self, q_items: &[Value], r_items: &[Value], contained: &[Value]) {
        for q in q_items {
            let Some(link_id) = q.get("linkId").and_then(Value::as_str) else {
                continue;
            };
            for r in r_items
                .iter()
                .filter(|r| r.get("linkId").and_then(Value::as_str) == Some(link_id))
            {
                let answered = r.get("answer").is_some() || r.get("item").is_some();
                if answered {
                    self.template_node(q, r, contained, link_id);
                }
                self.template_items(items_of(q), items_of(r), contained);
                for answer in r
                    .get("answer")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.template_items(items_of(q), items_of(answer), contained);
                }
            }
        }
    }

    fn template_node(&mut self, q: &Value, focus: &Value, contained: &[Value], at: &str) {
        for ext in extensions(q) {
            if ext.get("url").and_then(Value::as_str) != Some(TEMPLATE_EXTRACT) {
                continue;
            }
            let Some(template) = template_of(ext, contained) else {
                self.warn(
                    IssueType::NotFound,
                    "templateExtract names no contained resource",
                    at,
                );
                continue;
            };
            let ty = template
                .resource
                .get("resourceType")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut resource = self
                .fill(&template.resource, focus, at, ty.as_deref())
                .into_iter()
                .next();
            let Some(Value::Object(object)) = resource.as_mut() else {
                continue;
            };
            // The template's own id is the template's, not the new resource's.
            object.remove("id");
            let resource_type = object
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let full_url = template
                .full_url
                .as_deref()
                .and_then(|e| self.evaluate(e, focus).ok())
                .and_then(|v| v.first().and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| format!("urn:uuid:{}", self.ids.uuid()));
            self.entries.push(Some(json!({
                "fullUrl": full_url,
                "resource": resource,
                "request": {"method": "POST", "url": resource_type},
            })));
        }
    }

    /// A template node filled in the context `focus`: none, one or several copies.
    /// `ty`: the node's type in [`schema`], where known, so values are written as
    /// that type (an answer's text as a Coding's display, not as a bare string).
    fn fill(&mut self, node: &Value, focus: &Value, at: &str, ty: Option<&str>) -> Vec<Value> {
        let Value::Object(fields) = node else {
            return vec![node.clone()];
        };
        let contexts = match template_expression(node, CONTEXT) {
            Some(expression) => match self.evaluate(&expression, focus) {
                Ok(found) => found,
                Err(_) => {
                    self.unsupported(at);
                    return vec![];
                }
            },
            None => vec![focus.clone()],
        };
        if let Some(expression) = template_expression(node, VALUE) {
            // A complex element filled whole (a Coding, a Reference).
            let mut out = Vec::new();
            for context in &contexts {
                match self.evaluate(&expression, context) {
                    Ok(found) => {
                        for value in found {
                            match self.typed(value, ty, at) {
                                Some(v) => out.push(v),
                                None => continue,
                            }
                        }
                    }
                    Err(_) => self.unsupported(at),
                }
            }
            return out;
        }
        let mut out = Vec::new();
        for context in &contexts {
            let mut filled = Map::new();
            for (key, value) in fields {
                if key == "extension" {
                    let kept = other_extensions(value);
                    if !kept.is_empty() {
                        filled.insert(key.clone(), Value::Array(kept));
                    }
                    continue;
                }
                if let Some(name) = key.strip_prefix('_') {
                    // `_given: [{templateExtractValue}]`: a repeating primitive,
                    // one element per value.
                    if let Value::Array(slots) = value {
                        let mut all = Vec::new();
                        for slot in slots {
                            if let Some(expression) = template_expression(slot, VALUE) {
                                match self.evaluate(&expression, context) {
                                    Ok(found) => {
                                        let t = child_type(ty, name);
                                        for v in found {
                                            if let Some(v) = self.typed(v, t.as_deref(), at) {
                                                all.push(v);
                                            }
                                        }
                                    }
                                    Err(_) => self.unsupported(at),
                                }
                            }
                        }
                        if !all.is_empty() {
                            filled.insert(name.to_owned(), Value::Array(all));
                        }
                        continue;
                    }
                    // `_value` with templateExtractValue: the primitive `value`.
                    if let Some(expression) = template_expression(value, VALUE) {
                        match self.evaluate(&expression, context) {
                            Ok(found) => {
                                match found.into_iter().next().and_then(|v| {
                                    self.typed(v, child_type(ty, name).as_deref(), at)
                                }) {
                                    Some(v) => {
                                        filled.insert(name.to_owned(), v);
                                    }
                                    None => {
                                        filled.remove(name);
                                    }
                                }
                            }
                            Err(_) => self.unsupported(at),
                        }
                    }
                    continue;
                }
                if fields.get(&format!("_{key}")).is_some_and(|u| {
                    template_expression(u, VALUE).is_some()
                        || u.as_array().is_some_and(|slots| {
                            slots
                                .iter()
                                .any(|s| template_expression(s, VALUE).is_some())
                        })
                }) {
                    continue; // filled from `_key`
                }
                match value {
                    Value::Array(items) => {
                        let t = child_type(ty, key);
                        let mut all = Vec::new();
                        for i in items {
                            all.extend(self.fill(i, context, at, t.as_deref()));
                        }
                        if !all.is_empty() {
                            filled.insert(key.clone(), Value::Array(all));
                        }
                    }
                    Value::Object(_) => {
                        let t = child_type(ty, key);
                        if let Some(first) = self
                            .fill(value, context, at, t.as_deref())
                            .into_iter()
                            .next()
                        {
                            filled.insert(key.clone(), first);
                        }
                    }
                    other => {
                        filled.insert(key.clone(), other.clone());
                    }
                }
            }
            if !filled.is_empty() {
                out.push(Value::Object(filled));
            }
        }
        out
    }

    /// `value` as type `ty` when the schema knows it; a value that cannot be one
    /// is left out with a warning.
    fn typed(&mut self, value: Value, ty: Option<&str>, at: &str) -> Option<Value> {
        let Some(ty) = ty else {
            return Some(as_element(value));
        };
        let from = match &value {
            Value::String(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() => "integer",
            Value::Number(_) => "decimal",
            Value::Object(o) if o.contains_key("reference") => "Reference",
            Value::Object(o) if o.contains_key("coding") => "CodeableConcept",
            Value::Object(o) if o.contains_key("code") || o.contains_key("system") => "Coding",
            Value::Object(o) if o.contains_key("value") && o.contains_key("unit") => "Quantity",
            _ => return Some(value),
        };
        match to_type(&Datum::new(from, value), ty) {
            Ok(v) => Some(v),
            Err(_) => {
                self.warn(
                    IssueType::Value,
                    format!("A template value does not fit its element (a {ty}); it is left out"),
                    at,
                );
                None
            }
        }
    }

    fn unsupported(&mut self, at: &str) {
        self.warn(
            IssueType::NotSupported,
            "A template expression uses FHIRPath this server does not evaluate; that element is left out",
            at,
        );
    }
}

fn template_of(ext: &Value, contained: &[Value]) -> Option<Template> {
    let reference = sub_value(ext, "template")?.get("reference")?.as_str()?;
    let id = reference.strip_prefix('#')?;
    let resource = contained
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?
        .clone();
    let full_url = sub_value(ext, "fullUrl").and_then(|v| {
        v.as_str()
            .or_else(|| v.get("expression").and_then(Value::as_str))
            .map(str::to_owned)
    });
    Some(Template { resource, full_url })
}

/// The expression of a template extension on `node`.
fn template_expression(node: &Value, url: &str) -> Option<String> {
    extensions(node)
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(url))
        .and_then(|e| {
            e.get("valueString")
                .and_then(Value::as_str)
                .or_else(|| {
                    e.get("valueExpression")
                        .and_then(|x| x.get("expression"))
                        .and_then(Value::as_str)
                })
                .map(str::to_owned)
        })
}

fn other_extensions(value: &Value) -> Vec<Value> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| !matches!(e.get("url").and_then(Value::as_str), Some(CONTEXT | VALUE)))
        .cloned()
        .collect()
}

/// A value filling a complex element: a reference given as text becomes a
/// Reference.
fn as_element(value: Value) -> Value {
    match value {
        Value::String(s) if s.starts_with("urn:uuid:") || s.contains('/') => {
            json!({"reference": s})
        }
        other => other,
    }
}

/// The type of `ty.name` in [`schema`], when known (a choice element by its
/// JSON name: `valueQuantity` is a Quantity).
fn child_type(ty: Option<&str>, name: &str) -> Option<String> {
    let ty = ty?;
    match schema::element(ty, name).map(|e| e.kind) {
        Some(Kind::Primitive(t) | Kind::Complex(t)) => Some(t.to_owned()),
        _ => ["value", "effective", "deceased", "multipleBirth"]
            .iter()
            .find_map(|c| name.strip_prefix(c))
            .filter(|t| t.chars().next().is_some_and(char::is_uppercase))
            .map(|t| {
                let lower = super::lower_first(t);
                if schema::PRIMITIVES.contains(&lower.as_str()) {
                    lower
                } else {
                    t.to_owned()
                }
            }),
    }
}
