//! A form being filled in: answers by item path, and how many instances each
//! repeating group has. The browser edits a [`Draft`]; it becomes a
//! QuestionnaireResponse only when sent.
//!
//! The form's expressions apply here: `initialExpression`s fill the first values,
//! and settling (see [`Draft::evaluate`]) writes each enabled item's
//! `calculatedExpression` value into the answers, again until nothing changes, so a
//! score that depends on another calculated item is right whatever their order.

use serde::{Deserialize, Serialize};

use crate::answers::{Evaluation, evaluate_computed, instance_prefix, item_path};
use crate::date::Date;
use crate::fhirpath::sdc;
use crate::form::{Form, Item, ItemKind, Value};
#[cfg(feature = "launch-context")]
use crate::json::Json;
use crate::map::Map;
use crate::response::{QuestionnaireResponse, ResponseAnswer, ResponseItem};

/// Answers being given, keyed by item path (`member[1].condition`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The answers of each item that has any.
    pub answers: Map<Vec<Value>>,
    /// Instances of each repeating group (by the group's path); 1 when absent.
    pub instances: Map<usize>,
    /// What FHIRPath's `today()` gives the form's expressions (none: empty).
    #[serde(skip)]
    pub today: Option<Date>,
}

/// Most rounds of settling: calculations that feed each other in a cycle stop here.
const MAX_ROUNDS: usize = 16;

impl Draft {
    /// A draft holding the form's initial values (`initial`, `initialSelected`,
    /// and what `initialExpression`s give with no date: see [`Draft::initial_on`]).
    pub fn initial(form: &Form) -> Self {
        Self::initial_on(form, None)
    }

    /// [`Draft::initial`], with `today` for the form's expressions. An
    /// `initialExpression` that gives nothing (`%patient` with no launch context)
    /// leaves the item as it was.
    pub fn initial_on(form: &Form, today: Option<Date>) -> Self {
        Self::initial_by(form, today, &|response| {
            sdc::compute(form, response, today, true)
        })
    }

    #[cfg(feature = "launch-context")]
    /// [`Draft::initial_on`] with launch-context resources bound by name (the
    /// server prefills an invited patient's form with `("patient", their
    /// Patient)`, so `%patient.birthDate` gives their birth date).
    pub fn initial_in(form: &Form, today: Option<Date>, launch: &[(&str, &Json)]) -> Self {
        Self::initial_by(form, today, &|response| {
            sdc::compute_in(form, response, today, true, launch)
        })
    }

    /// The form's initial values, then what `compute` gives its
    /// `initialExpression`s.
    fn initial_by(
        form: &Form,
        today: Option<Date>,
        compute: &dyn Fn(&QuestionnaireResponse) -> sdc::Computed,
    ) -> Self {
        fn walk(items: &[Item], prefix: &str, draft: &mut Draft) {
            for item in items {
                let path = item_path(prefix, &item.link_id);
                let mut values = item.initial.clone();
                values.extend(
                    item.options
                        .iter()
                        .filter(|o| o.initial_selected)
                        .map(|o| o.value.clone()),
                );
                if !values.is_empty() {
                    draft.answers.insert(path, values);
                }
                walk(
                    &item.items,
                    &instance_prefix(prefix, &item.link_id, 0),
                    draft,
                );
            }
        }
        let mut draft = Draft {
            today,
            ..Draft::default()
        };
        walk(&form.items, "", &mut draft);
        // One initial value may feed another's expression: a few rounds settle it.
        for _ in 0..MAX_ROUNDS {
            let response = draft.in_progress(form);
            let computed = compute(&response);
            let before = draft.answers.len();
            for (path, values) in computed.initial {
                draft.answers.insert_if_absent(path, values);
            }
            if draft.answers.len() == before {
                break;
            }
        }
        draft
    }

    /// How many instances the group at `path` has.
    pub fn instance_count(&self, path: &str) -> usize {
        self.instances.get(path).copied().unwrap_or(1).max(1)
    }

    /// Sets (or, with no values, clears) the answers at `path`.
    pub fn set(&mut self, path: &str, values: Vec<Value>) {
        if values.is_empty() {
            self.answers.remove(path);
        } else {
            self.answers.insert(path.to_owned(), values);
        }
    }

    /// Adds an instance to the repeating group at `path`.
    pub fn add_instance(&mut self, path: &str) {
        let count = self.instance_count(path);
        self.instances.insert(path.to_owned(), count + 1);
    }

    /// Removes instance `index` of the group at `path`; later instances move up.
    pub fn remove_instance(&mut self, path: &str, index: usize) {
        let count = self.instance_count(path);
        if count <= 1 {
            // The last instance is emptied, not removed.
            let inner = format!("{path}[0].");
            self.answers.retain(|k, _| !k.starts_with(&inner));
            self.instances.retain(|k, _| !k.starts_with(&inner));
            return;
        }
        let renumber = |map_key: &str| -> Option<Option<String>> {
            let rest = map_key.strip_prefix(path)?.strip_prefix('[')?;
            let (n, tail) = rest.split_once(']')?;
            let n: usize = n.parse().ok()?;
            Some(match n.cmp(&index) {
                std::cmp::Ordering::Less => Some(map_key.to_owned()),
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(format!("{path}[{}]{tail}", n - 1)),
            })
        };
        self.answers = std::mem::take(&mut self.answers)
            .into_iter()
            .filter_map(|(k, v)| match renumber(&k) {
                None => Some((k, v)),
                Some(new) => new.map(|k| (k, v)),
            })
            .collect();
        self.instances = std::mem::take(&mut self.instances)
            .into_iter()
            .filter_map(|(k, v)| match renumber(&k) {
                None => Some((k, v)),
                Some(new) => new.map(|k| (k, v)),
            })
            .collect();
        self.instances.insert(path.to_owned(), count - 1);
    }

    /// The rules' view of the draft, once answers to disabled items are dropped
    /// and calculated values written (each can change the other, so this settles).
    /// Calculated values are in [`Evaluation::calculated`].
    pub fn evaluate(&self, form: &Form) -> Evaluation {
        self.settle(form).1
    }

    /// The response to send: answers to disabled items dropped, empty items left
    /// out. `questionnaire` is the canonical URL or `Questionnaire/{id}`.
    pub fn response(&self, form: &Form, questionnaire: String) -> QuestionnaireResponse {
        let (settled, _) = self.settle(form);
        QuestionnaireResponse::new(
            Some(questionnaire),
            "completed",
            settled.items(&form.items, "", false),
        )
    }

    fn in_progress(&self, form: &Form) -> QuestionnaireResponse {
        QuestionnaireResponse::new(None, "in-progress", self.items(&form.items, "", true))
    }

    fn settle(&self, form: &Form) -> (Draft, Evaluation) {
        let mut draft = self.clone();
        let mut rounds = 0;
        loop {
            let response = draft.in_progress(form);
            let computed = sdc::compute(form, &response, self.today, false);
            let evaluation = evaluate_computed(form, &response, &computed);
            let before = draft.answers.len();
            draft.answers.retain(|key, _| !evaluation.is_disabled(key));
            let mut changed = draft.answers.len() != before;
            for (path, values) in &evaluation.calculated {
                if draft.answers.get(path).map_or(&[][..], Vec::as_slice) != values.as_slice() {
                    draft.set(path, values.clone());
                    changed = true;
                }
            }
            rounds += 1;
            if !changed || rounds >= MAX_ROUNDS {
                return (draft, evaluation);
            }
        }
    }

    /// The response items for `items` under `prefix`. With `keep_empty`, group
    /// instances without answers stay, so that paths match instance numbers.
    fn items(&self, items: &[Item], prefix: &str, keep_empty: bool) -> Vec<ResponseItem> {
        let mut out = Vec::new();
        for item in items {
            let path = item_path(prefix, &item.link_id);
            match item.kind {
                ItemKind::Display => {}
                ItemKind::Group => {
                    let count = if item.repeats {
                        self.instance_count(&path)
                    } else {
                        1
                    };
                    for index in 0..count {
                        let children = self.items(
                            &item.items,
                            &instance_prefix(prefix, &item.link_id, index),
                            keep_empty,
                        );
                        if keep_empty || !children.is_empty() {
                            out.push(ResponseItem {
                                link_id: item.link_id.clone(),
                                text: None,
                                answer: vec![],
                                item: children,
                            });
                        }
                    }
                }
                _ => {
                    let children = self.items(
                        &item.items,
                        &instance_prefix(prefix, &item.link_id, 0),
                        keep_empty,
                    );
                    let values = self.answers.get(&path).cloned().unwrap_or_default();
                    if values.is_empty() && children.is_empty() {
                        continue;
                    }
                    let mut answer: Vec<ResponseAnswer> = values
                        .into_iter()
                        .map(|value| ResponseAnswer {
                            value,
                            item: vec![],
                        })
                        .collect();
                    let item_children = match answer.first_mut() {
                        Some(first) => {
                            first.item = children;
                            vec![]
                        }
                        None => children,
                    };
                    out.push(ResponseItem {
                        link_id: item.link_id.clone(),
                        text: None,
                        answer,
                        item: item_children,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::AnswerProblem;
    use crate::test_forms::{family_member_group, form};

    fn family_form() -> Form {
        let mut name = Item::new("name", ItemKind::String);
        name.initial = vec![Value::String("Jane".into())];
        form(vec![name, family_member_group(true)])
    }

    #[test]
    fn initial_values_start_the_draft() {
        let draft = Draft::initial(&family_form());
        assert_eq!(
            draft.answers.get("name"),
            Some(&vec![Value::String("Jane".into())])
        );
    }

    #[test]
    fn answers_to_items_that_become_disabled_are_not_sent() {
        let form = family_form();
        let mut draft = Draft::initial(&form);
        draft.set("member[0].affected", vec![Value::Boolean(true)]);
        draft.set("member[0].condition", vec![Value::String("asthma".into())]);
        // The patient changes their mind: the condition no longer applies.
        draft.set("member[0].affected", vec![Value::Boolean(false)]);
        let evaluation = draft.evaluate(&form);
        assert_eq!(evaluation.issues, vec![]);
        assert_eq!(evaluation.disabled, ["member[0].condition"]);
        let response = draft.response(&form, "Questionnaire/f".into());
        let member = &response.item[1];
        assert_eq!(member.item.len(), 1, "{member:?}");
        assert_eq!(member.item[0].link_id, "affected");
        assert_eq!(crate::answers::validate(&form, &response), vec![]);
    }

    #[test]
    fn each_group_instance_is_checked_on_its_own() {
        let form = family_form();
        let mut draft = Draft::default();
        draft.add_instance("member");
        draft.set("member[0].affected", vec![Value::Boolean(false)]);
        draft.set("member[1].affected", vec![Value::Boolean(true)]);
        let issues = draft.evaluate(&form).issues;
        assert_eq!(issues.len(), 1);
        assert_eq!(
            (issues[0].path.as_str(), &issues[0].problem),
            ("member[1].condition", &AnswerProblem::Required)
        );
    }

    #[test]
    fn each_group_instance_has_its_own_variables() {
        // A repeating group with a variable over its own answers, read by a
        // child's calculatedExpression and by a grandchild's in a nested group.
        let mut member = Item::new("member", ItemKind::Group);
        member.repeats = true;
        member.variables = vec![crate::form::Variable {
            name: "age".into(),
            expression: "item.where(linkId = 'age').answer.value".into(),
        }];
        let mut inner = Item::new("inner", ItemKind::Group);
        inner.items = vec![with_expressions(
            "triple",
            ItemKind::Integer,
            Some("%age * 3"),
            None,
            None,
        )];
        member.items = vec![
            Item::new("age", ItemKind::Integer),
            with_expressions("double", ItemKind::Integer, Some("%age * 2"), None, None),
            inner,
        ];
        let form = form(vec![member]);
        let mut draft = Draft::default();
        draft.add_instance("member");
        draft.add_instance("member");
        draft.set("member[0].age", vec![Value::Integer(10)]);
        draft.set("member[2].age", vec![Value::Integer(7)]);
        let calculated = draft.evaluate(&form).calculated;
        let at = |path: &str| calculated.get(path).cloned().unwrap_or_default();
        assert_eq!(at("member[0].double"), [Value::Integer(20)]);
        assert_eq!(at("member[0].inner[0].triple"), [Value::Integer(30)]);
        assert_eq!(at("member[1].double"), []);
        assert_eq!(at("member[1].inner[0].triple"), []);
        assert_eq!(at("member[2].double"), [Value::Integer(14)]);
        assert_eq!(at("member[2].inner[0].triple"), [Value::Integer(21)]);
    }

    fn with_expressions(
        link_id: &str,
        kind: ItemKind,
        calculated: Option<&str>,
        enable_when: Option<&str>,
        initial: Option<&str>,
    ) -> Item {
        let mut item = Item::new(link_id, kind);
        item.expressions.calculated = calculated.map(Into::into);
        item.expressions.enable_when = enable_when.map(Into::into);
        item.expressions.initial = initial.map(Into::into);
        item
    }

    #[test]
    fn initial_expressions_fill_what_they_can_and_take_today_as_given() {
        let form = form(vec![
            with_expressions("greeting", ItemKind::String, None, None, Some("'hello'")),
            with_expressions("seen", ItemKind::Date, None, None, Some("today()")),
            with_expressions(
                "family",
                ItemKind::String,
                None,
                None,
                Some("%patient.name.family"),
            ),
            with_expressions(
                "echo",
                ItemKind::String,
                None,
                None,
                Some("%resource.item.where(linkId = 'greeting').answer.value + '!'"),
            ),
        ]);
        let draft = Draft::initial(&form);
        assert_eq!(draft.answers["greeting"], [Value::String("hello".into())]);
        assert_eq!(draft.answers["echo"], [Value::String("hello!".into())]);
        assert!(!draft.answers.contains_key("seen"), "no date given");
        assert!(!draft.answers.contains_key("family"), "no launch context");
        let today = crate::date::Date::new(2024, 3, 5).ok();
        let draft = Draft::initial_on(&form, today);
        assert_eq!(draft.answers["seen"], [Value::Date("2024-03-05".into())]);
    }

    #[cfg(feature = "launch-context")]
    #[test]
    fn a_launch_context_patient_prefills_from_its_elements() {
        let form = form(vec![
            with_expressions(
                "family",
                ItemKind::String,
                None,
                None,
                Some("%patient.name.first().family"),
            ),
            with_expressions(
                "given",
                ItemKind::String,
                None,
                None,
                Some("%patient.name.where(use = 'official').given.first()"),
            ),
            with_expressions(
                "born",
                ItemKind::Date,
                None,
                None,
                Some("%patient.birthDate"),
            ),
            with_expressions(
                "phone",
                ItemKind::String,
                None,
                None,
                Some("%patient.telecom.where(system = 'phone').value.first()"),
            ),
            with_expressions(
                "missing",
                ItemKind::String,
                None,
                None,
                Some("%patient.gender"),
            ),
        ]);
        let patient = crate::json::Json::parse(
            r#"{"resourceType":"Patient","name":[{"use":"nickname","family":"Doe","given":["Jo"]},
               {"use":"official","family":"Roe","given":["Joanna","M"]}],
               "birthDate":"1980-03-27","multipleBirthInteger":2,
               "telecom":[{"system":"email","value":"j@x.org"},{"system":"phone","value":"555-0100"}]}"#,
        )
        .unwrap();
        let draft = Draft::initial_in(&form, None, &[("patient", &patient)]);
        assert_eq!(draft.answers["family"], [Value::String("Doe".into())]);
        assert_eq!(draft.answers["given"], [Value::String("Joanna".into())]);
        assert_eq!(draft.answers["born"], [Value::Date("1980-03-27".into())]);
        assert_eq!(draft.answers["phone"], [Value::String("555-0100".into())]);
        assert!(!draft.answers.contains_key("missing"));
        // Bound under another name, `%patient` is nobody.
        let draft = Draft::initial_in(&form, None, &[("encounter", &patient)]);
        assert!(draft.answers.is_empty());
    }

    #[test]
    fn calculations_settle_in_dependency_order_and_stop_on_a_cycle() {
        let value_of = |l: &str| format!("%resource.item.where(linkId = '{l}').answer.value");
        let form = form(vec![
            with_expressions(
                "total",
                ItemKind::Integer,
                Some(&format!("{} * 2", value_of("half"))),
                None,
                None,
            ),
            with_expressions(
                "half",
                ItemKind::Integer,
                Some(&format!("{} + 1", value_of("given"))),
                None,
                None,
            ),
            Item::new("given", ItemKind::Integer),
            with_expressions(
                "ping",
                ItemKind::Integer,
                Some(&format!("{} + 1", value_of("pong"))),
                None,
                None,
            ),
            with_expressions(
                "pong",
                ItemKind::Integer,
                Some(&format!("iif({0}.exists(), {0}, 0) + 1", value_of("ping"))),
                None,
                None,
            ),
        ]);
        let mut draft = Draft::initial(&form);
        draft.set("given", vec![Value::Integer(4)]);
        let evaluation = draft.evaluate(&form);
        assert_eq!(evaluation.calculated["total"], [Value::Integer(10)]);
        let response = draft.response(&form, "Questionnaire/t".into());
        assert_eq!(response.item[0].answer[0].value, Value::Integer(10));
        // ping and pong feed each other: settling stops, with some value.
        assert!(evaluation.calculated.contains_key("ping"));
    }

    #[test]
    fn an_enable_when_expression_replaces_enable_when_and_disabled_items_are_not_calculated() {
        let mut gated = with_expressions(
            "score",
            ItemKind::Decimal,
            Some("2.5"),
            Some("%resource.item.where(linkId = 'consent').answer.value"),
            None,
        );
        // Ignored: the expression decides.
        gated.enable_when = family_member_group(false).items[1].enable_when.clone();
        let form = form(vec![Item::new("consent", ItemKind::Boolean), gated]);
        let mut draft = Draft::initial(&form);
        let evaluation = draft.evaluate(&form);
        assert_eq!(evaluation.disabled, ["score"]);
        assert!(evaluation.calculated.is_empty());
        draft.set("consent", vec![Value::Boolean(true)]);
        let evaluation = draft.evaluate(&form);
        assert!(evaluation.disabled.is_empty());
        assert_eq!(evaluation.calculated["score"], [Value::Decimal(2.5)]);
        draft.set("consent", vec![Value::Boolean(false)]);
        let response = draft.response(&form, "Questionnaire/t".into());
        assert_eq!(response.item.len(), 1, "{response:?}");
    }

    #[test]
    fn removing_an_instance_moves_the_later_ones_up() {
        let mut draft = Draft::default();
        draft.add_instance("member");
        draft.add_instance("member");
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            draft.set(
                &format!("member[{i}].condition"),
                vec![Value::String((*name).into())],
            );
        }
        draft.remove_instance("member", 1);
        assert_eq!(draft.instance_count("member"), 2);
        let names: Vec<_> = draft
            .answers
            .iter()
            .map(|(k, v)| (k.as_str(), v[0].clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("member[0].condition", Value::String("a".into())),
                ("member[1].condition", Value::String("c".into()))
            ]
        );
        draft.remove_instance("member", 0);
        draft.remove_instance("member", 0);
        assert_eq!(draft.instance_count("member"), 1);
        assert!(draft.answers.is_empty(), "{:?}", draft.answers);
    }
}
