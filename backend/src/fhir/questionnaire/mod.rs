//! FHIR R4 Questionnaire: parsed with fhirbolt (lax, as real files need) and
//! compiled into the browser's [`shared::form::Form`].
//!
//! Compiling never drops an item: every item of the Questionnaire is in the form.
//! What the form cannot use (an extension we do not support, a value set we cannot
//! expand) becomes an [`ImportWarning`](shared::form::ImportWarning); what makes the form unusable (no linkId,
//! an unknown type, a condition on a question that does not exist) is an error that
//! names the path.
//!
//! `parse.rs` reads and cleans, `compile.rs` compiles, `translations.rs` reads a
//! form's other languages, `values.rs` maps FHIR values to the form's.

mod compile;
mod parse;
mod translations;
mod values;

pub use compile::compile;
pub use parse::{Parsed, parse, parse_value};

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

#[cfg(test)]
mod tests {
    use shared::form::Value;

    use super::compile::*;
    use super::parse::*;
    use super::values::*;
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
#[path = "../../../tests/common/fixture_files.rs"]
mod fixture_files;

#[cfg(test)]
mod fixture_tests {
    use shared::form::{Form, ImportWarning, Item, ItemKind, Value};

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
