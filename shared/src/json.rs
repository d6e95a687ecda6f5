//! The browser's JSON: a small reader and writer for exactly the types that cross
//! between the app and the server (the compiled form, drafts, responses,
//! demographics, outcomes, health), in the same JSON serde gives them.
//!
//! Why not serde_json in the browser: its generic deserializer, instantiated for
//! every type, was the largest part of the app's WebAssembly after the views. The
//! server keeps serde (the derives stay on the types); the backend test
//! `browser_json` and the tests below check that both read and write the same JSON.
//!
//! Reading is lenient where serde is (a missing field with a default takes it) and
//! gives `None` for anything else it does not expect. Numbers keep their text until
//! a field asks for an `i64` or an `f64`, so no precision is lost on the way.

use crate::Demographics;
use crate::draft::Draft;
use crate::form::{
    AnswerOption, Attachment, Coding, CompiledForm, Constraints, Control, EnableBehavior,
    EnableWhen, Form, ImportWarning, Item, ItemExpressions, ItemKind, ItemText, Operator, Quantity,
    Value, Variable,
};
use crate::health::{Database, Health, Status};
use crate::kiosk::{KioskForm, KioskMe};
use crate::map::Map;
use crate::outcome::{OperationOutcome, OutcomeIssue, Severity};
use crate::response::{QuestionnaireResponse, ResponseAnswer, ResponseItem};

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, its members in order.
    Object(Vec<(String, Json)>),
}

/// Deepest nesting read (the compiled forms nest a few levels per item level).
const MAX_DEPTH: usize = 128;

impl Json {
    /// Parses `text`; `None` if it is not one JSON value.
    pub fn parse(text: &str) -> Option<Json> {
        let mut reader = Reader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = reader.value(0)?;
        reader.space();
        (reader.at == reader.bytes.len()).then_some(value)
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Option<Json> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end) == Some(word.as_bytes())).then(|| {
            self.at = end;
            value
        })
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.space();
        match *self.bytes.get(self.at)? {
            b'n' => self.word("null", Json::Null),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'"' => self.string().map(Json::String),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Json::Array(items))
            }
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.space();
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        members.push((key, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                Some(Json::Object(members))
            }
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        // Checked when a field reads it; here only that it is one.
        (!text.is_empty()).then(|| Json::Number(text.to_owned()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        let mut code = 0;
        for &digit in digits {
            code = code * 16 + (digit as char).to_digit(16)?;
        }
        Some(code)
    }

    fn string(&mut self) -> Option<String> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escape = *self.bytes.get(self.at)?;
                    self.at += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return None;
                                }
                                self.at += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                high
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buffer = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
                0..0x20 => return None,
                _ => out.push(byte),
            }
        }
    }
}

/// A type read from JSON.
pub trait FromJson: Sized {
    /// `None` if `json` is not one.
    fn from_json(json: &Json) -> Option<Self>;
}

/// Reads `text` as a `T`.
pub fn from_str<T: FromJson>(text: &str) -> Option<T> {
    T::from_json(&Json::parse(text)?)
}

/// Member `key` of `object`, which must be there.
fn req<T: FromJson>(object: &Json, key: &str) -> Option<T> {
    T::from_json(object.get(key)?)
}

/// Member `key` of `object`, or the default when absent or `null` (serde's
/// `#[serde(default)]`). `None` if it is there and not a `T`.
fn opt<T: FromJson + Default>(object: &Json, key: &str) -> Option<T> {
    match object.get(key) {
        None | Some(Json::Null) => Some(T::default()),
        Some(json) => T::from_json(json),
    }
}

impl FromJson for String {
    fn from_json(json: &Json) -> Option<Self> {
        json.as_str().map(str::to_owned)
    }
}

impl FromJson for bool {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromJson for f64 {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Number(n) => crate::float::parse_f64(n),
            _ => None,
        }
    }
}

impl FromJson for i64 {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

impl FromJson for u64 {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

impl FromJson for u32 {
    fn from_json(json: &Json) -> Option<Self> {
        u32::try_from(u64::from_json(json)?).ok()
    }
}

impl FromJson for usize {
    fn from_json(json: &Json) -> Option<Self> {
        usize::try_from(u64::from_json(json)?).ok()
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Null => Some(None),
            json => T::from_json(json).map(Some),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Array(items) => items.iter().map(T::from_json).collect(),
            _ => None,
        }
    }
}

impl<T: FromJson> FromJson for Map<T> {
    fn from_json(json: &Json) -> Option<Self> {
        match json {
            Json::Object(members) => members
                .iter()
                .map(|(k, v)| Some((k.clone(), T::from_json(v)?)))
                .collect(),
            _ => None,
        }
    }
}

/// A unit enum's variant from its name in `names` (same order as `variants`).
fn variant<T: Copy>(json: &Json, names: &[&str], variants: &[T]) -> Option<T> {
    let name = json.as_str()?;
    names.iter().position(|n| *n == name).map(|i| variants[i])
}

const KIND_NAMES: [&str; 16] = [
    "group",
    "display",
    "boolean",
    "decimal",
    "integer",
    "date",
    "date-time",
    "time",
    "string",
    "text",
    "url",
    "choice",
    "open-choice",
    "attachment",
    "reference",
    "quantity",
];

impl FromJson for ItemKind {
    fn from_json(json: &Json) -> Option<Self> {
        variant(json, &KIND_NAMES, &ItemKind::ALL)
    }
}

impl FromJson for Control {
    fn from_json(json: &Json) -> Option<Self> {
        variant(
            json,
            &[
                "drop-down",
                "radio-button",
                "check-box",
                "autocomplete",
                "slider",
                "page",
                "tab",
                "tab-container",
                "table",
            ],
            &[
                Control::DropDown,
                Control::RadioButton,
                Control::CheckBox,
                Control::Autocomplete,
                Control::Slider,
                Control::Page,
                Control::Tab,
                Control::TabContainer,
                Control::Table,
            ],
        )
    }
}

impl FromJson for Operator {
    fn from_json(json: &Json) -> Option<Self> {
        variant(
            json,
            &[
                "Exists",
                "Equal",
                "NotEqual",
                "Greater",
                "Less",
                "GreaterOrEqual",
                "LessOrEqual",
            ],
            &[
                Operator::Exists,
                Operator::Equal,
                Operator::NotEqual,
                Operator::Greater,
                Operator::Less,
                Operator::GreaterOrEqual,
                Operator::LessOrEqual,
            ],
        )
    }
}

impl FromJson for EnableBehavior {
    fn from_json(json: &Json) -> Option<Self> {
        variant(
            json,
            &["All", "Any"],
            &[EnableBehavior::All, EnableBehavior::Any],
        )
    }
}

impl FromJson for Severity {
    fn from_json(json: &Json) -> Option<Self> {
        variant(
            json,
            &["fatal", "error", "warning", "information"],
            &[
                Severity::Fatal,
                Severity::Error,
                Severity::Warning,
                Severity::Information,
            ],
        )
    }
}

impl FromJson for Status {
    fn from_json(json: &Json) -> Option<Self> {
        variant(
            json,
            &["ok", "unavailable"],
            &[Status::Ok, Status::Unavailable],
        )
    }
}

impl FromJson for Coding {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Coding {
            system: opt(json, "system")?,
            code: opt(json, "code")?,
            display: opt(json, "display")?,
        })
    }
}

impl FromJson for Quantity {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Quantity {
            value: opt(json, "value")?,
            unit: opt(json, "unit")?,
            system: opt(json, "system")?,
            code: opt(json, "code")?,
        })
    }
}

impl FromJson for Attachment {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Attachment {
            content_type: opt(json, "contentType")?,
            data: opt(json, "data")?,
            url: opt(json, "url")?,
            title: opt(json, "title")?,
            size: opt(json, "size")?,
        })
    }
}

impl FromJson for Value {
    /// serde's externally tagged form: `{"decimal": 1.5}`.
    fn from_json(json: &Json) -> Option<Self> {
        let Json::Object(members) = json else {
            return None;
        };
        let [(tag, v)] = members.as_slice() else {
            return None;
        };
        Some(match tag.as_str() {
            "boolean" => Value::Boolean(FromJson::from_json(v)?),
            "decimal" => Value::Decimal(FromJson::from_json(v)?),
            "integer" => Value::Integer(FromJson::from_json(v)?),
            "date" => Value::Date(FromJson::from_json(v)?),
            "dateTime" => Value::DateTime(FromJson::from_json(v)?),
            "time" => Value::Time(FromJson::from_json(v)?),
            "string" => Value::String(FromJson::from_json(v)?),
            "uri" => Value::Uri(FromJson::from_json(v)?),
            "coding" => Value::Coding(FromJson::from_json(v)?),
            "quantity" => Value::Quantity(FromJson::from_json(v)?),
            "reference" => Value::Reference(FromJson::from_json(v)?),
            "attachment" => Value::Attachment(FromJson::from_json(v)?),
            _ => return None,
        })
    }
}

impl FromJson for Constraints {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Constraints {
            max_length: opt(json, "max_length")?,
            min_length: opt(json, "min_length")?,
            regex: opt(json, "regex")?,
            min_value: opt(json, "min_value")?,
            max_value: opt(json, "max_value")?,
            max_size: opt(json, "max_size")?,
            mime_types: opt(json, "mime_types")?,
        })
    }
}

impl FromJson for AnswerOption {
    fn from_json(json: &Json) -> Option<Self> {
        Some(AnswerOption {
            value: req(json, "value")?,
            initial_selected: opt(json, "initial_selected")?,
            ordinal: opt(json, "ordinal")?,
            prefix: opt(json, "prefix")?,
            label: opt(json, "label")?,
        })
    }
}

impl FromJson for ItemText {
    fn from_json(json: &Json) -> Option<Self> {
        Some(ItemText {
            text: opt(json, "text")?,
            prefix: opt(json, "prefix")?,
            help: opt(json, "help")?,
            entry_format: opt(json, "entry_format")?,
            options: opt(json, "options")?,
        })
    }
}

impl FromJson for EnableWhen {
    fn from_json(json: &Json) -> Option<Self> {
        Some(EnableWhen {
            question: req(json, "question")?,
            operator: req(json, "operator")?,
            answer: req(json, "answer")?,
        })
    }
}

impl FromJson for ItemExpressions {
    fn from_json(json: &Json) -> Option<Self> {
        Some(ItemExpressions {
            calculated: opt(json, "calculated")?,
            enable_when: opt(json, "enable_when")?,
            initial: opt(json, "initial")?,
            max_value: opt(json, "max_value")?,
        })
    }
}

impl FromJson for Variable {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Variable {
            name: req(json, "name")?,
            expression: req(json, "expression")?,
        })
    }
}

impl FromJson for Item {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Item {
            link_id: req(json, "link_id")?,
            text: req(json, "text")?,
            prefix: opt(json, "prefix")?,
            kind: req(json, "kind")?,
            required: opt(json, "required")?,
            repeats: opt(json, "repeats")?,
            read_only: opt(json, "read_only")?,
            hidden: opt(json, "hidden")?,
            constraints: opt(json, "constraints")?,
            entry_format: opt(json, "entry_format")?,
            control: opt(json, "control")?,
            help: opt(json, "help")?,
            options: opt(json, "options")?,
            translations: opt(json, "translations")?,
            unresolved_value_set: opt(json, "unresolved_value_set")?,
            initial: opt(json, "initial")?,
            enable_when: opt(json, "enable_when")?,
            enable_behavior: opt(json, "enable_behavior")?,
            expressions: opt(json, "expressions")?,
            variables: opt(json, "variables")?,
            definition: opt(json, "definition")?,
            codes: opt(json, "codes")?,
            items: opt(json, "items")?,
        })
    }
}

impl FromJson for Form {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Form {
            id: req(json, "id")?,
            url: opt(json, "url")?,
            version: opt(json, "version")?,
            title: req(json, "title")?,
            title_translations: opt(json, "title_translations")?,
            variables: opt(json, "variables")?,
            items: req(json, "items")?,
        })
    }
}

impl FromJson for ImportWarning {
    fn from_json(json: &Json) -> Option<Self> {
        Some(ImportWarning {
            link_id: opt(json, "link_id")?,
            message: req(json, "message")?,
        })
    }
}

impl FromJson for CompiledForm {
    fn from_json(json: &Json) -> Option<Self> {
        Some(CompiledForm {
            form: req(json, "form")?,
            warnings: req(json, "warnings")?,
        })
    }
}

impl FromJson for OutcomeIssue {
    fn from_json(json: &Json) -> Option<Self> {
        Some(OutcomeIssue {
            severity: req(json, "severity")?,
            code: req(json, "code")?,
            diagnostics: opt(json, "diagnostics")?,
            expression: opt(json, "expression")?,
        })
    }
}

impl FromJson for OperationOutcome {
    fn from_json(json: &Json) -> Option<Self> {
        Some(OperationOutcome {
            resource_type: req(json, "resourceType")?,
            issue: opt(json, "issue")?,
        })
    }
}

impl FromJson for Database {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Database {
            status: req(json, "status")?,
            schema_version: opt(json, "schemaVersion")?,
        })
    }
}

impl FromJson for Health {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Health {
            status: req(json, "status")?,
            version: req(json, "version")?,
            database: req(json, "database")?,
        })
    }
}

impl FromJson for KioskForm {
    fn from_json(json: &Json) -> Option<Self> {
        Some(KioskForm {
            id: req(json, "id")?,
            title: req(json, "title")?,
        })
    }
}

impl FromJson for KioskMe {
    fn from_json(json: &Json) -> Option<Self> {
        Some(KioskMe {
            name: req(json, "name")?,
            idle_seconds: req(json, "idleSeconds")?,
            warn_seconds: req(json, "warnSeconds")?,
            forms: req(json, "forms")?,
        })
    }
}

impl FromJson for Demographics {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Demographics {
            family: opt(json, "family")?,
            given: opt(json, "given")?,
            birth_date: opt(json, "birthDate")?,
            gender: opt(json, "gender")?,
            phone: opt(json, "phone")?,
            email: opt(json, "email")?,
        })
    }
}

impl FromJson for Draft {
    fn from_json(json: &Json) -> Option<Self> {
        Some(Draft {
            answers: req(json, "answers")?,
            instances: req(json, "instances")?,
            today: None,
        })
    }
}

/// A type written as JSON.
pub trait ToJson {
    /// Appends the JSON of `self` to `out`.
    fn write_json(&self, out: &mut String);
}

/// The JSON of `value`.
pub fn to_string<T: ToJson + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write_json(&mut out);
    out
}

/// Writes an object's members, with commas between them.
struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        key.write_json(self.out);
        self.out.push(':');
    }

    fn field<T: ToJson + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        self.key(key);
        value.write_json(self.out);
        self
    }

    /// A field serde leaves out when `None` (`skip_serializing_if = "Option::is_none"`).
    fn some<T: ToJson>(&mut self, key: &str, value: &Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.field(key, value);
        }
        self
    }

    /// A field serde leaves out when empty.
    fn items<T: ToJson>(&mut self, key: &str, value: &[T]) -> &mut Self {
        if !value.is_empty() {
            self.field(key, value);
        }
        self
    }

    fn end(&mut self) {
        self.out.push('}');
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        out.push('"');
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\u00");
                    out.push(HEX[(c as usize) >> 4] as char);
                    out.push(HEX[(c as usize) & 15] as char);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        self.as_str().write_json(out);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl ToJson for i64 {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl ToJson for u64 {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl ToJson for usize {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl ToJson for f64 {
    /// The shortest text that reads back as the same number (as serde_json);
    /// `null` for what JSON cannot hold (as serde_json).
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            out.push_str(&crate::float::format_f64(*self));
        } else {
            out.push_str("null");
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
}

impl<T: ToJson> ToJson for Map<T> {
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        for (key, value) in self {
            object.field(key, value);
        }
        object.end();
    }
}

impl ToJson for Coding {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .some("system", &self.system)
            .some("code", &self.code)
            .some("display", &self.display)
            .end();
    }
}

impl ToJson for Quantity {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .some("value", &self.value)
            .some("unit", &self.unit)
            .some("system", &self.system)
            .some("code", &self.code)
            .end();
    }
}

impl ToJson for Attachment {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .some("contentType", &self.content_type)
            .some("data", &self.data)
            .some("url", &self.url)
            .some("title", &self.title)
            .some("size", &self.size)
            .end();
    }
}

impl ToJson for Value {
    /// serde's externally tagged form: `{"decimal": 1.5}`.
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        match self {
            Value::Boolean(v) => object.field("boolean", v),
            Value::Decimal(v) => object.field("decimal", v),
            Value::Integer(v) => object.field("integer", v),
            Value::Date(v) => object.field("date", v),
            Value::DateTime(v) => object.field("dateTime", v),
            Value::Time(v) => object.field("time", v),
            Value::String(v) => object.field("string", v),
            Value::Uri(v) => object.field("uri", v),
            Value::Coding(v) => object.field("coding", v),
            Value::Quantity(v) => object.field("quantity", v),
            Value::Reference(v) => object.field("reference", v),
            Value::Attachment(v) => object.field("attachment", v),
        };
        object.end();
    }
}

impl ToJson for Draft {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("answers", &self.answers)
            .field("instances", &self.instances)
            .end();
    }
}

impl ToJson for Demographics {
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        object
            .field("family", &self.family)
            .field("given", &self.given)
            .field("birthDate", &self.birth_date)
            .field("gender", &self.gender);
        if !self.phone.is_empty() {
            object.field("phone", &self.phone);
        }
        if !self.email.is_empty() {
            object.field("email", &self.email);
        }
        object.end();
    }
}

impl ToJson for ResponseAnswer {
    /// FHIR's `value[x]`: one member named after the value's type.
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        match &self.value {
            Value::Boolean(v) => object.field("valueBoolean", v),
            Value::Decimal(v) => object.field("valueDecimal", v),
            Value::Integer(v) => object.field("valueInteger", v),
            Value::Date(v) => object.field("valueDate", v),
            Value::DateTime(v) => object.field("valueDateTime", v),
            Value::Time(v) => object.field("valueTime", v),
            Value::String(v) => object.field("valueString", v),
            Value::Uri(v) => object.field("valueUri", v),
            Value::Coding(v) => object.field("valueCoding", v),
            Value::Quantity(v) => object.field("valueQuantity", v),
            Value::Reference(v) => {
                object.key("valueReference");
                Object::new(object.out).field("reference", v).end();
                &mut object
            }
            Value::Attachment(v) => object.field("valueAttachment", v),
        };
        object.items("item", &self.item).end();
    }
}

impl ToJson for ResponseItem {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("linkId", &self.link_id)
            .some("text", &self.text)
            .items("answer", &self.answer)
            .items("item", &self.item)
            .end();
    }
}

impl ToJson for QuestionnaireResponse {
    fn write_json(&self, out: &mut String) {
        Object::new(out)
            .field("resourceType", &self.resource_type)
            .some("id", &self.id)
            .some("questionnaire", &self.questionnaire)
            .field("status", &self.status)
            .some("authored", &self.authored)
            .items("item", &self.item)
            .end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `json` with serde_json's `Value` and ours, and checks both agree.
    fn same_as_serde(text: &str) -> Json {
        let ours = Json::parse(text).expect("parses");
        let theirs: serde_json::Value = serde_json::from_str(text).expect("serde parses");
        assert_eq!(to_serde(&ours), theirs, "{text}");
        ours
    }

    fn to_serde(json: &Json) -> serde_json::Value {
        match json {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => (*b).into(),
            Json::Number(n) => serde_json::from_str(n).expect("a number"),
            Json::String(s) => s.clone().into(),
            Json::Array(items) => items.iter().map(to_serde).collect(),
            Json::Object(members) => members
                .iter()
                .map(|(k, v)| (k.clone(), to_serde(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    #[test]
    fn json_reads_as_serde_json_does() {
        same_as_serde(
            r#" { "a" : [1, -2.5e3, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"], "b": {} , "c": [] } "#,
        );
        same_as_serde(r#""caf\u00e9 ☕""#);
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "\"\\x\"",
            "\"a",
            "tru",
            "[1] 2",
            "\"\\ud83d\"",
            "\"\u{1}\"",
        ] {
            assert_eq!(Json::parse(bad), None, "{bad}");
        }
        // Deep nesting is refused, not a stack overflow.
        assert_eq!(Json::parse(&"[".repeat(100_000)), None);
    }

    #[test]
    fn strings_and_numbers_write_as_serde_json_does() {
        for text in [
            "",
            "plain",
            "quote \" back \\ slash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}",
            "é ☕ 😀",
        ] {
            assert_eq!(to_string(text), serde_json::to_string(text).unwrap());
        }
        for number in [0.0, -1.5, 72.5, 1e21, 1.0e-7, 0.1 + 0.2, 123_456_789.0] {
            let written = to_string(&number);
            let read: f64 = serde_json::from_str(&written).unwrap();
            assert_eq!(read.to_bits(), number.to_bits(), "{written}");
        }
        assert_eq!(to_string(&f64::NAN), "null");
        assert_eq!(to_string(&i64::MIN), i64::MIN.to_string());
        assert_eq!(
            from_str::<i64>("9007199254740993"),
            Some(9_007_199_254_740_993)
        );
    }

    fn values() -> Vec<Value> {
        vec![
            Value::Boolean(true),
            Value::Decimal(72.5),
            Value::Integer(-3),
            Value::Date("1980-02".into()),
            Value::DateTime("2024-01-02T03:04:05+01:00".into()),
            Value::Time("10:30:00".into()),
            Value::String("a \"b\"\n".into()),
            Value::Uri("http://example.org".into()),
            Value::Coding(Coding {
                system: Some("http://loinc.org".into()),
                code: Some("LA6568-5".into()),
                display: None,
            }),
            Value::Quantity(Quantity {
                value: Some(1.8),
                unit: Some("m".into()),
                system: None,
                code: None,
            }),
            Value::Reference("Patient/1".into()),
            Value::Attachment(Attachment {
                content_type: Some("image/png".into()),
                data: Some("AAAA".into()),
                url: None,
                title: Some("a.png".into()),
                size: Some(3),
            }),
        ]
    }

    #[test]
    fn drafts_and_responses_are_written_and_read_as_serde_does() {
        let mut draft = Draft::default();
        draft.answers.insert("a".into(), values());
        draft
            .answers
            .insert("member[1].b".into(), vec![Value::Integer(2)]);
        draft.instances.insert("member".into(), 2);
        let ours = to_string(&draft);
        let theirs = serde_json::to_string(&draft).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ours).unwrap(),
            serde_json::from_str::<serde_json::Value>(&theirs).unwrap()
        );
        assert_eq!(from_str::<Draft>(&theirs), Some(draft));

        let answers = values()
            .into_iter()
            .map(|value| ResponseAnswer {
                value,
                item: vec![],
            })
            .collect();
        let response = QuestionnaireResponse::new(
            Some("Questionnaire/x".into()),
            "completed",
            vec![ResponseItem {
                link_id: "g".into(),
                text: Some("G".into()),
                answer: vec![],
                item: vec![ResponseItem {
                    link_id: "q".into(),
                    text: None,
                    answer: answers,
                    item: vec![],
                }],
            }],
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&to_string(&response)).unwrap(),
            serde_json::to_value(&response).unwrap()
        );
    }

    #[test]
    fn demographics_outcomes_and_health_read_as_serde_writes_them() {
        for demographics in [
            Demographics::default(),
            Demographics {
                family: "Doe".into(),
                given: vec!["Jane".into(), "Q".into()],
                birth_date: "1980-02-03".into(),
                gender: "female".into(),
                phone: "555".into(),
                email: "j@example.org".into(),
            },
        ] {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&to_string(&demographics)).unwrap(),
                serde_json::to_value(&demographics).unwrap()
            );
            let theirs = serde_json::to_string(&demographics).unwrap();
            assert_eq!(from_str::<Demographics>(&theirs), Some(demographics));
        }
        let outcome = OperationOutcome {
            resource_type: "OperationOutcome".into(),
            issue: vec![
                OutcomeIssue {
                    severity: Severity::Error,
                    code: "required".into(),
                    diagnostics: Some("Missing".into()),
                    expression: vec!["family".into()],
                },
                OutcomeIssue {
                    severity: Severity::Information,
                    code: "informational".into(),
                    diagnostics: None,
                    expression: vec![],
                },
            ],
        };
        let text = serde_json::to_string(&outcome).unwrap();
        assert_eq!(from_str::<OperationOutcome>(&text), Some(outcome));
        let health = Health {
            status: Status::Unavailable,
            version: "0.1.0".into(),
            database: Database {
                status: Status::Ok,
                schema_version: Some(3),
            },
        };
        let text = serde_json::to_string(&health).unwrap();
        assert_eq!(from_str::<Health>(&text), Some(health));
        let kiosk = KioskMe {
            name: "Front desk 1".into(),
            idle_seconds: 60,
            warn_seconds: 20,
            forms: vec![KioskForm {
                id: "registration".into(),
                title: "Your details".into(),
            }],
        };
        let text = serde_json::to_string(&kiosk).unwrap();
        assert_eq!(from_str::<KioskMe>(&text), Some(kiosk));
    }

    /// A form with every field of every item set (and one with none).
    fn every_field() -> Form {
        let mut item = Item::new("q", ItemKind::DateTime);
        item.text = "Q".into();
        item.prefix = Some("1.".into());
        item.required = true;
        item.repeats = true;
        item.read_only = true;
        item.hidden = true;
        item.constraints = Constraints {
            max_length: Some(10),
            min_length: Some(1),
            regex: Some("[a-z]+".into()),
            min_value: Some(Value::Integer(1)),
            max_value: Some(Value::Decimal(9.5)),
            max_size: Some(1_000_000),
            mime_types: vec!["image/png".into()],
        };
        item.entry_format = Some("YYYY".into());
        item.control = Some(Control::TabContainer);
        item.help = Some("help".into());
        item.options = values()
            .into_iter()
            .map(|value| AnswerOption {
                value,
                initial_selected: true,
                ordinal: Some(2.5),
                prefix: Some("a)".into()),
                label: Some("A".into()),
            })
            .collect();
        item.translations.insert(
            "es".into(),
            ItemText {
                text: Some("P".into()),
                prefix: Some("1.".into()),
                help: Some("ayuda".into()),
                entry_format: Some("AAAA".into()),
                options: vec![Some("uno".into()), None],
            },
        );
        item.unresolved_value_set = Some("http://example.org/vs".into());
        item.initial = values();
        item.enable_when = vec![EnableWhen {
            question: "other".into(),
            operator: Operator::GreaterOrEqual,
            answer: Value::Integer(3),
        }];
        item.enable_behavior = EnableBehavior::Any;
        item.expressions = ItemExpressions {
            calculated: Some("1 + 1".into()),
            enable_when: Some("true".into()),
            initial: Some("today()".into()),
            max_value: Some("today()".into()),
        };
        item.variables = vec![Variable {
            name: "v".into(),
            expression: "%resource".into(),
        }];
        item.definition = Some("Patient.name".into());
        item.codes = vec![Coding {
            system: None,
            code: Some("c".into()),
            display: Some("C".into()),
        }];
        let mut group = Item::new("g", ItemKind::Group);
        group.items = vec![item, Item::new("plain", ItemKind::OpenChoice)];
        let mut form = crate::test_forms::form(vec![group]);
        form.url = Some("http://example.org/Questionnaire/x".into());
        form.version = Some("2".into());
        form.title_translations.insert("es".into(), "T".into());
        form.variables = vec![Variable {
            name: "w".into(),
            expression: "1".into(),
        }];
        form
    }

    #[test]
    fn compiled_forms_read_as_serde_writes_them() {
        for kind in ItemKind::ALL {
            let text = serde_json::to_string(&kind).unwrap();
            assert_eq!(from_str::<ItemKind>(&text), Some(kind), "{text}");
        }
        for form in [every_field(), crate::test_forms::form(vec![])] {
            let compiled = CompiledForm {
                form,
                warnings: vec![
                    ImportWarning {
                        link_id: Some("a".into()),
                        message: "m".into(),
                    },
                    ImportWarning {
                        link_id: None,
                        message: "n".into(),
                    },
                ],
            };
            let text = serde_json::to_string(&compiled).unwrap();
            assert_eq!(from_str::<CompiledForm>(&text), Some(compiled));
        }
    }
}
