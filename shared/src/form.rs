//! The compiled form: what the browser needs to render a Questionnaire and check
//! its answers, and nothing more.
//!
//! The server compiles a FHIR R4 Questionnaire into a [`Form`] once, at import; the
//! browser never downloads FHIR machinery. Enums keep serde's externally tagged
//! encoding (see ARCHITECTURE.md: the backend's serde_json has arbitrary_precision).

use serde::{Deserialize, Serialize};

use crate::map::Map;

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
    /// The title in other languages (the `translation` extensions on `title`), by
    /// language tag as the Questionnaire writes it (`es`, `es-MX`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub title_translations: Map<String>,
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
    /// The item's texts in other languages (the Questionnaire's `translation`
    /// extensions), by language tag as the Questionnaire writes it. Only languages
    /// with at least one translated text are here; see [`Form::localized`].
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub translations: Map<ItemText>,
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
    /// The text shown for the option in place of its value's own: a translation,
    /// set by [`Form::localized`]. The answer recorded is still `value`, so a
    /// response means the same whatever language it was filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl AnswerOption {
    /// An option recording `value`, with no prefix, score or label.
    pub fn new(value: Value) -> Self {
        AnswerOption {
            value,
            initial_selected: false,
            ordinal: None,
            prefix: None,
            label: None,
        }
    }

    /// The text a person reads for this option (without its prefix): its
    /// [`label`](Self::label) if it has one, else the value's display, code or text.
    pub fn display_text(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        match &self.value {
            Value::Coding(c) => c
                .display
                .clone()
                .or_else(|| c.code.clone())
                .unwrap_or_default(),
            Value::String(s)
            | Value::Uri(s)
            | Value::Date(s)
            | Value::DateTime(s)
            | Value::Time(s)
            | Value::Reference(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            Value::Decimal(d) => crate::float::format_f64(*d),
            Value::Boolean(b) => b.to_string(),
            // Options are codes, text, integers, dates, times or references (R4).
            Value::Quantity(_) | Value::Attachment(_) => String::new(),
        }
    }
}

/// An item's texts in one language other than the form's own. What is missing
/// (`None`, or an option past the end of `options`) stays in the form's language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemText {
    /// The question or heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The `entryFormat` placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_format: Option<String>,
    /// The options' texts by position: `options[i]` is [`Item::options`]`[i]`'s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Option<String>>,
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
    /// A `maxValue` computed when the answers are checked: the `cqf-expression`
    /// on the extension's value (SDC's dynamic limit, e.g. `today()` for a date
    /// that cannot be in the future). Checked as `maxValue` is, besides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<String>,
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
            translations: Map::new(),
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

    /// The languages the form has translations for, sorted, as the Questionnaire
    /// writes their tags. The form's own language is not among them.
    pub fn languages(&self) -> Vec<String> {
        let mut languages: Vec<&str> = self.title_translations.keys().map(String::as_str).collect();
        for item in self.all_items() {
            languages.extend(item.translations.keys().map(String::as_str));
        }
        languages.sort_unstable();
        languages.dedup();
        languages.into_iter().map(str::to_owned).collect()
    }

    /// The form as read in `lang` (a BCP 47 tag such as `es` or `es-MX`): every text
    /// with a translation for that language is replaced by it, and the rest keeps
    /// the form's own text. A translation for the exact tag wins, then one for its
    /// language alone (`es` for `es-MX`), then one for another region of the same
    /// language (`es-MX` for `es`); tags compare without regard to case.
    ///
    /// Only what a person reads changes: values, codes and linkIds stay, and an
    /// option's translation goes to its [`AnswerOption::label`], never into its
    /// value, so answers, conditions and expressions mean what they meant. The
    /// result holds no translations (it is the form in one language).
    pub fn localized(&self, lang: &str) -> Form {
        let mut form = self.clone();
        if let Some(title) = preferred(&form.title_translations, lang).into_iter().next() {
            form.title = title.clone();
        }
        form.title_translations.clear();
        localize_items(&mut form.items, lang);
        form
    }
}

/// Replaces the texts of `items` (and their children) by their `lang` translations.
fn localize_items(items: &mut [Item], lang: &str) {
    for item in items {
        let translations = std::mem::take(&mut item.translations);
        let texts = preferred(&translations, lang);
        // Field by field: `es` may translate the text where `es-MX` has only help.
        let first =
            |field: fn(&ItemText) -> Option<&String>| texts.iter().find_map(|t| field(t)).cloned();
        if let Some(text) = first(|t| t.text.as_ref()) {
            item.text = text;
        }
        if let Some(prefix) = first(|t| t.prefix.as_ref()) {
            item.prefix = Some(prefix);
        }
        if let Some(help) = first(|t| t.help.as_ref()) {
            item.help = Some(help);
        }
        if let Some(entry_format) = first(|t| t.entry_format.as_ref()) {
            item.entry_format = Some(entry_format);
        }
        for (index, option) in item.options.iter_mut().enumerate() {
            let label = texts
                .iter()
                .find_map(|t| t.options.get(index).and_then(Option::as_ref));
            if let Some(label) = label {
                option.label = Some(label.clone());
            }
        }
        localize_items(&mut item.items, lang);
    }
}

/// The entries of `translations` that suit `lang`, best first: the exact tag, then
/// its primary language subtag alone, then other tags with that primary subtag.
fn preferred<'a, T>(translations: &'a Map<T>, lang: &str) -> Vec<&'a T> {
    let lang = lang.trim();
    let primary = primary_subtag(lang);
    if primary.is_empty() || translations.is_empty() {
        return Vec::new();
    }
    let rank = |tag: &str| {
        if same_tag(tag, lang) {
            Some(0)
        } else if same_tag(tag, primary) {
            Some(1)
        } else if same_tag(primary_subtag(tag), primary) {
            Some(2)
        } else {
            None
        }
    };
    let mut ranked: Vec<(u8, &T)> = translations
        .iter()
        .filter_map(|(tag, value)| Some((rank(tag)?, value)))
        .collect();
    // Stable: within a rank, tags stay in the map's (sorted) order.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, value)| value).collect()
}

/// Language tags compare without regard to case, and `es_MX` (as some systems
/// write it) is `es-MX`.
fn same_tag(a: &str, b: &str) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// `es` for `es-MX` (and for `es_MX`).
fn primary_subtag(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or("")
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

    /// A PHQ-2-like form: the title, a group and two coded questions with help, in
    /// English with `es` texts, and one `es-MX` text.
    fn translated_form() -> super::Form {
        use super::{AnswerOption, Coding, Form, Item, ItemKind, ItemText, Value};
        let es = |text: &str| ItemText {
            text: Some(text.into()),
            ..ItemText::default()
        };
        let option = |code: &str, display: &str| {
            AnswerOption::new(Value::Coding(Coding {
                system: Some("http://loinc.org".into()),
                code: Some(code.into()),
                display: Some(display.into()),
            }))
        };
        let mut interest = Item::new("interest", ItemKind::Choice);
        interest.text = "Little interest or pleasure in doing things".into();
        interest.prefix = Some("1.".into());
        interest.help = Some("Over the last two weeks".into());
        interest.options = vec![
            option("LA6568-5", "Not at all"),
            option("LA6569-3", "Several days"),
        ];
        interest.translations.insert(
            "es".into(),
            ItemText {
                text: Some("Poco interés o placer en hacer cosas".into()),
                prefix: Some("1)".into()),
                help: Some("Durante las últimas dos semanas".into()),
                options: vec![Some("Para nada".into()), Some("Varios días".into())],
                ..ItemText::default()
            },
        );
        interest.translations.insert(
            "es-MX".into(),
            es("Poco interés o gusto por hacer las cosas"),
        );
        let mut mood = Item::new("mood", ItemKind::Choice);
        mood.text = "Feeling down, depressed, or hopeless".into();
        mood.options = vec![
            AnswerOption::new(Value::String("Not at all".into())),
            AnswerOption::new(Value::String("Nearly every day".into())),
        ];
        // Only the second option is translated.
        mood.translations.insert(
            "es".into(),
            ItemText {
                options: vec![None, Some("Casi todos los días".into())],
                ..es("Se ha sentido decaído, deprimido o sin esperanzas")
            },
        );
        let mut group = Item::new("phq2", ItemKind::Group);
        group.text = "Over the last 2 weeks".into();
        group.items = vec![interest, mood];
        Form {
            id: "phq2".into(),
            url: None,
            version: None,
            title: "PHQ-2".into(),
            title_translations: [("es".to_owned(), "PHQ-2 (español)".to_owned())].into(),
            variables: vec![],
            items: vec![group],
        }
    }

    #[test]
    fn a_form_without_translations_writes_no_translation_keys() {
        let mut form = translated_form();
        form.title_translations.clear();
        fn strip(items: &mut [super::Item]) {
            for item in items {
                item.translations.clear();
                strip(&mut item.items);
            }
        }
        strip(&mut form.items);
        let json = serde_json::to_string(&form).unwrap();
        for key in ["translations", "title_translations", "label"] {
            assert!(!json.contains(&format!("\"{key}\"")), "{key} in {json}");
        }
        assert_eq!(form.localized("es"), form);
        assert!(form.languages().is_empty());
    }

    #[test]
    fn translated_forms_read_back_the_same() {
        let form = translated_form();
        let json = serde_json::to_value(&form).unwrap();
        assert_eq!(json["title_translations"]["es"], "PHQ-2 (español)");
        assert_eq!(
            json["items"][0]["items"][1]["translations"]["es"]["options"],
            serde_json::json!([null, "Casi todos los días"])
        );
        assert_eq!(serde_json::from_value::<super::Form>(json).unwrap(), form);
        let localized = form.localized("es");
        let back: super::Form =
            serde_json::from_value(serde_json::to_value(&localized).unwrap()).unwrap();
        assert_eq!(back, localized);
    }

    #[test]
    fn the_languages_are_those_of_any_translation() {
        assert_eq!(translated_form().languages(), ["es", "es-MX"]);
        assert!(translated_form().localized("es").languages().is_empty());
    }

    #[test]
    fn localized_replaces_texts_and_labels_options_without_changing_values() {
        let form = translated_form();
        let es = form.localized("es");
        assert_eq!(es.title, "PHQ-2 (español)");
        let [interest, mood] = &es.items[0].items[..] else {
            panic!("two questions")
        };
        assert_eq!(interest.text, "Poco interés o placer en hacer cosas");
        assert_eq!(interest.prefix.as_deref(), Some("1)"));
        assert_eq!(
            interest.help.as_deref(),
            Some("Durante las últimas dos semanas")
        );
        let labels: Vec<String> = interest
            .options
            .iter()
            .map(super::AnswerOption::display_text)
            .collect();
        assert_eq!(labels, ["Para nada", "Varios días"]);
        assert_eq!(
            mood.text,
            "Se ha sentido decaído, deprimido o sin esperanzas"
        );
        let labels: Vec<String> = mood
            .options
            .iter()
            .map(super::AnswerOption::display_text)
            .collect();
        assert_eq!(labels, ["Not at all", "Casi todos los días"]);
        // What is recorded, and the untranslated group heading, stay as they were.
        let original = form.all_items();
        for (before, after) in original.iter().zip(es.all_items()) {
            assert_eq!(after.link_id, before.link_id);
            let values = |i: &super::Item| {
                i.options
                    .iter()
                    .map(|o| o.value.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(values(after), values(before));
            assert!(after.translations.is_empty());
        }
        assert_eq!(es.items[0].text, "Over the last 2 weeks");
        assert!(es.title_translations.is_empty());
    }

    #[test]
    fn localized_prefers_the_exact_tag_then_the_language_then_a_region_else_the_original() {
        let form = translated_form();
        let interest_text = |lang: &str| form.localized(lang).items[0].items[0].text.clone();
        let interest_help = |lang: &str| form.localized(lang).items[0].items[0].help.clone();
        let cases = [
            ("es", "Poco interés o placer en hacer cosas"),
            ("ES", "Poco interés o placer en hacer cosas"),
            ("es-MX", "Poco interés o gusto por hacer las cosas"),
            ("es-mx", "Poco interés o gusto por hacer las cosas"),
            ("es_MX", "Poco interés o gusto por hacer las cosas"),
            // No `es-AR`: Spanish.
            ("es-AR", "Poco interés o placer en hacer cosas"),
            ("fr", "Little interest or pleasure in doing things"),
            ("fr-CA", "Little interest or pleasure in doing things"),
            ("", "Little interest or pleasure in doing things"),
            ("en", "Little interest or pleasure in doing things"),
        ];
        for (lang, text) in cases {
            assert_eq!(interest_text(lang), text, "{lang:?}");
        }
        // `es-MX` has no help of its own: its language's is used, field by field.
        assert_eq!(
            interest_help("es-MX").as_deref(),
            Some("Durante las últimas dos semanas")
        );
        assert_eq!(form.localized("es-MX").title, "PHQ-2 (español)");
        assert_eq!(form.localized("fr"), {
            let mut same = form.clone();
            same.title_translations.clear();
            fn strip(items: &mut [super::Item]) {
                for item in items {
                    item.translations.clear();
                    strip(&mut item.items);
                }
            }
            strip(&mut same.items);
            same
        });
        // Only regional translations: asking for the language takes one of them.
        let mut regional = form.clone();
        let interest = &mut regional.items[0].items[0];
        interest.translations.remove("es");
        assert_eq!(
            regional.localized("es").items[0].items[0].text,
            "Poco interés o gusto por hacer las cosas"
        );
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
