//! FHIR R4 Questionnaire: parsed with fhirbolt (lax, as real files need) and
//! compiled into the browser's [`shared::form::Form`].
//!
//! Compiling never drops an item: every item of the Questionnaire is in the form.
//! What the form cannot use (an extension we do not support, a value set we cannot
//! expand) becomes an [`ImportWarning`]; what makes the form unusable (no linkId,
//! an unknown type, a condition on a question that does not exist) is an error that
//! names the path.

use std::collections::{BTreeMap, HashSet};

use fhirbolt::model::r4::Resource;
use fhirbolt::model::r4::resources::{
    Questionnaire, QuestionnaireItem, QuestionnaireItemAnswerOptionValue,
    QuestionnaireItemEnableWhenAnswer, QuestionnaireItemInitialValue, ValueSet,
    ValueSetComposeIncludeConceptDesignation, ValueSetExpansionContains,
};
use fhirbolt::model::r4::types::{Coding as FhirCoding, Extension, ExtensionValue};
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use shared::form::{
    AnswerOption, Coding, CompiledForm, Constraints, Control, EnableBehavior, EnableWhen, Form,
    ImportWarning, Item, ItemExpressions, ItemKind, ItemText, Operator, Quantity, Value, Variable,
};

use super::outcome::{Issue, IssueType};

/// Where the extensions we read are defined.
mod url {
    pub(super) const ITEM_CONTROL: &str =
        "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl";
    pub(super) const HIDDEN: &str = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden";
    pub(super) const ENTRY_FORMAT: &str = "http://hl7.org/fhir/StructureDefinition/entryFormat";
    pub(super) const REGEX: &str = "http://hl7.org/fhir/StructureDefinition/regex";
    pub(super) const MIN_LENGTH: &str = "http://hl7.org/fhir/StructureDefinition/minLength";
    pub(super) const MIN_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/minValue";
    pub(super) const MAX_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/maxValue";
    pub(super) const MAX_SIZE: &str = "http://hl7.org/fhir/StructureDefinition/maxSize";
    pub(super) const MIME_TYPE: &str = "http://hl7.org/fhir/StructureDefinition/mimeType";
    pub(super) const ORDINAL_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";
    pub(super) const ITEM_WEIGHT: &str = "http://hl7.org/fhir/StructureDefinition/itemWeight";
    pub(super) const OPTION_PREFIX: &str =
        "http://hl7.org/fhir/StructureDefinition/questionnaire-optionPrefix";
    pub(super) const VARIABLE: &str = "http://hl7.org/fhir/StructureDefinition/variable";
    pub(super) const CALCULATED: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression";
    pub(super) const ENABLE_WHEN_EXPRESSION: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression";
    pub(super) const INITIAL_EXPRESSION: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression";
    /// The pre-SDC name of the same extension, still found in real files.
    pub(super) const INITIAL_EXPRESSION_OLD: &str =
        "http://hl7.org/fhir/StructureDefinition/questionnaire-initialExpression";
    /// On a primitive value (a `maxValue`'s `_valueDate`): the expression that
    /// computes it (`today()`), as SDC writes dynamic limits.
    pub(super) const CQF_EXPRESSION: &str =
        "http://hl7.org/fhir/StructureDefinition/cqf-expression";
    /// SDC's `launchContext`: the resources `%name` expressions may read. The
    /// server binds `patient` when it prefills an invited patient's form
    /// (`GET /api/invitation/form`); elsewhere `%patient` is empty.
    pub(super) const LAUNCH_CONTEXT: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-launchContext";
    /// SDC's `itemPopulationContext` on a group: `$populate` fills one instance
    /// per resource of it (the browser has no use for it).
    pub(super) const ITEM_POPULATION_CONTEXT: &str =
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-itemPopulationContext";
    /// On a string element (`_text`, `_title`, `_display`…): the same text in
    /// another language, as the sub-extensions `lang` and `content`.
    pub(super) const TRANSLATION: &str = "http://hl7.org/fhir/StructureDefinition/translation";
    /// A value set designation's use that means "a display", as a translation is.
    pub(super) const DESIGNATION_USAGE: &str =
        "http://terminology.hl7.org/CodeSystem/designation-usage";
}

/// Parses a Questionnaire. Unknown elements are tolerated and empty arrays,
/// objects and nulls (invalid in FHIR, common in real files) are dropped first;
/// anything else wrong is an issue at the resource. Never panics, whatever the input.
pub fn parse(json: &str) -> Result<Parsed, Issue> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        Issue::error(
            IssueType::Structure,
            format!("Not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    parse_value(value)
}

/// [`parse`], for JSON already read.
pub fn parse_value(mut value: serde_json::Value) -> Result<Parsed, Issue> {
    if value
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        != Some("Questionnaire")
    {
        return Err(
            Issue::error(IssueType::Invalid, "The resource is not a Questionnaire")
                .at("resourceType"),
        );
    }
    drop_empty(&mut value);
    let mut repairs = Vec::new();
    repair_mistyped_values(&mut value, "Questionnaire", &mut repairs);
    let cleaned = value.to_string();
    let config = DeserializationConfig {
        mode: DeserializationMode::Lax,
    };
    // fhirbolt 0.4 panics on some shapes instead of failing (an empty array, for
    // one); a parser's panic must not take a request down with it.
    let parsed =
        std::panic::catch_unwind(|| fhirbolt::json::from_str::<Resource>(&cleaned, Some(config)));
    match parsed {
        Ok(Ok(Resource::Questionnaire(q))) => Ok(Parsed {
            questionnaire: *q,
            repairs,
        }),
        Ok(Ok(_)) => Err(
            Issue::error(IssueType::Invalid, "The resource is not a Questionnaire")
                .at("resourceType"),
        ),
        Ok(Err(e)) => Err(Issue::error(
            IssueType::Structure,
            format!("Not a valid FHIR R4 Questionnaire: {e}"),
        )),
        Err(_) => Err(Issue::error(
            IssueType::Structure,
            "Not a valid FHIR R4 Questionnaire: the FHIR parser gave up",
        )),
    }
}

/// A parsed Questionnaire and what had to be repaired to read it.
#[derive(Debug)]
pub struct Parsed {
    /// The resource.
    pub questionnaire: Questionnaire,
    /// Each value read as another type than the file said, with where and why.
    pub repairs: Vec<String>,
}

/// Real files carry values whose type suffix is wrong, like `"answerInteger":
/// "2022-09"` in a condition on a date question. Such a value is read as the type
/// its text has (date, time, dateTime or number) and the repair is reported, rather
/// than the whole form refused.
fn repair_mistyped_values(value: &mut serde_json::Value, path: &str, repairs: &mut Vec<String>) {
    use serde_json::Value as J;
    match value {
        J::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                repair_mistyped_values(item, &format!("{path}[{i}]"), repairs);
            }
        }
        J::Object(fields) => {
            let mistyped: Vec<(String, String)> = fields
                .iter()
                .filter_map(|(key, v)| {
                    let prefix = key
                        .strip_suffix("Integer")
                        .or_else(|| key.strip_suffix("Decimal"))?;
                    let text = v.as_str()?;
                    let retyped = if text.parse::<f64>().is_ok() {
                        key.clone()
                    } else {
                        format!("{prefix}{}", text_type(text)?)
                    };
                    Some((key.clone(), retyped))
                })
                .collect();
            for (key, retyped) in mistyped {
                let Some(J::String(text)) = fields.remove(&key) else {
                    continue;
                };
                let new_value = match text.parse::<serde_json::Number>() {
                    Ok(number) if retyped == key => J::Number(number),
                    _ => J::String(text.clone()),
                };
                repairs.push(format!("{path}.{key} {text:?} was read as {retyped}"));
                fields.insert(retyped, new_value);
            }
            for (key, v) in fields.iter_mut() {
                repair_mistyped_values(v, &format!("{path}.{key}"), repairs);
            }
        }
        _ => {}
    }
}

/// The FHIR type a text has the shape of, among date, dateTime and time.
fn text_type(text: &str) -> Option<&'static str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = text.split(['-', ':', 'T']).collect();
    if !parts
        .iter()
        .all(|p| digits(p.split(['.', '+', 'Z']).next().unwrap_or("")))
    {
        return None;
    }
    if text.contains('T') {
        Some("DateTime")
    } else if text.contains(':') {
        Some("Time")
    } else if text.contains('-') || text.len() == 4 {
        Some("Date")
    } else {
        None
    }
}

/// Removes nulls, `[]` and `{}` everywhere (FHIR JSON must not contain them).
fn drop_empty(value: &mut serde_json::Value) {
    use serde_json::Value as J;
    let is_empty = |v: &J| match v {
        J::Null => true,
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
        _ => false,
    };
    match value {
        J::Array(items) => {
            items.iter_mut().for_each(drop_empty);
            items.retain(|v| !is_empty(v));
        }
        J::Object(fields) => {
            fields.values_mut().for_each(drop_empty);
            fields.retain(|_, v| !is_empty(v));
        }
        _ => {}
    }
}

/// Refuses a `regex` that would cost more than
/// [`shared::regex::Regex::STEP_BUDGET`] on the longest answer its item
/// accepts (its `maxLength`, else [`shared::answers::DEFAULT_MAX_LENGTH`]):
/// checking it would stall the server (issue 21: `[a-z]{0,2000}Q` without a
/// maxLength took 22 s on a 1 MB answer).
fn affordable_patterns(items: &[Item], errors: &mut Vec<Issue>) {
    use shared::regex::Regex;
    for item in items {
        if let Some(pattern) = &item.constraints.regex
            && let Ok(re) = Regex::new(pattern)
        {
            let max = item
                .constraints
                .max_length
                .unwrap_or(shared::answers::DEFAULT_MAX_LENGTH);
            let cost = re.cost_per_char().max(1);
            if cost.saturating_mul(u64::from(max)) > Regex::STEP_BUDGET {
                errors.push(
                    Issue::error(
                        IssueType::TooCostly,
                        format!(
                            "Item {}: its regex is too costly to check answers of up to {max} characters; give it a maxLength of at most {} or a simpler pattern",
                            item.link_id,
                            Regex::STEP_BUDGET / cost
                        ),
                    )
                    .at(item.link_id.clone()),
                );
            }
        }
        affordable_patterns(&item.items, errors);
    }
}

/// Compiles `questionnaire`, stored as `id`, into the browser's form.
pub fn compile(parsed: &Parsed, id: &str) -> Result<CompiledForm, Vec<Issue>> {
    let questionnaire = &parsed.questionnaire;
    let mut compiler = Compiler {
        questionnaire,
        errors: Vec::new(),
        unsupported: BTreeMap::new(),
        warnings: Vec::new(),
    };
    let items = compiler.items(&questionnaire.item, "Questionnaire");
    let variables = compiler.variables(&questionnaire.extension);
    for variable in &variables {
        let what = format!("Variable %{}", variable.name);
        compiler.check_expression(None, &what, &variable.expression);
    }
    compiler.note_unsupported(None, &questionnaire.extension, FORM_EXTENSIONS);
    compiler.check_references(&items);
    affordable_patterns(&items, &mut compiler.errors);
    if !compiler.errors.is_empty() {
        return Err(compiler.errors);
    }
    let mut warnings = compiler.warnings;
    warnings.extend(parsed.repairs.iter().map(|repair| ImportWarning {
        link_id: None,
        message: repair.clone(),
    }));
    for (url, link_ids) in compiler.unsupported {
        let message = match link_ids.len() {
            0 => format!("Extension {url} is not supported; the form works without it"),
            n => format!(
                "Extension {url} is not supported on {n} item(s) ({}); they work without it",
                link_ids
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if n > 5 { ", …" } else { "" }
            ),
        };
        warnings.push(ImportWarning {
            link_id: None,
            message,
        });
    }
    // The title's translations translate the title, not the `name` shown without one.
    let (title, title_translations) = match string(questionnaire.title.as_ref()) {
        Some(title) => (
            title,
            string_translations(questionnaire.title.as_ref())
                .into_iter()
                .rev() // the first of two for one language wins
                .collect(),
        ),
        None => (
            string(questionnaire.name.as_ref()).unwrap_or_else(|| id.to_owned()),
            BTreeMap::new(),
        ),
    };
    let form = Form {
        id: id.to_owned(),
        url: questionnaire.url.as_ref().and_then(|u| u.value.clone()),
        version: string(questionnaire.version.as_ref()),
        title,
        title_translations: title_translations.into(),
        variables,
        items,
    };
    Ok(CompiledForm { form, warnings })
}

/// Extensions read at the form level.
const FORM_EXTENSIONS: &[&str] = &[url::VARIABLE, url::LAUNCH_CONTEXT];

/// Extensions read on items (and their answer options).
const ITEM_EXTENSIONS: &[&str] = &[
    url::ITEM_CONTROL,
    url::HIDDEN,
    url::ENTRY_FORMAT,
    url::REGEX,
    url::MIN_LENGTH,
    url::MIN_VALUE,
    url::MAX_VALUE,
    url::MAX_SIZE,
    url::MIME_TYPE,
    url::VARIABLE,
    url::CALCULATED,
    url::ENABLE_WHEN_EXPRESSION,
    url::INITIAL_EXPRESSION,
    url::INITIAL_EXPRESSION_OLD,
    url::ITEM_POPULATION_CONTEXT,
];

/// Whether `url` is one of SDC's extraction extensions: the form does not need
/// them, `$extract` and the intake pipeline read them from the Questionnaire, so
/// they are not "unsupported".
fn is_extraction(url: &str) -> bool {
    url.strip_prefix("http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-")
        .is_some_and(|name| {
            name.starts_with("definitionExtract")
                || name.starts_with("templateExtract")
                || name == "itemExtractionContext"
                || name == "extractAllocateId"
        })
}

struct Compiler<'q> {
    questionnaire: &'q Questionnaire,
    errors: Vec<Issue>,
    /// Unsupported extension URL → the items that carry it.
    unsupported: BTreeMap<String, Vec<String>>,
    warnings: Vec<ImportWarning>,
}

impl Compiler<'_> {
    fn items(&mut self, items: &[QuestionnaireItem], parent_path: &str) -> Vec<Item> {
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| self.item(item, &format!("{parent_path}.item[{index}]")))
            .collect()
    }

    fn item(&mut self, item: &QuestionnaireItem, path: &str) -> Option<Item> {
        let link_id = item.link_id.value.clone().filter(|l| !l.trim().is_empty());
        let Some(link_id) = link_id else {
            self.errors.push(
                Issue::error(IssueType::Required, "The item has no linkId")
                    .at(format!("{path}.linkId")),
            );
            return None;
        };
        let kind = match item.r#type.value.as_deref().and_then(ItemKind::from_code) {
            Some(kind) => kind,
            None => {
                let code = item.r#type.value.as_deref().unwrap_or("(none)");
                self.errors.push(
                    Issue::error(
                        IssueType::Value,
                        format!("Item {link_id}: unknown item type {code:?}"),
                    )
                    .at(format!("{path}.type")),
                );
                return None;
            }
        };
        // Children: a display child marked help or flyover becomes this item's help.
        let mut help = None;
        let mut help_translations = Translations::new();
        let mut items = Vec::with_capacity(item.item.len());
        for (index, child) in item.item.iter().enumerate() {
            if child.r#type.value.as_deref() == Some("display") && is_help(child) {
                help = string(child.text.as_ref());
                help_translations = string_translations(child.text.as_ref());
                continue;
            }
            if let Some(compiled) = self.item(child, &format!("{path}.item[{index}]")) {
                items.push(compiled);
            }
        }
        self.note_unsupported(Some(&link_id), &item.extension, ITEM_EXTENSIONS);

        let mut constraints = Constraints {
            max_length: item
                .max_length
                .as_ref()
                .and_then(|m| m.value)
                .and_then(|m| u32::try_from(m).ok()),
            ..Constraints::default()
        };
        let mut control = None;
        let mut hidden = false;
        let mut entry_format = None;
        let mut entry_format_translations = Translations::new();
        let mut expressions = ItemExpressions::default();
        for extension in &item.extension {
            let value = extension.value.as_ref();
            match extension.url.as_str() {
                url::ITEM_CONTROL => {
                    let code = codes(value).into_iter().next();
                    control = code.as_deref().and_then(Control::from_code);
                    if let (None, Some(code)) = (control, code)
                        && !matches!(code.as_str(), "help" | "flyover")
                    {
                        self.warn(&link_id, format!("Item control {code:?} is not supported; the default control is used"));
                    }
                }
                url::HIDDEN => {
                    hidden =
                        matches!(value, Some(ExtensionValue::Boolean(b)) if b.value == Some(true));
                }
                url::ENTRY_FORMAT => {
                    entry_format = text_value(value);
                    if let Some(ExtensionValue::String(s)) = value {
                        entry_format_translations = translations(&s.extension);
                    }
                }
                url::REGEX => constraints.regex = text_value(value).map(|r| unwrap_matches(&r)),
                url::MIN_LENGTH => {
                    constraints.min_length =
                        integer_value(value).and_then(|v| u32::try_from(v).ok());
                }
                url::MIN_VALUE => constraints.min_value = value.and_then(extension_value),
                url::MAX_VALUE => {
                    constraints.max_value = value.and_then(extension_value);
                    expressions.max_value = value.and_then(computed_value);
                }
                url::MAX_SIZE => {
                    constraints.max_size = match value {
                        Some(ExtensionValue::Decimal(d)) => {
                            d.value.as_deref().and_then(|v| v.parse::<f64>().ok())
                        }
                        Some(ExtensionValue::Integer(i)) => i.value.map(f64::from),
                        _ => None,
                    }
                    .map(|v| v as u64);
                }
                url::MIME_TYPE => constraints.mime_types.extend(text_value(value)),
                url::CALCULATED => expressions.calculated = expression_text(value),
                url::ENABLE_WHEN_EXPRESSION => expressions.enable_when = expression_text(value),
                url::INITIAL_EXPRESSION | url::INITIAL_EXPRESSION_OLD => {
                    expressions.initial = expression_text(value);
                }
                _ => {}
            }
        }
        // Every FHIRPath expression is parsed now, so what the browser's evaluator
        // cannot run is listed at import (it is then skipped: the item keeps its
        // enableWhen, nothing is calculated or filled in).
        let variables = self.variables(&item.extension);
        for (what, expression) in [
            ("calculatedExpression", &expressions.calculated),
            ("enableWhenExpression", &expressions.enable_when),
            ("initialExpression", &expressions.initial),
            ("maxValue's cqf-expression", &expressions.max_value),
        ] {
            if let Some(text) = expression {
                self.check_expression(Some(&link_id), what, text);
            }
        }
        for variable in &variables {
            self.check_expression(
                Some(&link_id),
                &format!("Variable %{}", variable.name),
                &variable.expression,
            );
        }

        let (options, option_translations, unresolved_value_set) = self.options(item, &link_id);
        let translations = item_texts(
            [
                (TextField::Text, string_translations(item.text.as_ref())),
                (TextField::Prefix, string_translations(item.prefix.as_ref())),
                (TextField::Help, help_translations),
                (TextField::EntryFormat, entry_format_translations),
            ],
            option_translations,
        );
        let enable_when = item
            .enable_when
            .iter()
            .enumerate()
            .filter_map(|(index, condition)| {
                let at = format!("{path}.enableWhen[{index}]");
                let operator = condition
                    .operator
                    .value
                    .as_deref()
                    .and_then(Operator::from_code);
                let answer = enable_when_answer(&condition.answer);
                let question = condition.question.value.clone();
                match (question, operator, answer) {
                    (Some(question), Some(operator), Some(answer)) => Some(EnableWhen {
                        question,
                        operator,
                        answer,
                    }),
                    _ => {
                        self.errors.push(
                            Issue::error(
                                IssueType::Invalid,
                                format!("Item {link_id}: an enableWhen condition is incomplete"),
                            )
                            .at(at),
                        );
                        None
                    }
                }
            })
            .collect();
        let enable_behavior = match item
            .enable_behavior
            .as_ref()
            .and_then(|b| b.value.as_deref())
        {
            Some("any") => EnableBehavior::Any,
            _ => EnableBehavior::All,
        };
        Some(Item {
            text: string(item.text.as_ref()).unwrap_or_default(),
            prefix: string(item.prefix.as_ref()),
            kind,
            required: item
                .required
                .as_ref()
                .and_then(|b| b.value)
                .unwrap_or(false),
            repeats: item.repeats.as_ref().and_then(|b| b.value).unwrap_or(false),
            read_only: item
                .read_only
                .as_ref()
                .and_then(|b| b.value)
                .unwrap_or(false),
            hidden,
            constraints,
            entry_format,
            control,
            help,
            options,
            translations: translations.into(),
            unresolved_value_set,
            initial: item
                .initial
                .iter()
                .filter_map(|i| initial_value(&i.value))
                .collect(),
            enable_when,
            enable_behavior,
            expressions,
            variables,
            definition: item.definition.as_ref().and_then(|d| d.value.clone()),
            codes: item.code.iter().map(coding).collect(),
            items,
            link_id,
        })
    }

    /// The item's options, each option's translations, and the value set URL that
    /// could not be expanded.
    fn options(
        &mut self,
        item: &QuestionnaireItem,
        link_id: &str,
    ) -> (Vec<AnswerOption>, Vec<Translations>, Option<String>) {
        let mut options: Vec<(AnswerOption, Translations)> = item
            .answer_option
            .iter()
            .filter_map(|option| {
                let value = answer_option_value(&option.value)?;
                let translated = match &option.value {
                    QuestionnaireItemAnswerOptionValue::Coding(c) => {
                        string_translations(c.display.as_ref())
                    }
                    QuestionnaireItemAnswerOptionValue::String(s) => translations(&s.extension),
                    _ => Translations::new(),
                };
                let coding_extensions = match &option.value {
                    QuestionnaireItemAnswerOptionValue::Coding(c) => c.extension.as_slice(),
                    _ => &[],
                };
                let ordinal = option
                    .extension
                    .iter()
                    .chain(coding_extensions)
                    .find(|e| e.url == url::ORDINAL_VALUE || e.url == url::ITEM_WEIGHT)
                    .and_then(|e| decimal_value(e.value.as_ref()));
                let prefix = option
                    .extension
                    .iter()
                    .find(|e| e.url == url::OPTION_PREFIX)
                    .and_then(|e| text_value(e.value.as_ref()));
                let option = AnswerOption {
                    initial_selected: option
                        .initial_selected
                        .as_ref()
                        .and_then(|b| b.value)
                        .unwrap_or(false),
                    ordinal,
                    prefix,
                    ..AnswerOption::new(value)
                };
                Some((option, translated))
            })
            .collect();
        let unresolved = match item.answer_value_set.as_ref().and_then(|v| v.value.clone()) {
            None => None,
            Some(value_set) => match self.contained_value_set(&value_set) {
                Some(value_set_options) if !value_set_options.is_empty() => {
                    options.extend(value_set_options);
                    None
                }
                _ => {
                    self.warn(
                        link_id,
                        format!("answerValueSet {value_set} cannot be expanded here; the item takes free text instead"),
                    );
                    Some(value_set)
                }
            },
        };
        let (options, translations) = options.into_iter().unzip();
        (options, translations, unresolved)
    }

    /// The codes of a value set contained in the Questionnaire (`#id`), from its
    /// expansion or, failing that, the concepts its compose lists, each with the
    /// translations of its display (`translation` extensions, then designations).
    fn contained_value_set(&self, reference: &str) -> Option<Vec<(AnswerOption, Translations)>> {
        let id = reference.strip_prefix('#')?;
        let value_set: &ValueSet = self.questionnaire.contained.iter().find_map(|r| match r {
            Resource::ValueSet(vs)
                if vs.id.as_ref().and_then(|i| i.value.as_deref()) == Some(id) =>
            {
                Some(&**vs)
            }
            _ => None,
        })?;
        let mut codings = Vec::new();
        if let Some(expansion) = &value_set.expansion {
            fn walk<'a>(
                contains: &'a [ValueSetExpansionContains],
                out: &mut Vec<(Coding, &'a [Extension], Translations)>,
            ) {
                for c in contains {
                    if c.code.is_some() {
                        out.push((
                            Coding {
                                system: c.system.as_ref().and_then(|s| s.value.clone()),
                                code: c.code.as_ref().and_then(|s| s.value.clone()),
                                display: string(c.display.as_ref()),
                            },
                            c.extension.as_slice(),
                            display_translations(c.display.as_ref(), &c.designation),
                        ));
                    }
                    walk(&c.contains, out);
                }
            }
            walk(&expansion.contains, &mut codings);
        }
        if codings.is_empty()
            && let Some(compose) = &value_set.compose
        {
            for include in &compose.include {
                let system = include.system.as_ref().and_then(|s| s.value.clone());
                for concept in &include.concept {
                    codings.push((
                        Coding {
                            system: system.clone(),
                            code: concept.code.value.clone(),
                            display: string(concept.display.as_ref()),
                        },
                        concept.extension.as_slice(),
                        display_translations(concept.display.as_ref(), &concept.designation),
                    ));
                }
            }
        }
        Some(
            codings
                .into_iter()
                .map(|(coding, extensions, translations)| {
                    let option = AnswerOption {
                        ordinal: extensions
                            .iter()
                            .find(|e| e.url == url::ORDINAL_VALUE || e.url == url::ITEM_WEIGHT)
                            .and_then(|e| decimal_value(e.value.as_ref())),
                        ..AnswerOption::new(Value::Coding(coding))
                    };
                    (option, translations)
                })
                .collect(),
        )
    }

    fn variables(&mut self, extensions: &[Extension]) -> Vec<Variable> {
        extensions
            .iter()
            .filter(|e| e.url == url::VARIABLE)
            .filter_map(|e| match &e.value {
                // An `x-fhir-query` variable is a search `$populate` runs on the
                // server (and binds by name), not FHIRPath for the evaluator.
                Some(ExtensionValue::Expression(x))
                    if x.language.value.as_deref() == Some("application/x-fhir-query") =>
                {
                    None
                }
                Some(ExtensionValue::Expression(x)) => Some(Variable {
                    name: x
                        .name
                        .as_ref()
                        .and_then(|n| n.value.clone())
                        .unwrap_or_default(),
                    expression: string(x.expression.as_ref()).unwrap_or_default(),
                }),
                _ => None,
            })
            .collect()
    }

    fn note_unsupported(
        &mut self,
        link_id: Option<&str>,
        extensions: &[Extension],
        supported: &[&str],
    ) {
        for extension in extensions {
            let url = extension.url.as_str();
            if !supported.contains(&url) && !is_extraction(url) {
                let items = self.unsupported.entry(extension.url.clone()).or_default();
                if let Some(link_id) = link_id
                    && !items.iter().any(|l| l == link_id)
                {
                    items.push(link_id.to_owned());
                }
            }
        }
    }

    /// Warns when `text` is FHIRPath our evaluator does not run, saying why.
    fn check_expression(&mut self, link_id: Option<&str>, what: &str, text: &str) {
        if let Err(shared::fhirpath::ParseError(why)) = shared::fhirpath::check(text) {
            self.warnings.push(ImportWarning {
                link_id: link_id.map(str::to_owned),
                message: format!("{what} is not evaluated: {why}"),
            });
        }
    }

    fn warn(&mut self, link_id: &str, message: String) {
        self.warnings.push(ImportWarning {
            link_id: Some(link_id.to_owned()),
            message,
        });
    }

    /// Every linkId is unique, and every enableWhen names an existing question.
    fn check_references(&mut self, items: &[Item]) {
        fn walk<'a>(items: &'a [Item], out: &mut Vec<&'a Item>) {
            for item in items {
                out.push(item);
                walk(&item.items, out);
            }
        }
        let mut all = Vec::new();
        walk(items, &mut all);
        let mut seen = HashSet::new();
        for item in &all {
            if !seen.insert(item.link_id.as_str()) {
                self.errors.push(
                    Issue::error(
                        IssueType::Invalid,
                        format!("linkId {:?} is used by more than one item", item.link_id),
                    )
                    .at(item.link_id.clone()),
                );
            }
        }
        for item in &all {
            for condition in &item.enable_when {
                if !seen.contains(condition.question.as_str()) {
                    self.errors.push(
                        Issue::error(
                            IssueType::Invalid,
                            format!(
                                "Item {}: enableWhen refers to question {:?}, which is not in the form",
                                item.link_id, condition.question
                            ),
                        )
                        .at(item.link_id.clone()),
                    );
                }
            }
        }
    }
}

/// One string's texts in other languages: (language tag, text), as found.
type Translations = Vec<(String, String)>;

/// The `translation` extensions among `extensions` (those on a string element).
/// One without a language or a text is skipped: there is nothing to show.
fn translations(extensions: &[Extension]) -> Translations {
    extensions
        .iter()
        .filter(|e| e.url == url::TRANSLATION)
        .filter_map(|e| {
            let part = |name: &str| {
                e.extension
                    .iter()
                    .find(|p| p.url == name)
                    .and_then(|p| text_value(p.value.as_ref()))
                    .filter(|t| !t.trim().is_empty())
            };
            Some((part("lang")?.trim().to_owned(), part("content")?))
        })
        .collect()
}

/// The translations of a string element, if it is there.
fn string_translations(value: Option<&fhirbolt::model::r4::types::String>) -> Translations {
    value
        .map(|v| translations(&v.extension))
        .unwrap_or_default()
}

/// A value set concept's display in other languages: its `translation`
/// extensions, then its designations that have a language and are displays (no
/// `use`, or designation-usage `display`; a synonym is not a translation).
fn display_translations(
    display: Option<&fhirbolt::model::r4::types::String>,
    designations: &[ValueSetComposeIncludeConceptDesignation],
) -> Translations {
    let mut found = string_translations(display);
    found.extend(designations.iter().filter_map(|d| {
        let is_display = d.r#use.as_ref().is_none_or(|u| {
            u.system.as_ref().and_then(|s| s.value.as_deref()) == Some(url::DESIGNATION_USAGE)
                && u.code.as_ref().and_then(|c| c.value.as_deref()) == Some("display")
        });
        let language = d.language.as_ref()?.value.as_deref()?.trim();
        let text = string(Some(&d.value))?;
        (is_display && !language.is_empty()).then(|| (language.to_owned(), text))
    }));
    found
}

/// Which of an item's own texts a translation is of.
#[derive(Clone, Copy)]
enum TextField {
    Text,
    Prefix,
    Help,
    EntryFormat,
}

/// An item's translations by language, from each text's and each option's
/// (`options[i]` is option i's). Where one text has two for one language, the
/// first wins.
fn item_texts(
    fields: [(TextField, Translations); 4],
    options: Vec<Translations>,
) -> BTreeMap<String, ItemText> {
    let mut by_language: BTreeMap<String, ItemText> = BTreeMap::new();
    for (field, found) in fields {
        for (language, text) in found {
            let texts = by_language.entry(language).or_default();
            let slot = match field {
                TextField::Text => &mut texts.text,
                TextField::Prefix => &mut texts.prefix,
                TextField::Help => &mut texts.help,
                TextField::EntryFormat => &mut texts.entry_format,
            };
            slot.get_or_insert(text);
        }
    }
    for (index, found) in options.into_iter().enumerate() {
        for (language, text) in found {
            let texts = by_language.entry(language).or_default();
            if texts.options.len() <= index {
                texts.options.resize(index + 1, None);
            }
            texts.options[index].get_or_insert(text);
        }
    }
    by_language
}

fn is_help(item: &QuestionnaireItem) -> bool {
    item.extension
        .iter()
        .filter(|e| e.url == url::ITEM_CONTROL)
        .flat_map(|e| codes(e.value.as_ref()))
        .any(|code| code == "help" || code == "flyover")
}

fn codes(value: Option<&ExtensionValue>) -> Vec<String> {
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
fn unwrap_matches(regex: &str) -> String {
    let trimmed = regex.trim();
    trimmed
        .strip_prefix("matches(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::trim)
        .and_then(|r| r.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .map_or_else(|| trimmed.to_owned(), |r| r.replace("\\'", "'"))
}

fn string(value: Option<&fhirbolt::model::r4::types::String>) -> Option<String> {
    value
        .and_then(|v| v.value.clone())
        .filter(|s| !s.is_empty())
}

fn text_value(value: Option<&ExtensionValue>) -> Option<String> {
    match value? {
        ExtensionValue::String(s) => s.value.clone(),
        ExtensionValue::Code(c) => c.value.clone(),
        ExtensionValue::Markdown(m) => m.value.clone(),
        _ => None,
    }
}

fn integer_value(value: Option<&ExtensionValue>) -> Option<i32> {
    match value? {
        ExtensionValue::Integer(i) => i.value,
        ExtensionValue::PositiveInt(i) => i.value.and_then(|v| i32::try_from(v).ok()),
        ExtensionValue::UnsignedInt(i) => i.value.and_then(|v| i32::try_from(v).ok()),
        _ => None,
    }
}

fn decimal_value(value: Option<&ExtensionValue>) -> Option<f64> {
    match value? {
        ExtensionValue::Decimal(d) => d.value.as_deref().and_then(|v| v.parse().ok()),
        ExtensionValue::Integer(i) => i.value.map(f64::from),
        _ => None,
    }
}

fn expression_text(value: Option<&ExtensionValue>) -> Option<String> {
    match value? {
        ExtensionValue::Expression(x) => string(x.expression.as_ref()),
        _ => None,
    }
}

fn coding(c: &FhirCoding) -> Coding {
    Coding {
        system: c.system.as_ref().and_then(|s| s.value.clone()),
        code: c.code.as_ref().and_then(|s| s.value.clone()),
        display: string(c.display.as_ref()),
    }
}

fn decimal(value: Option<&str>) -> Option<f64> {
    value.and_then(|v| v.parse().ok())
}

fn quantity(q: &fhirbolt::model::r4::types::Quantity) -> Quantity {
    Quantity {
        value: decimal(q.value.as_ref().and_then(|v| v.value.as_deref())),
        unit: string(q.unit.as_ref()),
        system: q.system.as_ref().and_then(|s| s.value.clone()),
        code: q.code.as_ref().and_then(|s| s.value.clone()),
    }
}

fn reference(r: &fhirbolt::model::r4::types::Reference) -> String {
    string(r.reference.as_ref())
        .or_else(|| string(r.display.as_ref()))
        .unwrap_or_default()
}

fn extension_value(value: &ExtensionValue) -> Option<Value> {
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
fn computed_value(value: &ExtensionValue) -> Option<String> {
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

fn enable_when_answer(answer: &QuestionnaireItemEnableWhenAnswer) -> Option<Value> {
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

fn answer_option_value(value: &QuestionnaireItemAnswerOptionValue) -> Option<Value> {
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

fn initial_value(value: &QuestionnaireItemInitialValue) -> Option<Value> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_arrays_objects_and_nulls_are_dropped_before_parsing() {
        let mut value = serde_json::json!({"a": [], "b": {}, "c": null, "d": [{"e": []}, 1], "f": {"g": {"h": []}}, "i": 0});
        drop_empty(&mut value);
        assert_eq!(value, serde_json::json!({"d": [1], "i": 0}));
    }

    #[test]
    fn bad_input_is_an_issue_never_a_panic() {
        let cases = [
            ("{", "Not valid JSON"),
            ("[]", "not a Questionnaire"),
            (r#"{"resourceType": "Patient"}"#, "not a Questionnaire"),
        ];
        for (json, expected) in cases {
            let issue = parse(json).unwrap_err();
            assert!(issue.diagnostics.contains(expected), "{json}: {issue:?}");
        }
        // fhirbolt's lax mode reads a number where the item list belongs as one
        // empty item; compiling then refuses it.
        let lax =
            parse(r#"{"resourceType": "Questionnaire", "status": "active", "item": 7}"#).unwrap();
        assert!(compile(&lax, "t").is_err());
    }

    #[test]
    fn unusable_items_are_errors_that_name_the_path() {
        let cases = [
            (
                r#"[{"type": "string"}]"#,
                "Questionnaire.item[0].linkId",
                "has no linkId",
            ),
            (
                r#"[{"linkId": " ", "type": "string"}]"#,
                "Questionnaire.item[0].linkId",
                "has no linkId",
            ),
            (
                r#"[{"linkId": "a", "type": "question"}]"#,
                "Questionnaire.item[0].type",
                "unknown item type",
            ),
            (
                r#"[{"linkId": "a", "type": "group", "item": [{"linkId": "b", "type": "bool"}]}]"#,
                "Questionnaire.item[0].item[0].type",
                "unknown item type",
            ),
            (
                r#"[{"linkId": "a", "type": "string"}, {"linkId": "a", "type": "string"}]"#,
                "a",
                "more than one item",
            ),
            (
                r#"[{"linkId": "a", "type": "string", "enableWhen": [{"question": "zz", "operator": "exists", "answerBoolean": true}]}]"#,
                "a",
                "not in the form",
            ),
            (
                r#"[{"linkId": "a", "type": "string", "enableWhen": [{"question": "a", "operator": "~", "answerBoolean": true}]}]"#,
                "Questionnaire.item[0].enableWhen[0]",
                "incomplete",
            ),
        ];
        for (items, path, message) in cases {
            let json = format!(
                r#"{{"resourceType": "Questionnaire", "status": "active", "item": {items}}}"#
            );
            let errors = compile(&parse(&json).unwrap(), "t").unwrap_err();
            assert_eq!(errors.len(), 1, "{items}: {errors:?}");
            assert_eq!(errors[0].expression.as_deref(), Some(path), "{items}");
            assert!(
                errors[0].diagnostics.contains(message),
                "{items}: {errors:?}"
            );
        }
    }

    #[test]
    fn values_typed_wrongly_are_read_by_their_shape_and_reported() {
        let json = r#"{"resourceType": "Questionnaire", "status": "active", "item": [
            {"linkId": "d", "type": "date"},
            {"linkId": "q", "type": "string", "enableWhen": [{"question": "d", "operator": "=", "answerInteger": "2022-09"}]}]}"#;
        let compiled = compile(&parse(json).unwrap(), "t").unwrap();
        assert_eq!(
            compiled.form.items[1].enable_when[0].answer,
            Value::Date("2022-09".into())
        );
        let messages: Vec<&str> = compiled
            .warnings
            .iter()
            .map(|w| w.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "Questionnaire.item[1].enableWhen[0].answerInteger \"2022-09\" was read as answerDate"
            ]
        );
    }

    #[test]
    fn translations_without_a_language_or_text_are_skipped_and_the_first_of_two_wins() {
        let t = |lang: &str, content: &str| {
            format!(
                r#"{{"url": "{}", "extension": [{{"url": "lang", "valueCode": "{lang}"}}, {{"url": "content", "valueString": "{content}"}}]}}"#,
                url::TRANSLATION
            )
        };
        let no_lang = format!(
            r#"{{"url": "{}", "extension": [{{"url": "content", "valueString": "Hola"}}]}}"#,
            url::TRANSLATION
        );
        let json = format!(
            r#"{{"resourceType": "Questionnaire", "status": "active", "name": "n",
                "_title": {{"extension": [{}]}},
                "item": [{{"linkId": "q", "type": "string", "text": "Name",
                    "_text": {{"extension": [{no_lang}, {}, {}, {}, {}]}}}}]}}"#,
            t("es", "Título"),
            t("es", " "),
            t("es", "Nombre"),
            t("es", "Apellido"),
            t("de", "Name"),
        );
        let form = compile(&parse(&json).unwrap(), "t").unwrap().form;
        // A title from `name` has no translations of its own.
        assert_eq!(form.title, "n");
        assert!(form.title_translations.is_empty());
        let texts = &form.items[0].translations;
        assert_eq!(texts.keys().collect::<Vec<_>>(), ["de", "es"]);
        assert_eq!(texts["es"].text.as_deref(), Some("Nombre"));
    }

    #[test]
    fn value_set_designations_in_a_language_translate_displays_and_synonyms_do_not() {
        let json = format!(
            r##"{{"resourceType": "Questionnaire", "status": "active",
                "contained": [{{"resourceType": "ValueSet", "id": "yn", "status": "active",
                    "compose": {{"include": [{{"system": "http://example.org/yn", "concept": [
                        {{"code": "y", "display": "Yes",
                          "designation": [
                            {{"language": "es", "use": {{"system": "http://snomed.info/sct", "code": "900000000000013009"}}, "value": "Afirmativo"}},
                            {{"language": "es", "value": "Sí"}},
                            {{"value": "Yep"}}]}},
                        {{"code": "n", "display": "No",
                          "_display": {{"extension": [{{"url": "{}", "extension": [
                            {{"url": "lang", "valueCode": "es"}}, {{"url": "content", "valueString": "No (es)"}}]}}]}},
                          "designation": [
                            {{"language": "es", "use": {{"system": "{}", "code": "display"}}, "value": "Nop"}},
                            {{"language": "fr", "value": "Non"}}]}}]}}]}}}}],
                "item": [{{"linkId": "q", "type": "choice", "text": "OK?", "answerValueSet": "#yn"}}]}}"##,
            url::TRANSLATION,
            url::DESIGNATION_USAGE,
        );
        let form = compile(&parse(&json).unwrap(), "t").unwrap().form;
        let texts = &form.items[0].translations;
        assert_eq!(
            texts["es"].options,
            [Some("Sí".to_owned()), Some("No (es)".to_owned())]
        );
        assert_eq!(texts["fr"].options, [None, Some("Non".to_owned())]);
        assert_eq!(texts["fr"].text, None);
    }

    #[test]
    fn fhirpath_style_regexes_are_unwrapped() {
        let cases = [
            ("matches('^[0-9]{4}$')", "^[0-9]{4}$"),
            ("^[0-9]{4}$", "^[0-9]{4}$"),
            (" matches( '[A-Z]\\'s' ) ", "[A-Z]'s"),
        ];
        for (raw, pattern) in cases {
            assert_eq!(unwrap_matches(raw), pattern, "{raw}");
        }
    }
}

/// The fixture loader the integration tests use too (see its module comment).
#[cfg(test)]
#[path = "../../tests/common/fixture_files.rs"]
mod fixture_files;

#[cfg(test)]
mod fixture_tests {
    use super::fixture_files::questionnaire_fixtures as fixtures;
    use super::*;

    /// Counts (items, required items, help displays) in the raw JSON.
    fn raw_counts(items: &serde_json::Value, nested: bool) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for item in items.as_array().into_iter().flatten() {
            let help = nested
                && item["type"] == "display"
                && item["extension"].as_array().into_iter().flatten().any(|e| {
                    e["url"] == url::ITEM_CONTROL
                        && e["valueCodeableConcept"]["coding"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|c| c["code"] == "help" || c["code"] == "flyover")
                });
            if help {
                counts.2 += 1;
            } else {
                counts.0 += 1;
                counts.1 += usize::from(item["required"] == true);
            }
            let (i, r, h) = raw_counts(&item["item"], true);
            counts = (counts.0 + i, counts.1 + r, counts.2 + h);
        }
        counts
    }

    #[test]
    fn answer_value_sets_by_url_fall_back_to_free_text_and_contained_ones_expand() {
        let by_name: std::collections::HashMap<String, String> = fixtures().into_iter().collect();
        let compile_fixture =
            |name: &str| compile(&parse(&by_name[name]).unwrap(), name).unwrap().form;
        // Medplum's intake form binds answers to value sets by URL only.
        let medplum = compile_fixture("medplum__patient-intake-questionnaire");
        assert!(
            medplum
                .all_items()
                .iter()
                .any(|i| i.unresolved_value_set.is_some())
        );
        // GAD-7 binds its answers to a contained ValueSet, with scores.
        let gad7 = compile_fixture("researchkitonfhir__GAD-7");
        let scored = gad7
            .all_items()
            .into_iter()
            .find(|i| !i.options.is_empty())
            .unwrap();
        assert!(scored.unresolved_value_set.is_none());
        assert!(
            scored.options.iter().all(|o| o.ordinal.is_some()),
            "{:?}",
            scored.options
        );
    }

    fn compiled(name: &str) -> Form {
        let json = fixtures()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
            .1;
        compile(&parse(&json).unwrap(), name).unwrap().form
    }

    /// The draft path of the first instance of item `link_id`.
    fn path_of(form: &Form, link_id: &str) -> String {
        fn walk(items: &[Item], prefix: &str, link_id: &str) -> Option<String> {
            items.iter().find_map(|i| {
                if i.link_id == link_id {
                    Some(shared::answers::item_path(prefix, link_id))
                } else {
                    let inner = shared::answers::instance_prefix(prefix, &i.link_id, 0);
                    walk(&i.items, &inner, link_id)
                }
            })
        }
        walk(&form.items, "", link_id).unwrap_or_else(|| panic!("no item {link_id}"))
    }

    fn option(form: &Form, link_id: &str, code: &str) -> Value {
        let item = form
            .all_items()
            .into_iter()
            .find(|i| i.link_id == link_id)
            .unwrap();
        let found = item
            .options
            .iter()
            .find(|o| matches!(&o.value, Value::Coding(c) if c.code.as_deref() == Some(code)));
        found
            .unwrap_or_else(|| panic!("{link_id} has no option {code}"))
            .value
            .clone()
    }

    #[test]
    fn every_fixture_expression_runs_or_is_listed_at_import() {
        let mut unsupported = vec![];
        for (name, json) in fixtures() {
            let compiled = compile(&parse(&json).unwrap(), &name).unwrap();
            let listed: Vec<&ImportWarning> = compiled
                .warnings
                .iter()
                .filter(|w| w.message.contains(" is not evaluated: "))
                .collect();
            unsupported.extend(listed.iter().map(|w| {
                format!(
                    "{name} {}: {}",
                    w.link_id.as_deref().unwrap_or("(form)"),
                    w.message
                )
            }));
            // Whatever is not listed parses and passes the checks.
            let form = &compiled.form;
            let mut texts: Vec<&str> = form
                .variables
                .iter()
                .map(|v| v.expression.as_str())
                .collect();
            for item in form.all_items() {
                let x = &item.expressions;
                texts.extend(
                    [&x.calculated, &x.enable_when, &x.initial]
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
                texts.extend(item.variables.iter().map(|v| v.expression.as_str()));
            }
            let failing = texts
                .iter()
                .filter(|t| shared::fhirpath::check(t).is_err())
                .count();
            assert_eq!(failing, listed.len(), "{name}");
            // And the form can be filled in: the initial draft settles and validates.
            let draft = shared::draft::Draft::initial(form);
            let evaluation = draft.evaluate(form);
            let response = draft.response(form, "Questionnaire/t".into());
            let problems = shared::answers::validate(form, &response);
            assert!(
                problems
                    .iter()
                    .all(|p| p.problem == shared::answers::AnswerProblem::Required),
                "{name}: {problems:?} {evaluation:?}"
            );
        }
        assert_eq!(
            unsupported,
            [
                "lforms__questionnaire-calculatedExpression (form): Variable %colorCodings is not evaluated: \
                 %questionnaire.…contained is not available: the compiled form keeps items, options and ordinal values",
            ]
        );
    }

    #[test]
    fn phq9_total_is_the_sum_of_the_chosen_options_ordinal_values() {
        let form = compiled("lforms__phq9");
        let questions = [
            "/44250-9", "/44255-8", "/44259-0", "/44254-1", "/44251-7", "/44258-2", "/44252-5",
            "/44253-3", "/44260-8",
        ];
        let codes = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]; // 0, 1, 2, 3
        let mut draft = shared::draft::Draft::initial(&form);
        // Nothing answered: no total.
        assert_eq!(
            draft.evaluate(&form).calculated.get("/44261-6"),
            Some(&vec![])
        );
        let chosen = [3, 2, 1, 0, 3, 2, 1, 0, 1];
        for (question, score) in questions.iter().zip(chosen) {
            draft.set(question, vec![option(&form, question, codes[score])]);
        }
        let total = vec![Value::Decimal(13.0)];
        assert_eq!(
            draft.evaluate(&form).calculated.get("/44261-6"),
            Some(&total)
        );
        let response = draft.response(&form, "Questionnaire/phq9".into());
        let sent = response
            .item
            .iter()
            .find(|i| i.link_id == "/44261-6")
            .unwrap();
        assert_eq!(sent.answer[0].value, total[0]);
        assert_eq!(shared::answers::validate(&form, &response), vec![]);
        // One answer changed: the total follows.
        draft.set("/44250-9", vec![option(&form, "/44250-9", codes[0])]);
        assert_eq!(
            draft.evaluate(&form).calculated.get("/44261-6"),
            Some(&vec![Value::Decimal(10.0)])
        );
    }

    #[test]
    fn bmi_is_calculated_from_weight_and_height_in_inches_or_centimetres() {
        // lforms: weight in kg, height in inches (the variable converts to metres).
        let form = compiled("lforms__weightHeightQuestionnaire");
        let mut draft = shared::draft::Draft::initial(&form);
        draft.set("/29463-7", vec![Value::Decimal(70.0)]);
        assert_eq!(
            draft.evaluate(&form).calculated.get("/39156-5"),
            Some(&vec![])
        );
        draft.set("/8302-2", vec![Value::Decimal(69.0)]);
        // 70 / (69 × 0.0254)² = 22.79
        assert_eq!(
            draft.evaluate(&form).calculated.get("/39156-5"),
            Some(&vec![Value::Decimal(22.8)])
        );
        // smartforms 715: weight in kg, height in cm.
        let form = compiled("smartforms__715.R4");
        let mut draft = shared::draft::Draft::initial(&form);
        let weight = path_of(&form, "f5308669-d1f9-49a1-bedd-7420946e7288");
        let height = path_of(&form, "29644716-433e-45ec-a805-8043f35a85e1");
        let bmi = path_of(&form, "d9306be3-fedf-45ca-8b91-71e6f7f6c6f5");
        draft.set(&weight, vec![Value::Decimal(70.0)]);
        draft.set(&height, vec![Value::Decimal(175.0)]);
        // 70 / 1.75² = 22.86
        assert_eq!(
            draft.evaluate(&form).calculated.get(&bmi),
            Some(&vec![Value::Decimal(22.9)])
        );
    }

    #[test]
    fn enable_when_expressions_switch_items_on_and_off() {
        let form = compiled("lforms__enableWhenExpressionTest");
        let mut draft = shared::draft::Draft::initial(&form);
        assert!(draft.evaluate(&form).disabled.contains(&"q4".to_owned()));
        draft.set("n1", vec![Value::Decimal(2.0)]);
        draft.set("n3", vec![Value::Decimal(2.5)]);
        assert!(draft.evaluate(&form).disabled.contains(&"q4".to_owned()));
        draft.set("n2", vec![Value::Decimal(0.5)]);
        assert!(!draft.evaluate(&form).disabled.contains(&"q4".to_owned()));

        let form = compiled("smartforms__QBehaviorOtherControl__qEnableWhenExpressionSimple");
        let age_groups = [
            "patient-priorities-less-than-6",
            "patient-priorities-6-to-12",
            "patient-priorities-more-than-12",
            "brief-intervention-less-than-6",
            "brief-intervention-6-to-12",
            "brief-intervention-13-to-24",
            "brief-intervention-25-to-49",
            "brief-intervention-more-than-49",
        ];
        let enabled_at = |age: Option<i64>| {
            let mut draft = shared::draft::Draft::initial(&form);
            if let Some(age) = age {
                draft.set("container[0].patient-age", vec![Value::Integer(age)]);
            }
            let evaluation = draft.evaluate(&form);
            age_groups
                .iter()
                .filter(|l| !evaluation.disabled.contains(&format!("container[0].{l}")))
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(enabled_at(None), Vec::<&str>::new());
        assert_eq!(
            enabled_at(Some(3)),
            [
                "patient-priorities-less-than-6",
                "brief-intervention-less-than-6"
            ]
        );
        assert_eq!(
            enabled_at(Some(8)),
            ["patient-priorities-6-to-12", "brief-intervention-6-to-12"]
        );
        assert_eq!(
            enabled_at(Some(30)),
            [
                "patient-priorities-more-than-12",
                "brief-intervention-25-to-49"
            ]
        );
        assert_eq!(
            enabled_at(Some(50)),
            [
                "patient-priorities-more-than-12",
                "brief-intervention-more-than-49"
            ]
        );
    }

    #[test]
    fn calculated_expressions_give_strings_lists_and_repeats() {
        let form = compiled("lforms__questionnaire-calculatedExpression");
        let mut draft = shared::draft::Draft::initial(&form);
        draft.set("string-to-split", vec![Value::String("abc".into())]);
        draft.set(
            "repeating-group[0].non-repeating-q",
            vec![Value::String("xy".into())],
        );
        let calculated = draft.evaluate(&form).calculated;
        let s = |v: &str| Value::String(v.into());
        assert_eq!(calculated["/type-integer"], [Value::Integer(123)]);
        assert_eq!(calculated["/type-string"], [s("abc123")]);
        assert_eq!(calculated["repeating-string"], [s("a"), s("b"), s("c")]);
        assert_eq!(
            calculated["repeating-open-choice"],
            [s("a"), s("b"), s("c")]
        );
        // Calculated from another calculated item: settles in order.
        assert_eq!(
            calculated["repeating-open-choice-from-string"],
            [s("a"), s("b"), s("c")]
        );
        // A variable of each group instance.
        assert_eq!(
            calculated["repeating-group[0].repeating-q-in-repeating-group"],
            [s("x"), s("y")]
        );
    }

    #[test]
    fn every_fixture_compiles_and_keeps_every_item() {
        let fixtures = fixtures();
        assert_eq!(fixtures.len(), 26, "the fixture folder changed");
        for (name, json) in fixtures {
            let parsed = parse(&json).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let compiled = compile(&parsed, "test").unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
            let (items, required, help) = raw_counts(&raw["item"], false);
            let all = compiled.form.all_items();
            assert_eq!(all.len(), items, "{name}: items");
            assert_eq!(
                all.iter().filter(|i| i.required).count(),
                required,
                "{name}: required items"
            );
            assert_eq!(
                all.iter().filter(|i| i.help.is_some()).count(),
                help,
                "{name}: help texts"
            );
            // A value set that cannot be expanded is always listed, never a silent
            // empty choice list.
            for item in all.iter().filter(|i| i.unresolved_value_set.is_some()) {
                assert!(
                    item.options.is_empty()
                        || matches!(item.kind, ItemKind::OpenChoice | ItemKind::Choice)
                );
                assert!(
                    compiled
                        .warnings
                        .iter()
                        .any(|w| w.link_id.as_deref() == Some(item.link_id.as_str())),
                    "{name}: {} has no warning",
                    item.link_id
                );
            }
        }
    }
}
