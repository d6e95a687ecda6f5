//! Compiling a parsed Questionnaire into the browser's [`shared::form::Form`]:
//! every item kept; what the form cannot use is an [`ImportWarning`], what makes
//! it unusable an error at its path.

use std::collections::{BTreeMap, HashSet};

use fhirbolt::model::r4::Resource;
use fhirbolt::model::r4::resources::{
    Questionnaire, QuestionnaireItem, QuestionnaireItemAnswerOptionValue, ValueSet,
    ValueSetExpansionContains,
};
use fhirbolt::model::r4::types::{Extension, ExtensionValue};
use shared::form::{
    AnswerOption, Coding, CompiledForm, Constraints, Control, EnableBehavior, EnableWhen, Form,
    ImportWarning, Item, ItemExpressions, ItemKind, Operator, Value, Variable,
};

use super::parse::Parsed;
use super::translations::{
    TextField, Translations, display_translations, is_help, item_texts, string_translations,
    translations,
};
use super::url;
use super::values::{
    answer_option_value, codes, coding, computed_value, decimal_value, enable_when_answer,
    expression_text, extension_value, initial_value, integer_value, string, text_value,
    unwrap_matches,
};
use crate::fhir::outcome::{Issue, IssueType};

/// Refuses a `regex` that would cost more than
/// [`shared::regex::Regex::STEP_BUDGET`] on the longest answer its item
/// accepts (its `maxLength`, else [`shared::answers::DEFAULT_MAX_LENGTH`]):
/// checking it would stall the server (issue 21: `[a-z]{0,2000}Q` without a
/// maxLength took 22 s on a 1 MB answer).
pub(crate) fn affordable_patterns(items: &[Item], errors: &mut Vec<Issue>) {
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
pub(crate) const FORM_EXTENSIONS: &[&str] = &[url::VARIABLE, url::LAUNCH_CONTEXT];

/// Extensions read on items (and their answer options).
pub(crate) const ITEM_EXTENSIONS: &[&str] = &[
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
pub(crate) fn is_extraction(url: &str) -> bool {
    url.strip_prefix("http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-")
        .is_some_and(|name| {
            name.starts_with("definitionExtract")
                || name.starts_with("templateExtract")
                || name == "itemExtractionContext"
                || name == "extractAllocateId"
        })
}

pub(crate) struct Compiler<'q> {
    pub(crate) questionnaire: &'q Questionnaire,
    pub(crate) errors: Vec<Issue>,
    /// Unsupported extension URL → the items that carry it.
    pub(crate) unsupported: BTreeMap<String, Vec<String>>,
    pub(crate) warnings: Vec<ImportWarning>,
}

impl Compiler<'_> {
    pub(crate) fn items(&mut self, items: &[QuestionnaireItem], parent_path: &str) -> Vec<Item> {
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| self.item(item, &format!("{parent_path}.item[{index}]")))
            .collect()
    }

    pub(crate) fn item(&mut self, item: &QuestionnaireItem, path: &str) -> Option<Item> {
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
    pub(crate) fn options(
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
    pub(crate) fn contained_value_set(
        &self,
        reference: &str,
    ) -> Option<Vec<(AnswerOption, Translations)>> {
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

    pub(crate) fn variables(&mut self, extensions: &[Extension]) -> Vec<Variable> {
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

    pub(crate) fn note_unsupported(
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
    pub(crate) fn check_expression(&mut self, link_id: Option<&str>, what: &str, text: &str) {
        if let Err(shared::fhirpath::ParseError(why)) = shared::fhirpath::check(text) {
            self.warnings.push(ImportWarning {
                link_id: link_id.map(str::to_owned),
                message: format!("{what} is not evaluated: {why}"),
            });
        }
    }

    pub(crate) fn warn(&mut self, link_id: &str, message: String) {
        self.warnings.push(ImportWarning {
            link_id: Some(link_id.to_owned()),
            message,
        });
    }

    /// Every linkId is unique, and every enableWhen names an existing question.
    pub(crate) fn check_references(&mut self, items: &[Item]) {
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
