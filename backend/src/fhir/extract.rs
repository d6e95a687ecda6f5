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

pub mod mapping;
mod schema;
mod template;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use serde_json::{Map, Value, json};

use self::schema::{Element, Kind};
use super::outcome::{Issue, IssueType, Severity};

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

/// New ids for extracted resources (their `urn:uuid:` fullUrls), behind a trait
/// so tests get the same ids every run.
pub trait IdGenerator: Send + Sync + Debug {
    /// A new UUID, as text.
    fn uuid(&self) -> String;
}

/// Random version-4 UUIDs, from the operating system's random source.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn uuid(&self) -> String {
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut bytes = [0u8; 16];
        if !os_random(&mut bytes) {
            // No /dev/urandom: std's per-process random hash keys. These ids only
            // need to be unique within one Bundle.
            for (i, chunk) in bytes.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        uuid_text(&bytes)
    }
}

/// Fills `bytes` from the operating system's random source, read a few kilobytes
/// at a time per thread: an intake takes half a dozen ids, and opening
/// `/dev/urandom` for each was three system calls apiece. False if it cannot be read.
fn os_random(bytes: &mut [u8]) -> bool {
    use std::cell::RefCell;
    use std::io::{BufReader, Read as _};
    thread_local! {
        static URANDOM: RefCell<Option<BufReader<std::fs::File>>> = const { RefCell::new(None) };
    }
    URANDOM.with(|source| {
        let mut source = source.borrow_mut();
        if source.is_none() {
            *source = std::fs::File::open("/dev/urandom")
                .ok()
                .map(|f| BufReader::with_capacity(4096, f));
        }
        let read = source.as_mut().is_some_and(|f| f.read_exact(bytes).is_ok());
        if !read {
            *source = None;
        }
        read
    })
}

/// `00000000-0000-4000-8000-000000000001`, `…002`, …: for tests and snapshots.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn uuid(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}

fn uuid_text(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push(char::from(HEX[usize::from(x >> 4)]));
        text.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    text
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

/// A resource or an element being filled.
#[derive(Debug)]
struct Frame {
    /// Its type in [`schema`]: `Patient`, `HumanName`.
    ty: String,
    /// Its absolute path: `Patient`, `Patient.name`.
    base: String,
    object: Map<String, Value>,
    kind: FrameKind,
}

#[derive(Debug)]
enum FrameKind {
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

/// One step of a resolved path: the JSON field and whether it repeats.
#[derive(Clone, Debug)]
struct Step {
    field: String,
    many: bool,
}

struct Extractor<'a> {
    response: &'a Value,
    now: &'a str,
    ids: &'a dyn IdGenerator,
    overlay: Option<&'a mapping::Overlay>,
    variables: HashMap<String, String>,
    frames: Vec<Frame>,
    entries: Vec<Option<Value>>,
    answers_written: usize,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

/// An expression the shared FHIRPath engine does not parse or could not
/// evaluate: the caller reports it with the item's linkId and leaves the element
/// out, rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported;

/// Most parsed expressions kept: a form has a few dozen, a server a few dozen forms.
const MAX_CACHED: usize = 4096;

/// `expression` parsed, from a cache: a form's expressions are the same for
/// every response it extracts, so each is parsed once, not once per submission.
fn parsed(expression: &str) -> Result<Arc<shared::fhirpath::Expr>, Unsupported> {
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
fn evaluate(
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
fn to_json(value: &Value) -> shared::json::Json {
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

fn from_json(json: &shared::json::Json) -> Value {
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
fn from_node(node: &shared::fhirpath::Node<'_>) -> Result<Value, Unsupported> {
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

/// Why a value was not written.
#[derive(Debug)]
enum Refused {
    /// The element is already set (a single element, answered twice).
    Occupied,
    /// The value does not fit: which way, in words.
    Unfit(&'static str),
    /// This server does not know the element.
    Unsupported,
    /// No resource or element in scope for the path.
    NoContext,
}

impl Extractor<'_> {
    fn warn(&mut self, code: IssueType, text: impl Into<String>, at: &str) {
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
    fn read_meta(&mut self, node: &Value, at: &str) -> Meta {
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

    fn items(&mut self, q_items: &[Value], r_items: &[Value]) {
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
    fn instance(&mut self, q: &Value, r: &Value, meta: &Meta, is_group: bool, link_id: &str) {
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

    fn push_resource(&mut self, spec: &ExtractSpec, focus: &Value, root: bool) {
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
    fn pop_resource(&mut self) {
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
    fn push_element(&mut self, path: &str, link_id: &str) -> bool {
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

    fn pop_element(&mut self) {
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

    fn apply_values(&mut self, values: &[ValueSpec], focus: &Value, link_id: &str) {
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

    fn evaluate(&self, expression: &str, focus: &Value) -> Result<Vec<Value>, Unsupported> {
        evaluate(expression, focus, self.response, &self.variables, self.now)
    }

    fn write_reporting(&mut self, path: &str, datum: &Datum, link_id: &str, from_answer: bool) {
        match self.write(path, datum) {
            Ok(()) => {
                if from_answer {
                    self.answers_written += 1;
                }
            }
            Err(refused) => self.report(&refused, path, link_id, from_answer),
        }
    }

    fn report(&mut self, refused: &Refused, path: &str, link_id: &str, from_answer: bool) {
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
    fn resolve(&self, path: &str) -> Result<(usize, Vec<Step>, Element), Refused> {
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

    fn write(&mut self, path: &str, datum: &Datum) -> Result<(), Refused> {
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

/// The steps of `relative` (`name.given`, `value[x]:valueQuantity.value`) from
/// `ty`, and its last element.
fn walk(ty: &str, relative: &str) -> Result<(Vec<Step>, Element), Refused> {
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
fn parent_type(frame_ty: &str, steps: &[Step]) -> String {
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

fn base_name(field: &str) -> String {
    field.trim_end_matches("[x]").to_owned()
}

/// `value[x]` has no type chosen yet; `valueQuantity` has.
fn chosen_type(field: &str) -> Option<String> {
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

fn fields(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| base_name(&s.field))
        .collect::<Vec<_>>()
        .join(".")
}

/// Puts `value` at `steps` under `object`. Repeating elements on the way reuse
/// their last instance when the value fits there (a `family` beside the `given`
/// already in the last name), else start a new one; `fresh` always starts one.
/// False when a single element is already set.
fn put(object: &mut Map<String, Value>, steps: &[Step], value: Value, fresh: bool) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return false;
    };
    let field = step.field.trim_end_matches("[x]").to_owned();
    if rest.is_empty() {
        if step.many {
            let list = object
                .entry(field)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                items.push(value);
                return true;
            }
            return false;
        }
        if object.contains_key(&field) {
            return false;
        }
        object.insert(field, value);
        return true;
    }
    if step.many {
        let list = object
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(items) = list else {
            return false;
        };
        if !fresh
            && let Some(Value::Object(last)) = items.last_mut()
            && put(last, rest, value.clone(), fresh)
        {
            return true;
        }
        let mut new = Map::new();
        let ok = put(&mut new, rest, value, fresh);
        if ok {
            items.push(Value::Object(new));
        }
        return ok;
    }
    match object
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(inner) => put(inner, rest, value, fresh),
        _ => false,
    }
}

/// `Quantity` → `quantity`, `DateTime` → `dateTime`; safe on any text (form
/// JSON is not trusted to be ASCII).
pub(crate) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// An answer's value with its FHIR type.
fn answer_datum(answer: &Value) -> Option<Datum> {
    typed_value(answer)
}

/// The `value[x]` of an object (an answer, an extension) with its type.
fn typed_value(object: &Value) -> Option<Datum> {
    let (key, json) = object
        .as_object()?
        .iter()
        .find(|(k, _)| k.len() > 5 && k.starts_with("value"))?;
    let suffix = key.strip_prefix("value")?;
    let lower = lower_first(suffix);
    let ty = if schema::PRIMITIVES.contains(&lower.as_str()) {
        lower
    } else {
        suffix.to_owned()
    };
    Some(Datum {
        ty,
        json: json.clone(),
    })
}

/// `value` as the kind of element it goes to: the JSON and the type chosen.
fn convert(datum: &Datum, kind: Kind, chosen: Option<String>) -> Result<(Value, String), Refused> {
    match kind {
        Kind::Primitive(target) => Ok((to_type(datum, target)?, target.to_owned())),
        Kind::Complex(target) => {
            let target = chosen.as_deref().unwrap_or(target);
            Ok((to_type(datum, target)?, target.to_owned()))
        }
        Kind::Choice(types) => {
            if let Some(t) = chosen {
                return Ok((to_type(datum, &t)?, t));
            }
            // The value's own type first, then the first type it converts to.
            let exact = types.iter().find(|t| **t == datum.ty);
            for t in exact.into_iter().chain(types.iter()) {
                if let Ok(json) = to_type(datum, t) {
                    return Ok((json, (*t).to_owned()));
                }
            }
            Err(Refused::Unfit("no type of this element takes such a value"))
        }
    }
}

const TEXTUAL: &[&str] = &[
    "string",
    "code",
    "uri",
    "url",
    "canonical",
    "id",
    "markdown",
    "oid",
    "uuid",
];

fn to_type(datum: &Datum, target: &str) -> Result<Value, Refused> {
    let from = datum.ty.as_str();
    let json = &datum.json;
    let text = json.as_str();
    let unfit = Refused::Unfit;
    let value = match target {
        _ if from == target && !schema::PRIMITIVES.contains(&target) => json.clone(),
        "string" | "markdown" => match from {
            "Coding" => json
                .get("display")
                .or_else(|| json.get("code"))
                .cloned()
                .ok_or(unfit("a code without text"))?,
            "CodeableConcept" => json
                .get("text")
                .cloned()
                .or_else(|| first_coding(json).and_then(|c| c.get("display").cloned()))
                .ok_or(unfit("a concept without text"))?,
            "integer" | "decimal" | "boolean" => Value::String(number_text(json)),
            _ => Value::String(text.ok_or(unfit("not text"))?.to_owned()),
        },
        "code" => {
            let code = match from {
                "Coding" => json.get("code").and_then(Value::as_str),
                "CodeableConcept" => first_coding(json)
                    .and_then(|c| c.get("code"))
                    .and_then(Value::as_str),
                _ if TEXTUAL.contains(&from) => text,
                _ => None,
            }
            .ok_or(unfit("not a code"))?;
            let code = code.trim();
            if code.is_empty() || code.contains("  ") {
                return Err(unfit("not a code"));
            }
            Value::String(code.to_owned())
        }
        "uri" | "url" | "canonical" => {
            let t = text
                .filter(|_| TEXTUAL.contains(&from))
                .ok_or(unfit("not a URI"))?;
            if t.is_empty() || t.chars().any(char::is_whitespace) {
                return Err(unfit("not a URI"));
            }
            Value::String(t.to_owned())
        }
        "id" => {
            let t = text.ok_or(unfit("not an id"))?;
            if !crate::questionnaires::is_valid_id(t) {
                return Err(unfit("not an id (1-64 letters, digits, '-' or '.')"));
            }
            Value::String(t.to_owned())
        }
        "boolean" => match (from, json) {
            ("boolean", Value::Bool(_)) => json.clone(),
            _ => return Err(unfit("not yes or no")),
        },
        "integer" | "positiveInt" | "unsignedInt" => {
            let n = match from {
                "integer" | "positiveInt" | "unsignedInt" => json.as_i64(),
                "decimal" => json.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64),
                _ => None,
            }
            .ok_or(unfit("not a whole number"))?;
            let min = match target {
                "positiveInt" => 1,
                "unsignedInt" => 0,
                _ => i64::from(i32::MIN),
            };
            if n < min || n > i64::from(i32::MAX) {
                return Err(unfit("out of range"));
            }
            Value::from(n)
        }
        "decimal" => match from {
            "decimal" | "integer" => json.clone(),
            _ => return Err(unfit("not a number")),
        },
        "date" => {
            let t = text.ok_or(unfit("not a date"))?;
            let date = if matches!(from, "dateTime" | "instant") {
                t.get(..10).unwrap_or(t)
            } else {
                t
            };
            if !matches!(from, "date" | "dateTime" | "instant" | "string") || !is_date(date) {
                return Err(unfit("not a date"));
            }
            Value::String(date.to_owned())
        }
        "dateTime" => {
            let t = text.ok_or(unfit("not a date and time"))?;
            if !matches!(from, "date" | "dateTime" | "instant" | "string") || !is_date_time(t) {
                return Err(unfit("not a date and time"));
            }
            Value::String(t.to_owned())
        }
        "instant" => {
            let t = text.ok_or(unfit("not an instant"))?;
            if !matches!(from, "dateTime" | "instant" | "string") || !is_instant(t) {
                return Err(unfit("not an instant (a date and time with a time zone)"));
            }
            Value::String(t.to_owned())
        }
        "time" => {
            let t = text.ok_or(unfit("not a time"))?;
            if !matches!(from, "time" | "string") || !is_time(t) {
                return Err(unfit("not a time"));
            }
            Value::String(t.to_owned())
        }
        "base64Binary" => return Err(unfit("not a file")),
        "CodeableConcept" => match from {
            "Coding" => json!({"coding": [json]}),
            _ if TEXTUAL.contains(&from) => json!({"text": text.ok_or(unfit("not text"))?}),
            _ => return Err(unfit("not a code")),
        },
        "Coding" => match from {
            "CodeableConcept" => first_coding(json)
                .cloned()
                .ok_or(unfit("a concept without a code"))?,
            "code" => json!({"code": json}),
            "string" => json!({"display": json}),
            _ => return Err(unfit("not a code")),
        },
        "Quantity" => match from {
            "decimal" | "integer" => json!({"value": json}),
            _ => return Err(unfit("not an amount")),
        },
        "Reference" => match from {
            "string" | "uri" => {
                let t = text.ok_or(unfit("not a reference"))?;
                if t.starts_with("urn:uuid:") || t.contains('/') {
                    json!({"reference": t})
                } else {
                    json!({"display": t})
                }
            }
            _ => return Err(unfit("not a reference")),
        },
        "HumanName" if TEXTUAL.contains(&from) => json!({"text": json}),
        "Address" if TEXTUAL.contains(&from) => json!({"text": json}),
        "ContactPoint" | "Identifier" if TEXTUAL.contains(&from) => json!({"value": json}),
        "Annotation" if TEXTUAL.contains(&from) => json!({"text": json}),
        "Period" if matches!(from, "date" | "dateTime") => json!({"start": json}),
        _ => return Err(unfit("a value of another type")),
    };
    if let Value::String(s) = &value
        && s.trim().is_empty()
    {
        return Err(unfit("empty"));
    }
    Ok(value)
}

fn first_coding(concept: &Value) -> Option<&Value> {
    concept.get("coding")?.as_array()?.first()
}

fn number_text(json: &Value) -> String {
    match json {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && digits(m, 2) && ("01"..="12").contains(m),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && ("01"..="12").contains(m)
                && ("01"..="31").contains(d)
        }
        _ => false,
    }
}

fn is_time(s: &str) -> bool {
    let (main, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let parts: Vec<&str> = main.split(':').collect();
    matches!(parts.as_slice(), [h, m, sec] if digits(h, 2) && digits(m, 2) && digits(sec, 2)
        && *h < "24" && *m < "60" && *sec < "61")
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn is_instant(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else {
        return false;
    };
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    digits(&date.replace('-', ""), 8)
        && is_date(date)
        && is_time(clock)
        && (zone == "Z" || (zone.len() == 6 && is_time(&format!("{}:00", &zone[1..]))))
}

fn is_date_time(s: &str) -> bool {
    is_date(s) || is_instant(s)
}

/// A code for `type_name.field` checked against R4's required value set. Well-known
/// spellings are normalised (`F`, `LA3-6` and `Female` are `female`); a
/// ContactPoint `use` that is a `system` code (and the other way round), as in the
/// SDC's own extract-complex example, goes where it belongs.
fn bound_code(type_name: &str, field: &str, code: &str) -> Result<(String, String), Refused> {
    let Some(allowed) = schema::required_codes(type_name, field) else {
        return Ok((field.to_owned(), code.to_owned()));
    };
    let lower = code.to_ascii_lowercase();
    let normalised = match (field, lower.as_str()) {
        ("gender", "m" | "la2-8") => "male".to_owned(),
        ("gender", "f" | "la3-6") => "female".to_owned(),
        ("gender", "u" | "unk" | "la4489-6") => "unknown".to_owned(),
        ("gender", "o" | "oth") => "other".to_owned(),
        _ => lower,
    };
    if allowed.contains(&normalised.as_str()) {
        return Ok((field.to_owned(), normalised));
    }
    if type_name == "ContactPoint" {
        let other = if field == "use" { "system" } else { "use" };
        if schema::required_codes(type_name, other)
            .is_some_and(|codes| codes.contains(&normalised.as_str()))
        {
            return Ok((other.to_owned(), normalised));
        }
    }
    Err(Refused::Unfit("a code outside the element's value set"))
}

/// R4 requires `RelatedPerson.patient`; an Observation without a subject is of
/// little use. Both point at the Patient extracted from the same response, when
/// there is exactly one.
fn link_to_the_patient(entries: &mut [Value]) {
    let patients: Vec<String> = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .filter_map(|e| e["fullUrl"].as_str().map(str::to_owned))
        .collect();
    let [patient] = patients.as_slice() else {
        return;
    };
    for entry in entries {
        let Some(resource) = entry.get_mut("resource").and_then(Value::as_object_mut) else {
            continue;
        };
        let field = match resource.get("resourceType").and_then(Value::as_str) {
            Some("RelatedPerson") => "patient",
            Some("Observation") => "subject",
            _ => continue,
        };
        if !resource.contains_key(field) {
            resource.insert(field.to_owned(), json!({"reference": patient}));
        }
    }
}

/// R4 requires `Observation.status` and `.code`, and `RelatedPerson.patient`.
/// An Observation from a completed response is `final` (`preliminary` while the
/// response is in progress) unless the form says otherwise; a resource still
/// missing a required element cannot be sent and is left out, with a warning.
fn complete_required_elements(
    entries: Vec<Value>,
    completed: bool,
    warnings: &mut Vec<Issue>,
) -> Vec<Value> {
    let mut kept = Vec::new();
    for mut entry in entries {
        let Some(resource) = entry.get_mut("resource").and_then(Value::as_object_mut) else {
            continue;
        };
        let missing = match resource.get("resourceType").and_then(Value::as_str) {
            Some("Observation") => {
                if !resource.contains_key("status") {
                    let status = if completed { "final" } else { "preliminary" };
                    resource.insert("status".into(), status.into());
                }
                (!resource.contains_key("code")).then_some("Observation.code")
            }
            Some("RelatedPerson") => {
                (!resource.contains_key("patient")).then_some("RelatedPerson.patient")
            }
            _ => None,
        };
        match missing {
            Some(path) => {
                let issue = Issue {
                    severity: Severity::Warning,
                    code: IssueType::Required,
                    diagnostics: format!(
                        "An extracted resource has no {path}, which FHIR R4 requires; it is left out"
                    ),
                    expression: Some("Questionnaire".into()),
                };
                if !warnings.contains(&issue) {
                    warnings.push(issue);
                }
            }
            None => kept.push(entry),
        }
    }
    kept
}

/// The resource type a definitionExtract canonical names: the base resource, or a
/// profile whose name contains one (`…/us-core-patient`), kept in `meta.profile`.
fn resource_of_canonical(canonical: &str) -> Option<(String, Option<String>)> {
    let canonical = canonical.split('|').next().unwrap_or(canonical);
    let last = canonical.rsplit('/').next().unwrap_or(canonical);
    if schema::RESOURCES.contains(&last) {
        return Some((last.to_owned(), None));
    }
    let lower = last.to_ascii_lowercase();
    // RelatedPerson before Patient: "relatedperson" contains neither, but check
    // the longer name first all the same.
    ["RelatedPerson", "Observation", "Patient"]
        .iter()
        .find(|t| lower.contains(&t.to_ascii_lowercase()))
        .map(|t| ((*t).to_owned(), Some(canonical.to_owned())))
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
