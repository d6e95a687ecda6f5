//! The walk over a response's items that builds the extracted resources: the
//! frames of `definitionExtract` and `itemExtractionContext`, and each item's
//! value put where its `definition` says.

use std::collections::HashMap;
use std::fmt::Debug;

use serde_json::{Map, Value, json};

use super::expressions::{Unsupported, evaluate};
use super::ids::IdGenerator;
use super::paths::{Refused, Step, base_name, chosen_type, fields, parent_type, walk};
use super::resources::resource_of_canonical;
use super::schema::{Element, Kind};
use super::values::{answer_datum, bound_code, convert, put, typed_value};
use super::{
    Datum, ExtractSpec, Meta, Source, ValueSpec, extensions, items_of, mapping, schema,
    sub_extension, sub_value, url,
};
use crate::fhir::outcome::{Issue, IssueType, Severity};

/// A resource or an element being filled.
#[derive(Debug)]
pub(crate) struct Frame {
    /// Its type in [`schema`]: `Patient`, `HumanName`.
    pub(crate) ty: String,
    /// Its absolute path: `Patient`, `Patient.name`.
    pub(crate) base: String,
    pub(crate) object: Map<String, Value>,
    pub(crate) kind: FrameKind,
}

#[derive(Debug)]
pub(crate) enum FrameKind {
    Resource {
        entry: usize,
        root: bool,
        full_url: String,
        answers_at_start: usize,
    },
    Element {
        parent: usize,
        steps: Vec<Step>,
    },
}

pub(crate) struct Extractor<'a> {
    pub(crate) response: &'a Value,
    pub(crate) now: &'a str,
    pub(crate) ids: &'a dyn IdGenerator,
    pub(crate) overlay: Option<&'a mapping::Overlay>,
    pub(crate) variables: HashMap<String, String>,
    pub(crate) frames: Vec<Frame>,
    pub(crate) entries: Vec<Option<Value>>,
    pub(crate) answers_written: usize,
    pub(crate) errors: Vec<Issue>,
    pub(crate) warnings: Vec<Issue>,
}

impl Extractor<'_> {
    pub(crate) fn warn(&mut self, code: IssueType, text: impl Into<String>, at: &str) {
        let issue = Issue {
            severity: Severity::Warning,
            code,
            diagnostics: text.into(),
            expression: Some(at.to_owned()),
        };
        // Once per item, not once per answer or group instance.
        if !self.warnings.contains(&issue) {
            self.warnings.push(issue);
        }
    }

    /// The metadata of `node` (the Questionnaire or an item); the per-form
    /// mapping stands in for items that have none.
    pub(crate) fn read_meta(&mut self, node: &Value, at: &str) -> Meta {
        let mut meta = Meta::default();
        if let Some(definition) = node.get("definition").and_then(Value::as_str) {
            match definition.split_once('#') {
                Some((_, path)) if !path.is_empty() => meta.definition = Some(path.to_owned()),
                _ => self.warn(
                    IssueType::NotSupported,
                    "The item's definition names no element (no '#path'); it is not extracted",
                    at,
                ),
            }
        }
        for ext in extensions(node) {
            let ext_url = ext.get("url").and_then(Value::as_str).unwrap_or_default();
            match ext_url {
                url::DEFINITION_EXTRACT => {
                    let canonical = ext
                        .get("valueCanonical")
                        .and_then(Value::as_str)
                        .or_else(|| sub_value(ext, "definition").and_then(Value::as_str));
                    let full_url = sub_value(ext, "fullUrl").and_then(|v| {
                        v.as_str()
                            .or_else(|| v.get("expression").and_then(Value::as_str))
                            .map(str::to_owned)
                    });
                    match canonical.and_then(resource_of_canonical) {
                        Some((resource_type, profile)) => {
                            meta.extract = Some(ExtractSpec {
                                resource_type,
                                profile,
                                full_url,
                            });
                        }
                        None => self.warn(
                            IssueType::NotSupported,
                            "definitionExtract names a profile or resource this server does not extract",
                            at,
                        ),
                    }
                }
                url::ITEM_EXTRACTION_CONTEXT => {
                    let named = ext.get("valueCode").and_then(Value::as_str).or_else(|| {
                        ext.get("valueExpression")
                            .and_then(|e| e.get("expression"))
                            .and_then(Value::as_str)
                    });
                    let resource_type = named
                        .map(|n| n.split('?').next().unwrap_or(n).trim())
                        .filter(|t| schema::RESOURCES.contains(t));
                    match resource_type {
                        Some(t) => {
                            meta.extract = Some(ExtractSpec {
                                resource_type: t.to_owned(),
                                profile: None,
                                full_url: None,
                            });
                        }
                        None => self.warn(
                            IssueType::NotSupported,
                            "itemExtractionContext names a resource type this server does not extract (Patient, RelatedPerson, Observation), or an existing resource to update, which is not supported",
                            at,
                        ),
                    }
                }
                url::DEFINITION_EXTRACT_VALUE => {
                    let path = sub_value(ext, "definition")
                        .and_then(Value::as_str)
                        .and_then(|d| d.split_once('#'))
                        .map(|(_, p)| p.to_owned());
                    let source = if let Some(fixed) = sub_extension(ext, "fixed-value") {
                        typed_value(fixed).map(Source::Fixed)
                    } else {
                        sub_value(ext, "expression")
                            .and_then(|e| e.get("expression"))
                            .and_then(Value::as_str)
                            .map(|e| Source::Expression(e.to_owned()))
                    };
                    match (path, source) {
                        (Some(path), Some(source)) => meta.values.push(ValueSpec { path, source }),
                        _ => self.warn(
                            IssueType::Invalid,
                            "definitionExtractValue needs a definition with '#path' and a fixed-value or an expression",
                            at,
                        ),
                    }
                }
                url::ALLOCATE_ID => {
                    if let Some(name) = ext.get("valueString").and_then(Value::as_str) {
                        meta.allocate.push(name.to_owned());
                    }
                }
                _ => {}
            }
        }
        if meta.is_empty()
            && let Some(overlay) = self.overlay
            && let Some(link_id) = node.get("linkId").and_then(Value::as_str)
            && let Some(mapped) = overlay.items.get(link_id)
        {
            return mapped.clone();
        }
        meta
    }

    pub(crate) fn items(&mut self, q_items: &[Value], r_items: &[Value]) {
        for q in q_items {
            let Some(link_id) = q.get("linkId").and_then(Value::as_str) else {
                continue;
            };
            let instances: Vec<&Value> = r_items
                .iter()
                .filter(|r| r.get("linkId").and_then(Value::as_str) == Some(link_id))
                .collect();
            let meta = self.read_meta(q, link_id);
            let is_group = q.get("type").and_then(Value::as_str) == Some("group");
            for r in instances {
                self.instance(q, r, &meta, is_group, link_id);
            }
        }
    }

    /// One instance of an item (a group repetition, or a question's answers).
    pub(crate) fn instance(
        &mut self,
        q: &Value,
        r: &Value,
        meta: &Meta,
        is_group: bool,
        link_id: &str,
    ) {
        for name in &meta.allocate {
            let id = format!("urn:uuid:{}", self.ids.uuid());
            self.variables.insert(name.clone(), id);
        }
        let resource = meta
            .extract
            .as_ref()
            .map(|spec| self.push_resource(spec, r, false));
        let element = match (&meta.definition, is_group) {
            (Some(path), true) => self.push_element(path, link_id),
            _ => false,
        };
        let q_children = items_of(q);
        let answers_at_start = self.answers_written;
        if is_group {
            self.items(q_children, items_of(r));
            // Fixed values complete what the group's answers made: none, none.
            if self.answers_written > answers_at_start {
                self.apply_values(&meta.values, r, link_id);
            }
        } else {
            let answers = r
                .get("answer")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for answer in answers {
                if let (Some(path), Some(datum)) = (&meta.definition, answer_datum(answer)) {
                    self.write_reporting(path, &datum, link_id, true);
                }
                if resource.is_none() && meta.definition.is_some() {
                    // Fixed values complete the element this answer made
                    // (a telecom's system beside its value).
                    self.apply_values(&meta.values, r, link_id);
                }
                self.items(q_children, items_of(answer));
            }
            // Children of a question are sometimes written beside its answers.
            self.items(q_children, items_of(r));
            if resource.is_some() || (meta.definition.is_none() && !answers.is_empty()) {
                self.apply_values(&meta.values, r, link_id);
            }
        }
        if element {
            self.pop_element();
        }
        if resource.is_some() {
            self.pop_resource();
        }
    }

    pub(crate) fn push_resource(&mut self, spec: &ExtractSpec, focus: &Value, root: bool) {
        let full_url = spec
            .full_url
            .as_deref()
            .and_then(|e| self.evaluate(e, focus).ok())
            .and_then(|values| values.first().and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("urn:uuid:{}", self.ids.uuid()));
        let mut object = Map::new();
        object.insert("resourceType".into(), spec.resource_type.clone().into());
        if let Some(profile) = &spec.profile {
            object.insert("meta".into(), json!({"profile": [profile]}));
        }
        self.entries.push(None);
        self.frames.push(Frame {
            ty: spec.resource_type.clone(),
            base: spec.resource_type.clone(),
            object,
            kind: FrameKind::Resource {
                entry: self.entries.len() - 1,
                root,
                full_url,
                answers_at_start: self.answers_written,
            },
        });
    }

    /// Finishes the innermost resource: an entry, unless it was made for an item
    /// and nothing was answered in it.
    pub(crate) fn pop_resource(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        let FrameKind::Resource {
            entry,
            root,
            full_url,
            answers_at_start,
        } = frame.kind
        else {
            return;
        };
        if !root && self.answers_written == answers_at_start {
            return;
        }
        let request = match frame.object.get("id").and_then(Value::as_str) {
            Some(id) => json!({"method": "PUT", "url": format!("{}/{id}", frame.ty)}),
            None => json!({"method": "POST", "url": frame.ty}),
        };
        if let Some(slot) = self.entries.get_mut(entry) {
            *slot = Some(json!({
                "fullUrl": full_url,
                "resource": Value::Object(frame.object),
                "request": request,
            }));
        }
    }

    /// Starts the element a group with a definition makes (`Patient.name`).
    pub(crate) fn push_element(&mut self, path: &str, link_id: &str) -> bool {
        match self.resolve(path) {
            Ok((
                parent,
                steps,
                Element {
                    kind: Kind::Complex(ty),
                    ..
                },
            )) => {
                let base = format!("{}.{}", self.frames[parent].base, fields(&steps));
                self.frames.push(Frame {
                    ty: ty.to_owned(),
                    base,
                    object: Map::new(),
                    kind: FrameKind::Element { parent, steps },
                });
                true
            }
            Ok(_) => {
                self.warn(
                    IssueType::NotSupported,
                    format!("The group's definition {path} is not an element with parts; its questions are extracted on their own"),
                    link_id,
                );
                false
            }
            Err(refused) => {
                self.report(&refused, path, link_id, false);
                false
            }
        }
    }

    pub(crate) fn pop_element(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        let FrameKind::Element { parent, steps } = frame.kind else {
            return;
        };
        if frame.object.is_empty() {
            return;
        }
        if let Some(parent) = self.frames.get_mut(parent) {
            // A group instance is a new element (a second name), never merged.
            put(
                &mut parent.object,
                &steps,
                Value::Object(frame.object),
                true,
            );
        }
    }

    pub(crate) fn apply_values(&mut self, values: &[ValueSpec], focus: &Value, link_id: &str) {
        for spec in values {
            let datum = match &spec.source {
                Source::Fixed(datum) => datum.clone(),
                Source::Expression(expression) => match self.evaluate(expression, focus) {
                    Ok(found) => match found.as_slice() {
                        [] => continue,
                        [Value::String(s)] => Datum::new("string", s.clone().into()),
                        [Value::Bool(b)] => Datum::new("boolean", (*b).into()),
                        [other] if other.is_object() => {
                            self.warn(
                                IssueType::NotSupported,
                                format!("The expression for {} gives a value of a type this server does not extract", spec.path),
                                link_id,
                            );
                            continue;
                        }
                        _ => {
                            self.warn(
                                IssueType::NotSupported,
                                format!(
                                    "The expression for {} gives more than one value",
                                    spec.path
                                ),
                                link_id,
                            );
                            continue;
                        }
                    },
                    Err(Unsupported) => {
                        self.warn(
                            IssueType::NotSupported,
                            format!("The expression for {} uses FHIRPath this server does not evaluate; it is left out", spec.path),
                            link_id,
                        );
                        continue;
                    }
                },
            };
            self.write_reporting(&spec.path, &datum, link_id, false);
        }
    }

    pub(crate) fn evaluate(
        &self,
        expression: &str,
        focus: &Value,
    ) -> Result<Vec<Value>, Unsupported> {
        evaluate(expression, focus, self.response, &self.variables, self.now)
    }

    pub(crate) fn write_reporting(
        &mut self,
        path: &str,
        datum: &Datum,
        link_id: &str,
        from_answer: bool,
    ) {
        match self.write(path, datum) {
            Ok(()) => {
                if from_answer {
                    self.answers_written += 1;
                }
            }
            Err(refused) => self.report(&refused, path, link_id, from_answer),
        }
    }

    pub(crate) fn report(
        &mut self,
        refused: &Refused,
        path: &str,
        link_id: &str,
        from_answer: bool,
    ) {
        match *refused {
            Refused::Unfit(why) if from_answer => self.errors.push(
                Issue::error(
                    IssueType::Value,
                    format!("The answer cannot be recorded as {path}: {why}"),
                )
                .at(link_id),
            ),
            Refused::Unfit(why) => self.warn(
                IssueType::Value,
                format!("The value for {path} is left out: {why}"),
                link_id,
            ),
            Refused::Occupied => self.warn(
                IssueType::BusinessRule,
                format!("{path} holds one value; the first is kept"),
                link_id,
            ),
            Refused::Unsupported => self.warn(
                IssueType::NotSupported,
                format!("{path} is not an element this server extracts; it is left out"),
                link_id,
            ),
            Refused::NoContext => self.warn(
                IssueType::NotSupported,
                format!("No resource is being extracted here for {path} (no definitionExtract or itemExtractionContext above it); it is left out"),
                link_id,
            ),
        }
    }

    /// The innermost frame `path` belongs to, the steps from it, and the last
    /// element.
    pub(crate) fn resolve(&self, path: &str) -> Result<(usize, Vec<Step>, Element), Refused> {
        for (index, frame) in self.frames.iter().enumerate().rev() {
            let relative = path
                .strip_prefix(frame.base.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .or_else(|| match frame.kind {
                    // `HumanName.family` inside a group whose definition is a HumanName.
                    FrameKind::Element { .. } => path
                        .strip_prefix(frame.ty.as_str())
                        .and_then(|rest| rest.strip_prefix('.')),
                    FrameKind::Resource { .. } => None,
                });
            if let Some(relative) = relative {
                let (steps, element) = walk(&frame.ty, relative)?;
                return Ok((index, steps, element));
            }
        }
        Err(Refused::NoContext)
    }

    pub(crate) fn write(&mut self, path: &str, datum: &Datum) -> Result<(), Refused> {
        let (frame, mut steps, element) = self.resolve(path)?;
        let parent_ty = parent_type(&self.frames[frame].ty, &steps);
        let Some(last) = steps.last_mut() else {
            return Err(Refused::Unsupported);
        };
        let (json, ty) = convert(datum, element.kind, chosen_type(&last.field))?;
        if let Kind::Choice(_) = element.kind {
            last.field = schema::choice_name(&base_name(&last.field), &ty);
        }
        let json = match (ty.as_str(), json) {
            ("code", Value::String(code)) => {
                let (field, code) = bound_code(&parent_ty, &last.field, &code)?;
                last.field = field;
                Value::String(code)
            }
            (_, json) => json,
        };
        if put(&mut self.frames[frame].object, &steps, json, false) {
            Ok(())
        } else {
            Err(Refused::Occupied)
        }
    }
}
