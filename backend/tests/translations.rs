//! A Questionnaire's own `translation` extensions: compiled into the form, and
//! applied by `Form::localized` without changing what a response records.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use backend::fhir::questionnaire::{compile, parse};
use shared::answers::{instance_prefix, item_path};
use shared::draft::Draft;
use shared::form::{Form, Item, ItemText, Value};

/// PHQ-2 in English with Spanish texts on everything a patient reads: title,
/// group heading, prefix, question texts (one also in `es-MX`), flyover help,
/// coded options (inline and from a contained ValueSet's expansion), text options
/// and an `entryFormat`.
fn phq2() -> Form {
    let json = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/phq-2-es.json"),
    )
    .unwrap();
    let compiled = compile(&parse(&json).unwrap(), "phq-2-es").unwrap();
    assert_eq!(compiled.warnings, vec![]);
    compiled.form
}

fn item<'f>(form: &'f Form, link_id: &str) -> &'f Item {
    form.all_items()
        .into_iter()
        .find(|i| i.link_id == link_id)
        .unwrap_or_else(|| panic!("no item {link_id}"))
}

/// The draft path of an item in the PHQ-2 group.
fn path(link_id: &str) -> String {
    item_path(&instance_prefix("", "phq2", 0), link_id)
}

fn shown_options(item: &Item) -> Vec<String> {
    item.options
        .iter()
        .map(shared::form::AnswerOption::display_text)
        .collect()
}

#[test]
fn spanish_translations_land_in_the_compiled_form() {
    let form = phq2();
    assert_eq!(form.languages(), ["es", "es-MX"]);
    assert_eq!(
        form.title_translations["es"],
        "Cuestionario sobre la salud del paciente-2 (PHQ-2)"
    );
    let interest = item(&form, "44250-9");
    assert_eq!(
        interest.translations["es"],
        ItemText {
            text: Some("Poco interés o placer en hacer cosas".into()),
            prefix: Some("1)".into()),
            help: Some("Cuente los días de las últimas dos semanas.".into()),
            entry_format: None,
            options: [
                "Ningún día",
                "Varios días",
                "Más de la mitad de los días",
                "Casi todos los días"
            ]
            .map(|s| Some(s.to_owned()))
            .to_vec(),
        }
    );
    // Options from the contained ValueSet's expansion carry their displays' too.
    let mood = item(&form, "44255-8");
    assert_eq!(mood.options.len(), 4);
    assert_eq!(
        mood.translations["es"].options[3].as_deref(),
        Some("Casi todos los días")
    );
    assert_eq!(
        mood.translations["es-MX"].text.as_deref(),
        Some("Se ha sentido desanimado(a), deprimido(a) o sin esperanza")
    );
    assert_eq!(
        item(&form, "difficulty").translations["es"].options[3].as_deref(),
        Some("Extremadamente difícil")
    );
    assert_eq!(
        item(&form, "difficulty-detail").translations["es"]
            .entry_format
            .as_deref(),
        Some("p. ej., trabajo, hogar")
    );
    // The form's own texts are untouched.
    assert_eq!(interest.text, "Little interest or pleasure in doing things");
    assert_eq!(shown_options(interest)[0], "Not at all");
}

#[test]
fn localized_forms_read_in_spanish_and_fall_back_to_english() {
    let form = phq2();
    let es = form.localized("es");
    assert_eq!(
        es.title,
        "Cuestionario sobre la salud del paciente-2 (PHQ-2)"
    );
    let interest = item(&es, "44250-9");
    assert_eq!(interest.text, "Poco interés o placer en hacer cosas");
    assert_eq!(interest.prefix.as_deref(), Some("1)"));
    assert_eq!(
        interest.help.as_deref(),
        Some("Cuente los días de las últimas dos semanas.")
    );
    assert_eq!(
        shown_options(item(&es, "44255-8")),
        [
            "Ningún día",
            "Varios días",
            "Más de la mitad de los días",
            "Casi todos los días"
        ]
    );
    assert_eq!(
        item(&es, "difficulty-detail").entry_format.as_deref(),
        Some("p. ej., trabajo, hogar")
    );
    assert!(es.languages().is_empty());

    // Mexican Spanish: its own text where it has one, Spanish elsewhere.
    let mx = form.localized("es-MX");
    assert_eq!(
        item(&mx, "44255-8").text,
        "Se ha sentido desanimado(a), deprimido(a) o sin esperanza"
    );
    assert_eq!(
        item(&mx, "44250-9").text,
        "Poco interés o placer en hacer cosas"
    );
    assert_eq!(mx.title, es.title);

    // No French: the form's own English, option for option.
    let fr = form.localized("fr");
    assert_eq!(fr.title, form.title);
    for (shown, original) in fr.all_items().into_iter().zip(form.all_items()) {
        assert_eq!(shown.text, original.text);
        assert_eq!(shown.help, original.help);
        assert_eq!(shown_options(shown), shown_options(original));
    }
}

#[test]
fn answers_given_in_spanish_record_the_forms_own_values_and_conditions_still_hold() {
    let form = phq2();
    // The renderer records the chosen option's value, by position.
    let fill = |shown: &Form| {
        let mut draft = Draft::initial(shown);
        let choose =
            |link_id: &str, index: usize| vec![item(shown, link_id).options[index].value.clone()];
        draft.set(&path("44250-9"), choose("44250-9", 2));
        draft.set(&path("44255-8"), choose("44255-8", 1));
        // "Extremadamente difícil": the follow-up's condition is on "Extremely difficult".
        draft.set(&path("difficulty"), choose("difficulty", 3));
        assert!(
            !draft
                .evaluate(shown)
                .disabled
                .contains(&path("difficulty-detail")),
            "the follow-up is enabled"
        );
        draft.set(
            &path("difficulty-detail"),
            vec![Value::String("trabajo".into())],
        );
        draft.response(shown, "Questionnaire/phq-2-es".into())
    };
    let in_spanish = fill(&form.localized("es"));
    assert_eq!(in_spanish, fill(&form));
    // The server checks it against the form as stored (English): no problem.
    assert_eq!(shared::answers::validate(&form, &in_spanish), vec![]);
}

#[test]
fn a_real_form_with_swahili_texts_reads_in_swahili() {
    let (name, json) = common::fixtures()
        .into_iter()
        .find(|(name, _)| name == "androidfhir--new-patient-registration-paginated")
        .unwrap();
    let form = compile(&parse(&json).unwrap(), &name).unwrap().form;
    assert_eq!(form.languages(), ["sw"]);
    let sw = form.localized("sw-KE");
    let gender = item(&sw, "patient-0-gender");
    assert_eq!(gender.text, "Jinsia");
    assert_eq!(
        shown_options(gender),
        ["Mwanamke", "Mwanaume", "Nyingine", "Haijulikani"]
    );
}

#[test]
fn forms_without_translations_compile_to_the_same_json_as_before() {
    for (name, json) in common::fixtures() {
        if json.contains("StructureDefinition/translation") {
            continue;
        }
        let form = compile(&parse(&json).unwrap(), &name).unwrap().form;
        let written = serde_json::to_string(&form).unwrap();
        for key in ["translations", "title_translations", "label"] {
            assert!(!written.contains(&format!("\"{key}\":")), "{name}: {key}");
        }
        assert!(form.languages().is_empty(), "{name}");
        assert_eq!(form.localized("es"), form, "{name}");
    }
}
