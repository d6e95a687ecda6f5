//! The compiled form: what the browser needs to render a Questionnaire and check
//! its answers, and nothing more.
//!
//! The server compiles a FHIR R4 Questionnaire into a [`Form`] once, at import; the
//! browser never downloads FHIR machinery. Enums keep serde's externally tagged
//! encoding (see ARCHITECTURE.md: the backend's serde_json has arbitrary_precision).

use serde::{Deserialize, Serialize};

/// A Questionnaire, compiled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Form {
    /// The Questionnaire's id on this server.
    pub id: String,
    /// Its canonical URL, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its business version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The title shown to the patient.
    pub title: String,
    /// Form-level FHIRPath variables (`variable` extension), kept for the evaluator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// The items, in order.
    pub items: Vec<Item>,
}

/// One Questionnaire item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `linkId`: unique in the form.
    pub link_id: String,
    /// The question or heading.
    pub text: String,
    /// `prefix` (e.g. "1.").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The item type.
    pub kind: ItemKind,
    /// An answer is needed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// More than one answer (or group instance) is allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub repeats: bool,
    /// Shown, not editable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// `questionnaire-hidden`: not shown, still part of the response.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hidden: bool,
    /// Limits on the answer.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// `entryFormat`, shown as a placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_format: Option<String>,
    /// `questionnaire-itemControl`, when it names a control we render.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
    /// Help text (a child display item with control help or flyover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The choices of a choice or open-choice item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<AnswerOption>,
    /// An `answerValueSet` that could not be expanded here: the item falls back to
    /// free text, and the import lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved_value_set: Option<String>,
    /// `initial` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initial: Vec<Value>,
    /// `enableWhen` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enable_when: Vec<EnableWhen>,
    /// How several conditions combine.
    #[serde(default, skip_serializing_if = "EnableBehavior::is_all")]
    pub enable_behavior: EnableBehavior,
    /// FHIRPath expressions attached to the item.
    #[serde(default, skip_serializing_if = "ItemExpressions::is_empty")]
    pub expressions: ItemExpressions,
    /// Item-level variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// `definition`: the element this item fills, for SDC extraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// `code`s of the item (LOINC and the like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Coding>,
    /// Child items (groups, and questions with nested items).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
}

/// R4 item types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    Group,
    Display,
    Boolean,
    Decimal,
    Integer,
    Date,
    DateTime,
    Time,
    String,
    Text,
    Url,
    Choice,
    OpenChoice,
    Attachment,
    Reference,
    Quantity,
}

impl ItemKind {
    /// Every R4 item type.
    pub const ALL: [ItemKind; 16] = [
        ItemKind::Group,
        ItemKind::Display,
        ItemKind::Boolean,
        ItemKind::Decimal,
        ItemKind::Integer,
        ItemKind::Date,
        ItemKind::DateTime,
        ItemKind::Time,
        ItemKind::String,
        ItemKind::Text,
        ItemKind::Url,
        ItemKind::Choice,
        ItemKind::OpenChoice,
        ItemKind::Attachment,
        ItemKind::Reference,
        ItemKind::Quantity,
    ];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            ItemKind::Group => "group",
            ItemKind::Display => "display",
            ItemKind::Boolean => "boolean",
            ItemKind::Decimal => "decimal",
            ItemKind::Integer => "integer",
            ItemKind::Date => "date",
            ItemKind::DateTime => "dateTime",
            ItemKind::Time => "time",
            ItemKind::String => "string",
            ItemKind::Text => "text",
            ItemKind::Url => "url",
            ItemKind::Choice => "choice",
            ItemKind::OpenChoice => "open-choice",
            ItemKind::Attachment => "attachment",
            ItemKind::Reference => "reference",
            ItemKind::Quantity => "quantity",
        }
    }

    /// The type for a FHIR code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Whether items of this type take answers.
    pub fn is_question(self) -> bool {
        !matches!(self, ItemKind::Group | ItemKind::Display)
    }
}

/// Limits on an answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// `maxLength`, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// `minLength` extension, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// `regex` extension, unwrapped from FHIRPath `matches('…')` if written so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `minValue` extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<Value>,
    /// `maxValue` extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<Value>,
    /// `maxSize` extension for attachments, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// `mimeType` extension for attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mime_types: Vec<String>,
}

/// How an item is presented (`questionnaire-itemControl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    DropDown,
    RadioButton,
    CheckBox,
    Autocomplete,
    Slider,
    Page,
    Tab,
    /// Tabs' container (`tab-container`): its child groups are tabs.
    TabContainer,
    /// A group shown as a table in the source; rendered as a list on a phone.
    Table,
}

impl Control {
    /// The control for an itemControl code we render.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "drop-down" => Control::DropDown,
            "radio-button" => Control::RadioButton,
            "check-box" => Control::CheckBox,
            "autocomplete" | "lookup" => Control::Autocomplete,
            "slider" => Control::Slider,
            "page" => Control::Page,
            "tab" => Control::Tab,
            "tab-container" => Control::TabContainer,
            "table" | "gtable" | "htable" | "grid" | "list" => Control::Table,
            _ => return None,
        })
    }
}

/// A typed answer value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Value {
    Boolean(bool),
    Decimal(f64),
    Integer(i64),
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    Date(String),
    DateTime(String),
    Time(String),
    String(String),
    Uri(String),
    Coding(Coding),
    Quantity(Quantity),
    /// A reference, as its `reference` or `display` text.
    Reference(String),
    Attachment(Attachment),
}

/// A code from a code system (FHIR `Coding`, same JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    /// FHIR's sense of the same code: equal codes, and equal systems where both
    /// name one. Codings with no code at all (real forms have display-only
    /// options) are the same when their displays are.
    pub fn same_code(&self, other: &Coding) -> bool {
        let same_system =
            self.system.is_none() || other.system.is_none() || self.system == other.system;
        match (&self.code, &other.code) {
            (Some(a), Some(b)) => a == b && same_system,
            (None, None) => self.display.is_some() && self.display == other.display && same_system,
            _ => false,
        }
    }
}

/// A measured amount (FHIR `Quantity`, same JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A file (FHIR `Attachment`, same JSON): a photo of an insurance card, say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// One choice of a choice item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerOption {
    /// The value recorded when chosen.
    pub value: Value,
    /// Selected at the start.
    #[serde(default, skip_serializing_if = "is_false")]
    pub initial_selected: bool,
    /// `ordinalValue`/`itemWeight`: the score it adds (PHQ-9, GAD-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<f64>,
    /// `optionPrefix` (e.g. "a)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One `enableWhen` condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnableWhen {
    /// The linkId of the question it looks at.
    pub question: String,
    /// How it compares.
    pub operator: Operator,
    /// What it compares with (for `exists`: a boolean).
    pub answer: Value,
}

/// `enableWhen.operator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    Exists,
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
}

impl Operator {
    /// The operator for a FHIR code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "exists" => Operator::Exists,
            "=" => Operator::Equal,
            "!=" => Operator::NotEqual,
            ">" => Operator::Greater,
            "<" => Operator::Less,
            ">=" => Operator::GreaterOrEqual,
            "<=" => Operator::LessOrEqual,
            _ => return None,
        })
    }
}

/// `enableBehavior`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnableBehavior {
    /// Every condition must hold.
    #[default]
    All,
    /// One condition is enough.
    Any,
}

/// FHIRPath expressions on an item (SDC).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemExpressions {
    /// `sdc-questionnaire-calculatedExpression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculated: Option<String>,
    /// `sdc-questionnaire-enableWhenExpression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_when: Option<String>,
    /// `sdc-questionnaire-initialExpression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
}

/// A named FHIRPath expression (`variable` extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    pub expression: String,
}

/// Something the import could not use in full. The form still works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportWarning {
    /// The item concerned, or none for the whole form.
    pub link_id: Option<String>,
    /// What was not used, and what the form does instead.
    pub message: String,
}

/// What `GET /api/forms/{id}` answers: the form and what its import could not use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompiledForm {
    pub form: Form,
    pub warnings: Vec<ImportWarning>,
}

/// For `skip_serializing_if`: the compiled form leaves out what is empty, false
/// or the default (a large form's JSON is then less than half the size).
fn is_false(value: &bool) -> bool {
    !value
}

impl Constraints {
    fn is_empty(&self) -> bool {
        self == &Constraints::default()
    }
}

impl ItemExpressions {
    fn is_empty(&self) -> bool {
        self == &ItemExpressions::default()
    }
}

impl EnableBehavior {
    fn is_all(&self) -> bool {
        *self == EnableBehavior::All
    }
}

impl Item {
    /// An item with no text, limits, options or conditions.
    pub fn new(link_id: impl Into<String>, kind: ItemKind) -> Self {
        Item {
            link_id: link_id.into(),
            text: String::new(),
            prefix: None,
            kind,
            required: false,
            repeats: false,
            read_only: false,
            hidden: false,
            constraints: Constraints::default(),
            entry_format: None,
            control: None,
            help: None,
            options: Vec::new(),
            unresolved_value_set: None,
            initial: Vec::new(),
            enable_when: Vec::new(),
            enable_behavior: EnableBehavior::All,
            expressions: ItemExpressions::default(),
            variables: Vec::new(),
            definition: None,
            codes: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl Form {
    /// Every item, depth first.
    pub fn all_items(&self) -> Vec<&Item> {
        fn walk<'a>(items: &'a [Item], out: &mut Vec<&'a Item>) {
            for item in items {
                out.push(item);
                walk(&item.items, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.items, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Coding;

    #[test]
    fn compiled_items_leave_out_what_is_empty_and_read_back_the_same() {
        use super::{Item, ItemKind, Value};
        let plain = Item::new("q", ItemKind::String);
        let json = serde_json::to_value(&plain).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"link_id": "q", "text": "", "kind": "string"})
        );
        assert_eq!(serde_json::from_value::<Item>(json).unwrap(), plain);
        let mut full = Item::new("q", ItemKind::Integer);
        full.required = true;
        full.constraints.max_value = Some(Value::Integer(10));
        full.enable_behavior = super::EnableBehavior::Any;
        let back: Item = serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn codings_compare_by_code_then_system_or_by_display_without_codes() {
        let c = |system: Option<&str>, code: Option<&str>, display: Option<&str>| Coding {
            system: system.map(Into::into),
            code: code.map(Into::into),
            display: display.map(Into::into),
        };
        let loinc = Some("http://loinc.org");
        let cases = [
            (
                c(loinc, Some("a"), Some("A")),
                c(loinc, Some("a"), None),
                true,
            ),
            (c(loinc, Some("a"), None), c(None, Some("a"), None), true),
            (
                c(loinc, Some("a"), None),
                c(Some("http://snomed.info/sct"), Some("a"), None),
                false,
            ),
            (c(loinc, Some("a"), None), c(loinc, Some("b"), None), false),
            (c(None, None, Some("Yes")), c(None, None, Some("Yes")), true),
            (c(None, None, Some("Yes")), c(None, None, Some("No")), false),
            (c(None, None, None), c(None, None, None), false),
            (
                c(None, Some("y"), Some("Yes")),
                c(None, None, Some("Yes")),
                false,
            ),
        ];
        for (a, b, same) in cases {
            assert_eq!(a.same_code(&b), same, "{a:?} {b:?}");
            assert_eq!(b.same_code(&a), same, "symmetric: {a:?} {b:?}");
        }
    }
}
