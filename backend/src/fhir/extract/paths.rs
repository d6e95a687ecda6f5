//! An item's `definition` read as a path into a FHIR type, against the schema
//! table.

use super::schema;
use super::schema::{Element, Kind};

/// The steps of `relative` (`name.given`, `value[x]:valueQuantity.value`) from
/// `ty`, and its last element.
pub(crate) fn walk(ty: &str, relative: &str) -> Result<(Vec<Step>, Element), Refused> {
    let mut ty = ty.to_owned();
    let mut steps = Vec::new();
    let mut last = None;
    for segment in relative.split('.') {
        if last.is_some_and(|e: Element| !matches!(e.kind, Kind::Complex(_))) {
            return Err(Refused::Unsupported);
        }
        let (name, slice) = match segment.split_once(':') {
            Some((name, slice)) => (name.trim_end_matches("[x]"), Some(slice)),
            None => (segment.trim_end_matches("[x]"), None),
        };
        let (name, choice) = match schema::element(&ty, name) {
            Some(_) => (name.to_owned(), slice.and_then(|s| s.strip_prefix(name))),
            // `valueQuantity`: a choice element named with its type.
            None => ["value", "effective", "deceased", "multipleBirth"]
                .iter()
                .find_map(|c| name.strip_prefix(c).map(|t| ((*c).to_owned(), Some(t))))
                .ok_or(Refused::Unsupported)?,
        };
        let element = schema::element(&ty, &name).ok_or(Refused::Unsupported)?;
        let field = match (element.kind, choice) {
            (Kind::Choice(types), Some(t)) => {
                let t = types
                    .iter()
                    .find(|x| x.eq_ignore_ascii_case(t))
                    .ok_or(Refused::Unsupported)?;
                ty = (*t).to_owned();
                // A chosen type: the element behaves as that type from here.
                let kind = if schema::PRIMITIVES.contains(t) {
                    Kind::Primitive(t)
                } else {
                    Kind::Complex(t)
                };
                steps.push(Step {
                    field: schema::choice_name(&name, t),
                    many: element.many,
                });
                last = Some(Element {
                    kind,
                    many: element.many,
                });
                continue;
            }
            (Kind::Choice(_), None) => format!("{name}[x]"),
            _ => name.clone(),
        };
        if let Kind::Complex(inner) = element.kind {
            ty = inner.to_owned();
        }
        steps.push(Step {
            field,
            many: element.many,
        });
        last = Some(element);
    }
    last.map(|e| (steps, e)).ok_or(Refused::Unsupported)
}

/// The type holding the last step (for required value sets).
pub(crate) fn parent_type(frame_ty: &str, steps: &[Step]) -> String {
    let mut ty = frame_ty.to_owned();
    for step in steps.iter().take(steps.len().saturating_sub(1)) {
        let name = base_name(&step.field);
        match schema::element(&ty, &name).map(|e| e.kind) {
            Some(Kind::Complex(inner)) => ty = inner.to_owned(),
            _ => {
                // A choice step named with its type: `valueQuantity`.
                if let Some(t) = chosen_type(&step.field) {
                    ty = t;
                }
            }
        }
    }
    ty
}

pub(crate) fn base_name(field: &str) -> String {
    field.trim_end_matches("[x]").to_owned()
}

/// `value[x]` has no type chosen yet; `valueQuantity` has.
pub(crate) fn chosen_type(field: &str) -> Option<String> {
    if field.ends_with("[x]") {
        return None;
    }
    ["value", "effective", "deceased", "multipleBirth"]
        .iter()
        .find_map(|c| field.strip_prefix(c))
        .filter(|t| t.chars().next().is_some_and(char::is_uppercase))
        .map(|t| {
            let lower = lower_first(t);
            if schema::PRIMITIVES.contains(&lower.as_str()) {
                lower
            } else {
                t.to_owned()
            }
        })
}

pub(crate) fn fields(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| base_name(&s.field))
        .collect::<Vec<_>>()
        .join(".")
}

/// One step of a resolved path: the JSON field and whether it repeats.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) field: String,
    pub(crate) many: bool,
}

/// Why a value was not written.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The element is already set (a single element, answered twice).
    Occupied,
    /// The value does not fit: which way, in words.
    Unfit(&'static str),
    /// This server does not know the element.
    Unsupported,
    /// No resource or element in scope for the path.
    NoContext,
}

/// `Quantity` → `quantity`, `DateTime` → `dateTime`; safe on any text (form
/// JSON is not trusted to be ASCII).
pub(crate) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}
