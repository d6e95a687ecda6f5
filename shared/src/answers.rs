//! The rules a QuestionnaireResponse must meet for its form: one module, run by the
//! browser as the patient answers and by the server when the response arrives.
//!
//! Checked: every answered item exists where it stands in the form; required items
//! are answered; single items have one answer; each value has the item's type, is
//! one of its options (choice), fits its length, pattern and range limits; and no
//! item that `enableWhen` disables has an answer.
//!
//! `enableWhen` is evaluated per instance of a repeating group: a condition on a
//! question in the same group looks at that instance's answer only. An item with an
//! `enableWhenExpression` (SDC) is enabled when that expression is true, in place of
//! its `enableWhen`; see [`crate::fhirpath::sdc`].

use serde::{Deserialize, Serialize};
use validator::ValidateLength as _;

use crate::date::Date;
use crate::fhirpath::sdc::{self, Computed};
use crate::form::{EnableBehavior, EnableWhen, Form, Item, ItemKind, Operator, Value};
use crate::map::Map;
use crate::response::{QuestionnaireResponse, ResponseItem};

/// What is wrong with the answers to one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnswerProblem {
    /// No item with this linkId at this place in the form.
    UnknownItem,
    /// A required item has no answer.
    Required,
    /// More than one answer (or group instance) for an item that does not repeat.
    TooManyAnswers,
    /// A group or display item carries answers itself.
    NotAQuestion,
    /// The value's type is not the item's.
    WrongType,
    /// A choice that is not among the item's options.
    NotAnOption,
    /// A date, time or dateTime that is not one.
    NotADate,
    /// Longer than `maxLength` characters.
    TooLong(u32),
    /// Shorter than `minLength` characters.
    TooShort(u32),
    /// Does not match the item's `regex`.
    PatternMismatch,
    /// Checking it against the item's `regex` would cost more than
    /// [`crate::regex::Regex::STEP_BUDGET`] steps.
    TooCostly,
    /// Below `minValue`.
    BelowMinimum,
    /// Above `maxValue`.
    AboveMaximum,
    /// A date after today where the item's `maxValue` is `today()` (a birth
    /// date, say).
    InFuture,
    /// A file larger than `maxSize` bytes.
    FileTooLarge(u64),
    /// A file of a type the item does not accept.
    FileType,
    /// Answered, but `enableWhen` disables the item.
    NotEnabled,
    /// Not what the item's `calculatedExpression` gives for the other answers
    /// (a score sent wrong: the form calculates it, nobody types it).
    NotCalculated,
}

/// One problem, at one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerIssue {
    /// The item's linkId.
    pub link_id: String,
    /// Where, down to the instance of each repeating group: `member[1].condition`.
    pub path: String,
    /// What is wrong.
    pub problem: AnswerProblem,
}

/// What the rules say of a response: its problems, the items that `enableWhen`
/// switches off (by path; their children are off too), and what the enabled
/// items' `calculatedExpression`s give.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Every problem, in form order.
    pub issues: Vec<AnswerIssue>,
    /// Paths of the disabled items.
    pub disabled: Vec<String>,
    /// Enabled items with a `calculatedExpression`, by path: their values.
    pub calculated: Map<Vec<Value>>,
    /// Values sent for calculated items whose expression could not be evaluated
    /// (see [`sdc::Computed::uncomputed`]): kept as sent, never refused, and
    /// reported as a warning.
    pub unchecked: Vec<Unchecked>,
}

/// A value sent for a calculated item that could not be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unchecked {
    /// The item's linkId.
    pub link_id: String,
    /// Where, as in [`AnswerIssue::path`].
    pub path: String,
}

impl Evaluation {
    /// Whether the item at `path` is disabled, itself or by an enclosing item.
    pub fn is_disabled(&self, path: &str) -> bool {
        self.disabled.iter().any(|d| {
            path == d
                || path
                    .strip_prefix(d.as_str())
                    .is_some_and(|rest| rest.starts_with(['[', '.']))
        })
    }
}

/// The largest file accepted where the form sets no `maxSize`: a phone photo of
/// an insurance card fits, and its base64 fits the server's 4 MiB FHIR body limit.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 3 * 1024 * 1024;

/// Every problem with `response` as answers to `form`, in form order.
pub fn validate(form: &Form, response: &QuestionnaireResponse) -> Vec<AnswerIssue> {
    evaluate(form, response).issues
}

/// [`validate`], and which items are disabled: what a form on screen needs.
/// Expressions see no date (`today()` is empty); see [`evaluate_on`].
pub fn evaluate(form: &Form, response: &QuestionnaireResponse) -> Evaluation {
    evaluate_on(form, response, None)
}

/// [`evaluate`], with `today` as FHIRPath's `today()`.
pub fn evaluate_on(
    form: &Form,
    response: &QuestionnaireResponse,
    today: Option<Date>,
) -> Evaluation {
    evaluate_computed(form, response, &sdc::compute(form, response, today, false))
}

/// [`evaluate`] with the form's expressions already computed for `response`.
pub(crate) fn evaluate_computed(
    form: &Form,
    response: &QuestionnaireResponse,
    computed: &Computed,
) -> Evaluation {
    let mut checker = Checker::new(form, response, &computed.enabled, &computed.max_value);
    checker.calculated = Some(&computed.calculated);
    checker.uncomputed = &computed.uncomputed;
    let mut evaluation = Evaluation::default();
    checker.items(&form.items, &response.item, &[], "", &mut evaluation);
    evaluation.calculated = computed
        .calculated
        .iter()
        .filter(|(path, _)| !evaluation.is_disabled(path))
        .map(|(path, values)| (path.clone(), values.clone()))
        .collect();
    evaluation
}

/// The path of item `link_id` under `prefix` (see [`AnswerIssue::path`]).
pub fn item_path(prefix: &str, link_id: &str) -> String {
    // Not `format!`: paths are made for every item at every keystroke.
    [prefix, link_id].concat()
}

/// The prefix for the children of instance `index` of group `link_id`.
pub fn instance_prefix(prefix: &str, link_id: &str, index: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + link_id.len() + 4);
    out.push_str(prefix);
    out.push_str(link_id);
    out.push('[');
    push_index(&mut out, index);
    out.push_str("].");
    out
}

/// `index` in decimal, without `format!`'s machinery.
fn push_index(out: &mut String, index: usize) {
    if index >= 10 {
        push_index(out, index / 10);
    }
    out.push(char::from(b'0' + (index % 10) as u8));
}

/// Whether `item` is enabled, for the response so far, inside the given chain of
/// enclosing group instances (outermost first). An `enableWhenExpression` is
/// looked up at the item's top-level path (outside any repeating group).
pub fn is_enabled(
    form: &Form,
    response: &QuestionnaireResponse,
    item: &Item,
    scope: &[&ResponseItem],
) -> bool {
    let computed = sdc::compute(form, response, None, false);
    Checker::new(form, response, &computed.enabled, &computed.max_value).enabled(item, scope, "")
}

struct Checker<'a> {
    response: &'a QuestionnaireResponse,
    /// linkId → the linkIds of its enclosing items, outermost first.
    ancestors: Map<Vec<&'a str>>,
    /// Path → the value of the item's `enableWhenExpression`, where it has one we run.
    by_expression: &'a Map<bool>,
    /// Path → the item's computed `maxValue`, where it has one.
    max_values: &'a Map<Value>,
    /// Path → what the item's `calculatedExpression` gives, where it has one.
    calculated: Option<&'a Map<Vec<Value>>>,
    /// Paths whose `calculatedExpression` could not be evaluated.
    uncomputed: &'a [String],
}

impl<'a> Checker<'a> {
    fn new(
        form: &'a Form,
        response: &'a QuestionnaireResponse,
        by_expression: &'a Map<bool>,
        max_values: &'a Map<Value>,
    ) -> Self {
        fn walk<'a>(items: &'a [Item], path: &mut Vec<&'a str>, out: &mut Map<Vec<&'a str>>) {
            for item in items {
                out.insert(item.link_id.clone(), path.clone());
                path.push(&item.link_id);
                walk(&item.items, path, out);
                path.pop();
            }
        }
        let mut ancestors = Map::new();
        walk(&form.items, &mut Vec::new(), &mut ancestors);
        Self {
            response,
            ancestors,
            by_expression,
            max_values,
            calculated: None,
            uncomputed: &[],
        }
    }

    fn items(
        &self,
        defs: &[Item],
        given: &'a [ResponseItem],
        scope: &[&'a ResponseItem],
        prefix: &str,
        evaluation: &mut Evaluation,
    ) {
        let issue = |evaluation: &mut Evaluation, link_id: &str, problem| {
            evaluation.issues.push(AnswerIssue {
                link_id: link_id.to_owned(),
                path: item_path(prefix, link_id),
                problem,
            });
        };
        for item in given {
            if !defs.iter().any(|d| d.link_id == item.link_id) {
                issue(evaluation, &item.link_id, AnswerProblem::UnknownItem);
            }
        }
        for def in defs {
            let instances: Vec<&'a ResponseItem> =
                given.iter().filter(|g| g.link_id == def.link_id).collect();
            if !self.enabled(def, scope, prefix) {
                evaluation.disabled.push(item_path(prefix, &def.link_id));
                if instances.iter().any(|i| has_answers(i)) {
                    issue(evaluation, &def.link_id, AnswerProblem::NotEnabled);
                }
                continue;
            }
            match def.kind {
                ItemKind::Display => {
                    if instances.iter().any(|i| has_answers(i)) {
                        issue(evaluation, &def.link_id, AnswerProblem::NotAQuestion);
                    }
                }
                ItemKind::Group => {
                    if !def.repeats && instances.len() > 1 {
                        issue(evaluation, &def.link_id, AnswerProblem::TooManyAnswers);
                    }
                    if def.required && !instances.iter().any(|i| has_answers(i)) {
                        issue(evaluation, &def.link_id, AnswerProblem::Required);
                    }
                    for (index, instance) in instances.iter().enumerate() {
                        if !instance.answer.is_empty() {
                            issue(evaluation, &def.link_id, AnswerProblem::NotAQuestion);
                        }
                        let inner = [scope, &[*instance]].concat();
                        let prefix = instance_prefix(prefix, &def.link_id, index);
                        self.items(&def.items, &instance.item, &inner, &prefix, evaluation);
                    }
                }
                _ => {
                    let answers: Vec<_> = instances.iter().flat_map(|i| &i.answer).collect();
                    if def.required && answers.is_empty() {
                        issue(evaluation, &def.link_id, AnswerProblem::Required);
                    }
                    if (!def.repeats && answers.len() > 1) || instances.len() > 1 {
                        issue(evaluation, &def.link_id, AnswerProblem::TooManyAnswers);
                    }
                    // A calculated value that was sent must be the one the form
                    // gives; one left out is not a problem (a system client may
                    // send only what it asked).
                    if let Some(expected) = self
                        .calculated
                        .and_then(|c| c.get(&item_path(prefix, &def.link_id)))
                        && !answers.is_empty()
                        && !same_values(answers.iter().map(|a| &a.value), expected)
                    {
                        issue(evaluation, &def.link_id, AnswerProblem::NotCalculated);
                    }
                    let path = item_path(prefix, &def.link_id);
                    if !answers.is_empty() && self.uncomputed.contains(&path) {
                        evaluation.unchecked.push(Unchecked {
                            link_id: def.link_id.clone(),
                            path,
                        });
                    }
                    let limit = self.max_values.get(&item_path(prefix, &def.link_id));
                    for answer in &answers {
                        let problem = check_value(def, &answer.value).or_else(|| {
                            limit.and_then(|max| above_computed(def, &answer.value, max))
                        });
                        if let Some(problem) = problem {
                            issue(evaluation, &def.link_id, problem);
                        }
                    }
                    // Children of a question sit under each answer (or, loosely, under the item).
                    for (index, instance) in instances.iter().enumerate() {
                        let inner = [scope, &[*instance]].concat();
                        let prefix = instance_prefix(prefix, &def.link_id, index);
                        for answer in &instance.answer {
                            self.items(&def.items, &answer.item, &inner, &prefix, evaluation);
                        }
                        if !instance.item.is_empty() {
                            self.items(&def.items, &instance.item, &inner, &prefix, evaluation);
                        }
                    }
                }
            }
        }
    }

    /// Whether `item`, under `prefix` (see [`item_path`]), is enabled.
    fn enabled(&self, item: &Item, scope: &[&'a ResponseItem], prefix: &str) -> bool {
        if item.expressions.enable_when.is_some()
            && let Some(on) = self.by_expression.get(&item_path(prefix, &item.link_id))
        {
            return *on;
        }
        if item.enable_when.is_empty() {
            return true;
        }
        let mut results = item
            .enable_when
            .iter()
            .map(|condition| self.condition_holds(item, condition, scope));
        match item.enable_behavior {
            EnableBehavior::All => results.all(|r| r),
            EnableBehavior::Any => results.any(|r| r),
        }
    }

    fn condition_holds(
        &self,
        item: &Item,
        condition: &EnableWhen,
        scope: &[&'a ResponseItem],
    ) -> bool {
        let answers = self.answers_in_scope(item, &condition.question, scope);
        match condition.operator {
            Operator::Exists => {
                answers.is_empty() != matches!(condition.answer, Value::Boolean(true))
            }
            Operator::Equal => answers.iter().any(|a| same_value(a, &condition.answer)),
            Operator::NotEqual => {
                !answers.is_empty() && answers.iter().any(|a| !same_value(a, &condition.answer))
            }
            op => answers.iter().any(|a| {
                compare(a, &condition.answer).is_some_and(|ordering| match op {
                    Operator::Greater => ordering.is_gt(),
                    Operator::Less => ordering.is_lt(),
                    Operator::GreaterOrEqual => ordering.is_ge(),
                    _ => ordering.is_le(),
                })
            }),
        }
    }

    /// The answers to `question` that `item` sees: those inside the innermost group
    /// instance that encloses both, or the whole response if none does.
    fn answers_in_scope(
        &self,
        item: &Item,
        question: &str,
        scope: &[&'a ResponseItem],
    ) -> Vec<&'a Value> {
        let empty = Vec::new();
        let item_path = self.ancestors.get(item.link_id.as_str()).unwrap_or(&empty);
        let question_path = self.ancestors.get(question).unwrap_or(&empty);
        let common: Vec<&str> = item_path
            .iter()
            .zip(question_path)
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| *a)
            .collect();
        let container = scope
            .iter()
            .rev()
            .find(|instance| common.contains(&instance.link_id.as_str()));
        let mut out = Vec::new();
        match container {
            Some(instance) => collect_answers(std::slice::from_ref(*instance), question, &mut out),
            None => collect_answers(&self.response.item, question, &mut out),
        }
        out
    }
}

fn has_answers(item: &ResponseItem) -> bool {
    !item.answer.is_empty() || item.item.iter().any(has_answers)
}

fn collect_answers<'a>(items: &'a [ResponseItem], question: &str, out: &mut Vec<&'a Value>) {
    for item in items {
        if item.link_id == question {
            out.extend(item.answer.iter().map(|a| &a.value));
        }
        collect_answers(&item.item, question, out);
        for answer in &item.answer {
            collect_answers(&answer.item, question, out);
        }
    }
}

/// Equal in FHIR's sense: codes by system and code, numbers by value.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Coding(x), Value::Coding(y)) => x.same_code(y),
        _ => compare(a, b).is_some_and(std::cmp::Ordering::is_eq) || a == b,
    }
}

/// Orders two values of comparable types.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let number = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Decimal(d) => Some(*d),
        Value::Quantity(q) => q.value,
        _ => None,
    };
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y);
    }
    match (a, b) {
        (Value::Date(x), Value::Date(y))
        | (Value::DateTime(x), Value::DateTime(y))
        | (Value::Time(x), Value::Time(y))
        | (Value::String(x), Value::String(y))
        | (Value::Uri(x), Value::Uri(y)) => Some(x.cmp(y)),
        (Value::Boolean(x), Value::Boolean(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Whether the answers sent are the values calculated: in order, decimals
/// equal to a part in a billion (a score's text may round its last digit).
fn same_values<'v>(sent: impl ExactSizeIterator<Item = &'v Value>, calculated: &[Value]) -> bool {
    sent.len() == calculated.len()
        && sent.zip(calculated).all(|(a, b)| match (a, b) {
            (Value::Decimal(x), Value::Decimal(y)) => {
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
            }
            (Value::Decimal(x), Value::Integer(n)) | (Value::Integer(n), Value::Decimal(x)) => {
                #[allow(clippy::cast_precision_loss)]
                let n = *n as f64;
                (x - n).abs() <= 1e-9 * n.abs().max(1.0)
            }
            _ => a == b,
        })
}

/// The problem with `value` above the item's computed `maxValue`, if it is: a
/// date after `today()` is said to be in the future.
fn above_computed(item: &Item, value: &Value, max: &Value) -> Option<AnswerProblem> {
    if !compare(value, max).is_some_and(|o| o.is_gt()) {
        return None;
    }
    let today = item.expressions.max_value.as_deref().map(str::trim) == Some("today()");
    Some(
        if today && matches!(value, Value::Date(_) | Value::DateTime(_)) {
            AnswerProblem::InFuture
        } else {
            AnswerProblem::AboveMaximum
        },
    )
}

fn check_value(item: &Item, value: &Value) -> Option<AnswerProblem> {
    if !type_fits(item, value) {
        return Some(AnswerProblem::WrongType);
    }
    match value {
        Value::Date(d) if !is_fhir_date(d) => return Some(AnswerProblem::NotADate),
        Value::DateTime(d) if !is_fhir_date_time(d) => return Some(AnswerProblem::NotADate),
        Value::Time(t) if !is_fhir_time(t) => return Some(AnswerProblem::NotADate),
        _ => {}
    }
    // An open choice takes free text besides its options; a choice only its options.
    let must_be_option = !item.options.is_empty()
        && match item.kind {
            ItemKind::Choice => true,
            ItemKind::OpenChoice => !matches!(value, Value::String(_)),
            _ => false,
        };
    if must_be_option && !item.options.iter().any(|o| same_value(&o.value, value)) {
        return Some(AnswerProblem::NotAnOption);
    }
    let c = &item.constraints;
    if let Value::String(text) | Value::Uri(text) = value {
        // validator's length rule (in characters, not bytes), as for the
        // demographics' given names: one implementation of length checks.
        let fits = |min: Option<u32>, max: Option<u32>| {
            text.validate_length(min.map(u64::from), max.map(u64::from), None)
        };
        // A form that sets no maxLength still gets a bound (issue 21: a 1 MB
        // answer made a pattern cost 22 s).
        let max = c.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if !fits(None, Some(max)) {
            return Some(AnswerProblem::TooLong(max));
        }
        if let Some(min) = c.min_length.filter(|min| !fits(Some(*min), None)) {
            return Some(AnswerProblem::TooShort(min));
        }
        if let Some(pattern) = &c.regex {
            // A pattern that does not compile cannot be met; the import reports it.
            let matches = match crate::regex::Regex::new(pattern) {
                Ok(re) => re.is_match_within(text, crate::regex::Regex::STEP_BUDGET),
                Err(_) => Some(false),
            };
            match matches {
                Some(true) => {}
                Some(false) => return Some(AnswerProblem::PatternMismatch),
                None => return Some(AnswerProblem::TooCostly),
            }
        }
    }
    if c.min_value
        .as_ref()
        .is_some_and(|min| compare(value, min).is_some_and(|o| o.is_lt()))
    {
        return Some(AnswerProblem::BelowMinimum);
    }
    if c.max_value
        .as_ref()
        .is_some_and(|max| compare(value, max).is_some_and(|o| o.is_gt()))
    {
        return Some(AnswerProblem::AboveMaximum);
    }
    if let Value::Attachment(file) = value {
        let size = file
            .size
            .or_else(|| file.data.as_ref().map(|d| base64_decoded_len(d)));
        if let (Some(max), Some(size)) = (c.max_size, size)
            && size > max
        {
            return Some(AnswerProblem::FileTooLarge(max));
        }
        if !c.mime_types.is_empty()
            && !file
                .content_type
                .as_ref()
                .is_some_and(|t| c.mime_types.contains(t))
        {
            return Some(AnswerProblem::FileType);
        }
    }
    None
}

/// Whether the value's type is one the item takes.
fn type_fits(item: &Item, value: &Value) -> bool {
    use ItemKind as K;
    match (item.kind, value) {
        (K::Boolean, Value::Boolean(_))
        | (K::Decimal, Value::Decimal(_) | Value::Integer(_))
        | (K::Integer, Value::Integer(_))
        | (K::Date, Value::Date(_))
        | (K::DateTime, Value::DateTime(_))
        | (K::Time, Value::Time(_))
        | (K::String | K::Text, Value::String(_))
        | (K::Url, Value::Uri(_))
        | (K::Attachment, Value::Attachment(_))
        | (K::Reference, Value::Reference(_))
        | (K::Quantity, Value::Quantity(_)) => true,
        // A choice is a code, or a value of the type its options have; free text
        // where the choice is open or its value set could not be expanded here.
        (K::Choice | K::OpenChoice, Value::Coding(_)) => true,
        (K::OpenChoice, Value::String(_)) => true,
        (K::Choice, Value::String(_)) if item.unresolved_value_set.is_some() => true,
        (K::Choice | K::OpenChoice, value) => item
            .options
            .iter()
            .any(|o| std::mem::discriminant(&o.value) == std::mem::discriminant(value)),
        _ => false,
    }
}

/// The longest text answer (in characters) where the form sets no `maxLength`.
pub const DEFAULT_MAX_LENGTH: u32 = 10_000;

/// `YYYY`, `YYYY-MM` or a real `YYYY-MM-DD`.
fn is_fhir_date(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Byte offsets below are character offsets only in ASCII: `2020é0` is 7 bytes.
    if !text.is_ascii() {
        return false;
    }
    match text.len() {
        4 => digits(text),
        7 => {
            digits(&text[..4])
                && &text[4..5] == "-"
                && text[5..7]
                    .parse::<u8>()
                    .is_ok_and(|m| (1..=12).contains(&m))
        }
        10 => Date::parse(text).is_ok(),
        _ => false,
    }
}

/// A date, or a full date with a time and zone: `YYYY-MM-DDThh:mm:ss(.s)(Z|±hh:mm)`.
fn is_fhir_date_time(text: &str) -> bool {
    match text.split_once('T') {
        None => is_fhir_date(text),
        Some((date, time)) => {
            let zone_at = time.find(['Z', '+', '-']);
            let (clock, zone) = zone_at.map_or((time, ""), |at| time.split_at(at));
            let zone_ok =
                zone == "Z" || (zone.len() == 6 && is_fhir_time(&format!("{}:00", &zone[1..])));
            Date::parse(date).is_ok() && is_fhir_time(clock) && zone_ok
        }
    }
}

/// `hh:mm:ss` with optional fraction.
fn is_fhir_time(text: &str) -> bool {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let parts: Vec<&str> = clock.split(':').collect();
    let ranged = |s: &str, max: u8| s.len() == 2 && s.parse::<u8>().is_ok_and(|v| v <= max);
    parts.len() == 3
        && ranged(parts[0], 23)
        && ranged(parts[1], 59)
        && ranged(parts[2], 59)
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn base64_decoded_len(data: &str) -> u64 {
    let len = data
        .trim_end_matches('=')
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .count() as u64;
    len * 3 / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{AnswerOption, Coding, Constraints};
    use crate::test_forms::{answer, family_member_group, form, group};

    fn response(item: Vec<ResponseItem>) -> QuestionnaireResponse {
        QuestionnaireResponse::new(None, "completed", item)
    }

    fn problems(form: &Form, items: Vec<ResponseItem>) -> Vec<(String, AnswerProblem)> {
        validate(form, &response(items))
            .into_iter()
            .map(|i| (i.link_id, i.problem))
            .collect()
    }

    #[test]
    fn paths_name_each_instance_in_decimal() {
        assert_eq!(item_path("", "a"), "a");
        assert_eq!(item_path("g[0].", "a"), "g[0].a");
        for (index, text) in [(0, "0"), (7, "7"), (10, "10"), (99, "99"), (1203, "1203")] {
            assert_eq!(
                instance_prefix("g[1].", "member", index),
                format!("g[1].member[{text}].")
            );
        }
    }

    #[test]
    fn issues_and_disabled_items_carry_the_path_of_their_instance() {
        let form = form(vec![family_member_group(true)]);
        let given = response(vec![
            group(
                "member",
                vec![answer("affected", vec![Value::Boolean(false)])],
            ),
            group(
                "member",
                vec![answer("affected", vec![Value::Boolean(true)])],
            ),
        ]);
        let evaluation = evaluate(&form, &given);
        assert_eq!(evaluation.disabled, ["member[0].condition"]);
        let paths: Vec<&str> = evaluation.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["member[1].condition"]);
    }

    fn coding(code: &str) -> Value {
        Value::Coding(Coding {
            system: Some("http://loinc.org".into()),
            code: Some(code.into()),
            display: None,
        })
    }

    fn choice(link_id: &str, codes: &[&str]) -> Item {
        let mut item = Item::new(link_id, ItemKind::Choice);
        item.options = codes.iter().map(|c| AnswerOption::new(coding(c))).collect();
        item
    }

    #[test]
    fn each_value_rule_is_reported_on_its_item() {
        let mut name = Item::new("name", ItemKind::String);
        name.constraints = Constraints {
            max_length: Some(5),
            min_length: Some(2),
            ..Constraints::default()
        };
        let mut postcode = Item::new("postcode", ItemKind::String);
        postcode.constraints.regex = Some("^[0-9]{4}$".into());
        let mut age = Item::new("age", ItemKind::Integer);
        age.constraints.min_value = Some(Value::Integer(0));
        age.constraints.max_value = Some(Value::Integer(130));
        let form = form(vec![
            name,
            postcode,
            age,
            Item::new("weight", ItemKind::Decimal),
            Item::new("born", ItemKind::Date),
            Item::new("at", ItemKind::Time),
            choice("mood", &["LA6568-5", "LA6569-3"]),
            Item::new("smoker", ItemKind::Boolean),
        ]);
        let cases: Vec<(ResponseItem, Option<AnswerProblem>)> = vec![
            (answer("name", vec![Value::String("Jane".into())]), None),
            (
                answer("name", vec![Value::String("Janette".into())]),
                Some(AnswerProblem::TooLong(5)),
            ),
            (
                answer("name", vec![Value::String("J".into())]),
                Some(AnswerProblem::TooShort(2)),
            ),
            (
                answer("name", vec![Value::Integer(3)]),
                Some(AnswerProblem::WrongType),
            ),
            (answer("postcode", vec![Value::String("2000".into())]), None),
            (
                answer("postcode", vec![Value::String("200".into())]),
                Some(AnswerProblem::PatternMismatch),
            ),
            (
                answer("age", vec![Value::Integer(131)]),
                Some(AnswerProblem::AboveMaximum),
            ),
            (
                answer("age", vec![Value::Integer(-1)]),
                Some(AnswerProblem::BelowMinimum),
            ),
            (
                answer("age", vec![Value::Decimal(3.5)]),
                Some(AnswerProblem::WrongType),
            ),
            (answer("weight", vec![Value::Integer(70)]), None),
            (answer("born", vec![Value::Date("1980-02".into())]), None),
            (
                answer("born", vec![Value::Date("1981-02-29".into())]),
                Some(AnswerProblem::NotADate),
            ),
            (answer("at", vec![Value::Time("13:30:00".into())]), None),
            (
                answer("at", vec![Value::Time("25:00:00".into())]),
                Some(AnswerProblem::NotADate),
            ),
            (answer("mood", vec![coding("LA6569-3")]), None),
            (
                answer("mood", vec![coding("LA0000-0")]),
                Some(AnswerProblem::NotAnOption),
            ),
            (
                answer("mood", vec![Value::String("meh".into())]),
                Some(AnswerProblem::WrongType),
            ),
            (
                answer("smoker", vec![Value::Boolean(true), Value::Boolean(false)]),
                Some(AnswerProblem::TooManyAnswers),
            ),
            (
                answer("nosuch", vec![Value::Boolean(true)]),
                Some(AnswerProblem::UnknownItem),
            ),
        ];
        for (given, expected) in cases {
            let link_id = given.link_id.clone();
            let got = problems(&form, vec![given]);
            let expected: Vec<(String, AnswerProblem)> =
                expected.into_iter().map(|p| (link_id.clone(), p)).collect();
            assert_eq!(got, expected, "{link_id}");
        }
    }

    #[test]
    fn a_date_after_a_max_value_of_today_is_refused_as_in_the_future() {
        let mut born = Item::new("birth-date", ItemKind::Date);
        born.constraints.min_value = Some(Value::Date("1900-01-01".into()));
        born.expressions.max_value = Some("today()".into());
        let mut due = Item::new("due", ItemKind::Date);
        due.expressions.max_value = Some("@2026-12-30".into());
        let form = form(vec![born, due]);
        let today = Date::parse("2026-11-30").ok();
        let cases: Vec<(&str, &str, Option<Date>, Vec<AnswerProblem>)> = vec![
            ("birth-date", "1980-03-27", today, vec![]),
            ("birth-date", "2026-11-30", today, vec![]),
            ("birth-date", "2026-11", today, vec![]),
            (
                "birth-date",
                "2026-12-01",
                today,
                vec![AnswerProblem::InFuture],
            ),
            ("birth-date", "2027", today, vec![AnswerProblem::InFuture]),
            (
                "birth-date",
                "2099-01-01",
                today,
                vec![AnswerProblem::InFuture],
            ),
            (
                "birth-date",
                "1899-12-31",
                today,
                vec![AnswerProblem::BelowMinimum],
            ),
            // No date given (an expression's `today()` is empty): nothing to check.
            ("birth-date", "2099-01-01", None, vec![]),
            ("due", "2026-12-30", today, vec![]),
            (
                "due",
                "2026-12-31",
                today,
                vec![AnswerProblem::AboveMaximum],
            ),
        ];
        for (link_id, date, today, expected) in cases {
            let given = response(vec![answer(link_id, vec![Value::Date(date.into())])]);
            let got: Vec<AnswerProblem> = evaluate_on(&form, &given, today)
                .issues
                .into_iter()
                .inspect(|i| assert_eq!(i.link_id, link_id))
                .map(|i| i.problem)
                .collect();
            assert_eq!(got, expected, "{link_id} {date} {today:?}");
        }
    }

    #[test]
    fn a_calculated_value_sent_must_be_what_the_form_calculates() {
        let mut total = Item::new("total", ItemKind::Integer);
        total.expressions.calculated = Some(
            "%resource.repeat(item).where(linkId='a' or linkId='b').answer.value.sum()".into(),
        );
        let mut mean = Item::new("mean", ItemKind::Decimal);
        mean.expressions.calculated = Some(
            "%resource.repeat(item).where(linkId='a' or linkId='b').answer.value.sum() / 3".into(),
        );
        let form = form(vec![
            Item::new("a", ItemKind::Integer),
            Item::new("b", ItemKind::Integer),
            total,
            mean,
        ]);
        let scored = |extra: Vec<ResponseItem>| {
            let mut items = vec![
                answer("a", vec![Value::Integer(2)]),
                answer("b", vec![Value::Integer(3)]),
            ];
            items.extend(extra);
            problems(&form, items)
        };
        let wrong = |link: &str| vec![(link.to_owned(), AnswerProblem::NotCalculated)];
        type Problems = Vec<(String, AnswerProblem)>;
        let cases: Vec<(Vec<ResponseItem>, Problems)> = vec![
            (vec![answer("total", vec![Value::Integer(5)])], vec![]),
            (
                vec![answer("total", vec![Value::Integer(27)])],
                wrong("total"),
            ),
            (
                vec![answer("total", vec![Value::Integer(5), Value::Integer(5)])],
                vec![("total".to_owned(), AnswerProblem::TooManyAnswers)]
                    .into_iter()
                    .chain(wrong("total"))
                    .collect(),
            ),
            // Left out: not refused (a system client may send only what it asked).
            (vec![], vec![]),
            (
                vec![answer("mean", vec![Value::Decimal(5.0 / 3.0)])],
                vec![],
            ),
            // Its text rounded in the last digit still matches.
            (
                vec![answer("mean", vec![Value::Decimal(1.666_666_666_666_667)])],
                vec![],
            ),
            (
                vec![answer("mean", vec![Value::Decimal(1.67)])],
                wrong("mean"),
            ),
        ];
        for (extra, expected) in cases {
            let shown = format!("{extra:?}");
            assert_eq!(scored(extra), expected, "{shown}");
        }
    }

    /// A PHQ-2 scored the standard SDC way: the two answers' ordinals summed
    /// with `aggregate()` into a variable the total reads.
    fn phq2(total_expression: &str) -> Form {
        let scored = |link: &str| {
            let mut item = Item::new(link, ItemKind::Choice);
            item.options = [
                ("LA6568-5", 0.0),
                ("LA6569-3", 1.0),
                ("LA6570-1", 2.0),
                ("LA6571-9", 3.0),
            ]
            .into_iter()
            .map(|(code, ordinal)| AnswerOption {
                ordinal: Some(ordinal),
                ..AnswerOption::new(Value::Coding(Coding {
                    system: Some("http://loinc.org".into()),
                    code: Some(code.into()),
                    display: None,
                }))
            })
            .collect();
            item
        };
        let mut total = Item::new("total", ItemKind::Integer);
        total.expressions.calculated = Some("%score".into());
        let mut form = form(vec![scored("q1"), scored("q2"), total]);
        form.variables = vec![crate::form::Variable {
            name: "score".into(),
            expression: total_expression.into(),
        }];
        form
    }

    fn loinc(code: &str) -> Value {
        Value::Coding(Coding {
            system: Some("http://loinc.org".into()),
            code: Some(code.into()),
            display: None,
        })
    }

    #[test]
    fn a_phq2_scored_with_aggregate_checks_the_total_sent() {
        let form = phq2(
            "%resource.repeat(item).where(linkId = 'q1' or linkId = 'q2')\
             .answer.value.ordinal().aggregate($this + $total, 0)",
        );
        let sent = |total: i64| {
            problems(
                &form,
                vec![
                    answer("q1", vec![loinc("LA6569-3")]),
                    answer("q2", vec![loinc("LA6570-1")]),
                    answer("total", vec![Value::Integer(total)]),
                ],
            )
        };
        assert_eq!(sent(3), vec![]);
        assert_eq!(
            sent(4),
            vec![("total".to_owned(), AnswerProblem::NotCalculated)]
        );
        let evaluation = evaluate(
            &form,
            &response(vec![answer("q1", vec![loinc("LA6571-9")])]),
        );
        assert_eq!(
            evaluation.calculated.get("total"),
            Some(&vec![Value::Integer(3)])
        );
    }

    /// The issue's case: a correct total sent for a form whose expression the
    /// engine cannot evaluate (here, a function it does not know) is kept as
    /// sent, listed as unchecked, never refused.
    #[test]
    fn a_value_sent_for_an_expression_we_cannot_evaluate_is_kept_not_refused() {
        for broken in [
            "%resource.repeat(item).answer.value.ordinal().nosuch()",
            // Parses, fails to evaluate: several values where one is needed.
            "%resource.repeat(item).answer.value.ordinal() + 1",
        ] {
            let form = phq2(broken);
            let given = response(vec![
                answer("q1", vec![loinc("LA6569-3")]),
                answer("q2", vec![loinc("LA6570-1")]),
                answer("total", vec![Value::Integer(3)]),
            ]);
            let evaluation = evaluate(&form, &given);
            assert_eq!(evaluation.issues, vec![], "{broken}");
            assert_eq!(
                evaluation.unchecked,
                vec![Unchecked {
                    link_id: "total".into(),
                    path: "total".into()
                }],
                "{broken}"
            );
            assert!(!evaluation.calculated.contains_key("total"), "{broken}");
        }
    }

    #[test]
    fn a_bmi_is_calculated_from_weight_and_height() {
        let mut bmi = Item::new("bmi", ItemKind::Decimal);
        bmi.expressions.calculated = Some(
            "(%resource.repeat(item).where(linkId='weight').answer.value / \
             (%resource.repeat(item).where(linkId='height').answer.value / 100).power(2)).round(1)"
                .into(),
        );
        let form = form(vec![
            Item::new("weight", ItemKind::Decimal),
            Item::new("height", ItemKind::Decimal),
            bmi,
        ]);
        let given = |bmi: f64| {
            response(vec![
                answer("weight", vec![Value::Decimal(70.0)]),
                answer("height", vec![Value::Decimal(175.0)]),
                answer("bmi", vec![Value::Decimal(bmi)]),
            ])
        };
        assert_eq!(evaluate(&form, &given(22.9)).issues, vec![]);
        assert_eq!(
            evaluate(&form, &given(23.9))
                .issues
                .into_iter()
                .map(|i| i.problem)
                .collect::<Vec<_>>(),
            vec![AnswerProblem::NotCalculated]
        );
    }

    #[test]
    fn an_enable_when_expression_with_iif_and_today_uses_the_date_given() {
        let mut pregnant = Item::new("pregnant", ItemKind::Boolean);
        // Under fifty, by year (date arithmetic is the server's, over FHIR JSON).
        pregnant.expressions.enable_when = Some(
            "iif(today().toString().substring(0, 4).toInteger() - \
             %resource.repeat(item).where(linkId='born').answer.value.toString().substring(0, 4).toInteger() < 50, \
             true, false)"
                .into(),
        );
        let form = form(vec![Item::new("born", ItemKind::Date), pregnant]);
        let given = |born: &str| {
            response(vec![
                answer("born", vec![Value::Date(born.into())]),
                answer("pregnant", vec![Value::Boolean(false)]),
            ])
        };
        let today = Date::new(2026, 12, 7).ok();
        assert_eq!(
            evaluate_on(&form, &given("1990-05-01"), today).issues,
            vec![]
        );
        let old = evaluate_on(&form, &given("1960-05-01"), today);
        assert_eq!(
            old.issues
                .into_iter()
                .map(|i| i.problem)
                .collect::<Vec<_>>(),
            vec![AnswerProblem::NotEnabled]
        );
        assert!(evaluate_on(&form, &given("1976-12-07"), today).is_disabled("pregnant"));
        assert!(!evaluate_on(&form, &given("1977-01-01"), today).is_disabled("pregnant"));
        // No date given (the browser before it knows one): today() is empty, the
        // condition unknown, the item off.
        assert!(evaluate_on(&form, &given("1990-05-01"), None).is_disabled("pregnant"));
    }

    #[test]
    fn a_coding_matches_an_option_by_code_whatever_its_display() {
        let form = form(vec![choice("mood", &["LA6568-5"])]);
        let shown = Value::Coding(Coding {
            system: None,
            code: Some("LA6568-5".into()),
            display: Some("Not at all".into()),
        });
        assert_eq!(problems(&form, vec![answer("mood", vec![shown])]), vec![]);
    }

    #[test]
    fn required_items_must_be_answered_unless_disabled() {
        let mut reason = Item::new("reason", ItemKind::String);
        reason.required = true;
        reason.enable_when = vec![EnableWhen {
            question: "smoker".into(),
            operator: Operator::Equal,
            answer: Value::Boolean(true),
        }];
        let form = form(vec![Item::new("smoker", ItemKind::Boolean), reason]);
        let required = vec![("reason".to_owned(), AnswerProblem::Required)];
        assert_eq!(
            problems(&form, vec![answer("smoker", vec![Value::Boolean(true)])]),
            required
        );
        assert_eq!(
            problems(&form, vec![answer("smoker", vec![Value::Boolean(false)])]),
            vec![]
        );
        // An answer to a disabled item is refused, not ignored.
        let disabled = problems(
            &form,
            vec![
                answer("smoker", vec![Value::Boolean(false)]),
                answer("reason", vec![Value::String("x".into())]),
            ],
        );
        assert_eq!(
            disabled,
            vec![("reason".to_owned(), AnswerProblem::NotEnabled)]
        );
    }

    #[test]
    fn enable_when_is_evaluated_per_instance_of_a_repeating_group() {
        let form = form(vec![family_member_group(false)]);
        let instance = |affected: bool, condition: Option<&str>| {
            let mut items = vec![answer("affected", vec![Value::Boolean(affected)])];
            items.extend(condition.map(|c| answer("condition", vec![Value::String(c.into())])));
            group("member", items)
        };
        let given = vec![
            instance(true, Some("asthma")),
            instance(false, Some("diabetes")),
            instance(false, None),
        ];
        // Only the second instance answers a question its own answer disabled.
        assert_eq!(
            problems(&form, given),
            vec![("condition".to_owned(), AnswerProblem::NotEnabled)]
        );
    }

    #[test]
    fn every_operator_and_both_behaviors() {
        use Operator as O;
        let cases: &[(O, Value, Vec<Value>, bool)] = &[
            (
                O::Exists,
                Value::Boolean(true),
                vec![Value::Integer(1)],
                true,
            ),
            (O::Exists, Value::Boolean(true), vec![], false),
            (O::Exists, Value::Boolean(false), vec![], true),
            (O::Equal, Value::Integer(5), vec![Value::Integer(5)], true),
            (O::Equal, Value::Decimal(5.0), vec![Value::Integer(5)], true),
            (
                O::NotEqual,
                Value::Integer(5),
                vec![Value::Integer(4)],
                true,
            ),
            (
                O::NotEqual,
                Value::Integer(5),
                vec![Value::Integer(5)],
                false,
            ),
            (O::NotEqual, Value::Integer(5), vec![], false),
            (O::Greater, Value::Integer(5), vec![Value::Integer(6)], true),
            (
                O::Greater,
                Value::Integer(5),
                vec![Value::Integer(5)],
                false,
            ),
            (
                O::GreaterOrEqual,
                Value::Integer(5),
                vec![Value::Integer(5)],
                true,
            ),
            (
                O::Less,
                Value::Date("2022-09".into()),
                vec![Value::Date("2022-08".into())],
                true,
            ),
            (
                O::LessOrEqual,
                Value::Time("13:30:00".into()),
                vec![Value::Time("13:30:01".into())],
                false,
            ),
            (O::Equal, coding("LA6568-5"), vec![coding("LA6568-5")], true),
            (
                O::Equal,
                coding("LA6568-5"),
                vec![coding("LA6569-3")],
                false,
            ),
            (
                O::Equal,
                Value::Integer(1),
                vec![Value::Integer(2), Value::Integer(1)],
                true,
            ),
        ];
        for (operator, expected_answer, answers, enabled) in cases {
            let mut q = Item::new("q", ItemKind::Integer);
            q.repeats = true;
            let mut target = Item::new("t", ItemKind::Display);
            target.enable_when = vec![EnableWhen {
                question: "q".into(),
                operator: *operator,
                answer: expected_answer.clone(),
            }];
            let form = form(vec![q, target.clone()]);
            let given = response(if answers.is_empty() {
                vec![]
            } else {
                vec![answer("q", answers.clone())]
            });
            assert_eq!(
                is_enabled(&form, &given, &target, &[]),
                *enabled,
                "{operator:?} {expected_answer:?} {answers:?}"
            );
        }
        // any / all over two conditions, one true and one false.
        let mut target = Item::new("t", ItemKind::Display);
        target.enable_when = vec![
            EnableWhen {
                question: "q".into(),
                operator: O::Equal,
                answer: Value::Integer(1),
            },
            EnableWhen {
                question: "q".into(),
                operator: O::Equal,
                answer: Value::Integer(2),
            },
        ];
        let given = response(vec![answer("q", vec![Value::Integer(1)])]);
        let form_all = form(vec![Item::new("q", ItemKind::Integer), target.clone()]);
        assert!(!is_enabled(&form_all, &given, &target, &[]));
        target.enable_behavior = EnableBehavior::Any;
        assert!(is_enabled(&form_all, &given, &target, &[]));
    }

    #[test]
    fn fhir_date_and_time_shapes() {
        for ok in ["2024", "2024-02", "2024-02-29"] {
            assert!(is_fhir_date(ok), "{ok}");
        }
        for bad in ["24", "2024-13", "2023-02-29", "2024/02/01", "2024-2"] {
            assert!(!is_fhir_date(bad), "{bad}");
        }
        for ok in [
            "2024-02-29T13:30:00Z",
            "2024-02-29T13:30:00.5+10:00",
            "2024-02",
        ] {
            assert!(is_fhir_date_time(ok), "{ok}");
        }
        for bad in [
            "2024-02-29T13:30",
            "2024-02-29T13:30:00",
            "2024-02-29T25:00:00Z",
        ] {
            assert!(!is_fhir_date_time(bad), "{bad}");
        }
    }

    /// Issue 21: `2020é0` is seven bytes, and slicing it at byte 5 panicked
    /// (and the panic message wrote the answer into the log).
    #[test]
    fn a_date_with_a_multibyte_character_is_not_a_date_and_does_not_panic() {
        let form = form(vec![
            Item::new("born", ItemKind::Date),
            Item::new("when", ItemKind::DateTime),
            Item::new("at", ItemKind::Time),
        ]);
        for (link_id, value) in [
            ("born", Value::Date("2020é0".into())),
            ("born", Value::Date("२०२०-01".into())),
            ("when", Value::DateTime("2020-01-01T10:00:00+0é:00".into())),
            ("at", Value::Time("1é:00:00".into())),
        ] {
            assert_eq!(
                problems(&form, vec![answer(link_id, vec![value])]),
                [(link_id.to_owned(), AnswerProblem::NotADate)]
            );
        }
    }

    /// Text that looks like a date, time or number often enough to reach the
    /// parsers' deeper branches, with any Unicode character mixed in.
    fn datelike() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            4 => proptest::char::range('0', '9'),
            2 => proptest::sample::select(vec!['-', ':', 'T', 'Z', '+', '.', 'e', 'E', ' ']),
            3 => any::<char>(),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|c| c.into_iter().collect())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn no_parser_of_dates_times_or_numbers_panics_on_any_text(text in datelike()) {
            let _ = Date::parse(&text);
            let _ = crate::date::compose_date(&text, &text, &text);
            let _ = crate::float::parse_f64(&text);
            let _ = crate::json::Json::parse(&text);
            let _ = crate::json::from_str::<f64>(&text);
            let _ = crate::json::from_str::<i64>(&text);
            let mut pattern = Item::new("pattern", ItemKind::String);
            pattern.constraints.regex = Some("^[0-9]{4}-[a-z]+$".into());
            let form = form(vec![
                Item::new("born", ItemKind::Date),
                Item::new("when", ItemKind::DateTime),
                Item::new("at", ItemKind::Time),
                Item::new("weight", ItemKind::Decimal),
                pattern,
            ]);
            let items = vec![
                answer("born", vec![Value::Date(text.clone())]),
                answer("when", vec![Value::DateTime(text.clone())]),
                answer("at", vec![Value::Time(text.clone())]),
                answer("pattern", vec![Value::String(text.clone())]),
            ];
            let _ = validate(&form, &response(items));
            // The same text as the JSON a browser or a client sends.
            let json = format!(
                r#"{{"resourceType":"QuestionnaireResponse","status":"completed","item":[{{"linkId":"born","answer":[{{"valueDate":{t}}}]}},{{"linkId":"weight","answer":[{{"valueDecimal":{n}}}]}}]}}"#,
                t = serde_json::Value::String(text.clone()),
                n = text,
            );
            if let Ok(parsed) = serde_json::from_str::<QuestionnaireResponse>(&json) {
                let _ = validate(&form, &parsed);
            }
        }
    }
}
