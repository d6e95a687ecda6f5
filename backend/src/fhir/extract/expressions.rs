//! The FHIRPath an extraction runs (`definitionExtractValue`, contexts), on
//! `shared::fhirpath` over the response as JSON, each expression parsed once.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use serde_json::Value;

/// An expression the shared FHIRPath engine does not parse or could not
/// evaluate: the caller reports it with the item's linkId and leaves the element
/// out, rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported;

/// Most parsed expressions kept: a form has a few dozen, a server a few dozen forms.
pub(crate) const MAX_CACHED: usize = 4096;

/// `expression` parsed, from a cache: a form's expressions are the same for
/// every response it extracts, so each is parsed once, not once per submission.
pub(crate) fn parsed(expression: &str) -> Result<Arc<shared::fhirpath::Expr>, Unsupported> {
    type Cache = RwLock<HashMap<String, Result<Arc<shared::fhirpath::Expr>, Unsupported>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(found) = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(expression)
    {
        return found.clone();
    }
    let result = shared::fhirpath::check_full(expression)
        .map(Arc::new)
        .map_err(|_| Unsupported);
    let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
    if cache.len() < MAX_CACHED {
        cache.insert(expression.to_owned(), result.clone());
    }
    result
}

/// Evaluates `expression` with `focus` (the current response item, or the
/// response) as `%context` and input, `response` as `%resource`, `variables` as
/// `%name` (allocated ids), `now` (a FHIR instant) as `now()` and its date as
/// `today()`. The values as JSON: strings, booleans, numbers, elements.
pub(crate) fn evaluate(
    expression: &str,
    focus: &Value,
    response: &Value,
    variables: &HashMap<String, String>,
    now: &str,
) -> Result<Vec<Value>, Unsupported> {
    use shared::fhirpath::{Env, Node};
    let expr = parsed(expression)?;
    let resource = to_json(response);
    let focus = to_json(focus);
    let names: Vec<(&str, String)> = variables
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let mut env = Env::json(
        &resource,
        now.get(..10).and_then(|d| shared::Date::parse(d).ok()),
    );
    env.now = Some(now);
    for (name, value) in &names {
        env.vars
            .push((name, Ok(vec![Node::Str(value.as_str().into())])));
    }
    let found = env
        .eval(&expr, &[Node::Json(&focus)])
        .map_err(|_| Unsupported)?;
    found.iter().map(from_node).collect()
}

/// serde_json's value as the shared engine's JSON (numbers keep their text).
pub(crate) fn to_json(value: &Value) -> shared::json::Json {
    use shared::json::Json;
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(n.to_string()),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(members) => Json::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

pub(crate) fn from_json(json: &shared::json::Json) -> Value {
    use shared::json::Json;
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        Json::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect(),
        ),
    }
}

/// One value the engine gave, as JSON.
pub(crate) fn from_node(node: &shared::fhirpath::Node<'_>) -> Result<Value, Unsupported> {
    use shared::fhirpath::Node;
    Ok(match node {
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::from(*i),
        // A decimal stays one (`1.0`, not `1`): FHIR's decimals keep their point.
        Node::Dec(_) => shared::fhirpath::display(node)
            .map(|text| {
                if text.contains('.') {
                    text
                } else {
                    format!("{text}.0")
                }
            })
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or(Unsupported)?,
        Node::Str(s) | Node::Date(s) | Node::DateTime(s) | Node::Time(s) => {
            Value::String(s.to_string())
        }
        Node::Json(j) => from_json(j),
        _ => return Err(Unsupported),
    })
}
