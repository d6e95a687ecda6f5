//! Unit tests of the extractor on small forms; the fixtures are in
//! `backend/tests/extract.rs`.

use serde_json::{Value, json};

use super::expressions::{Unsupported, evaluate, from_node};
use super::*;
use crate::fhir::outcome::Severity;

const NOW: &str = "2026-11-29T10:00:00.000Z";

fn run(questionnaire: &Value, items: &Value) -> Result<Extraction, Vec<Issue>> {
    let response =
        json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": items});
    extract(questionnaire, &response, &SequentialIds::default(), NOW)
}

fn resources(extraction: &Extraction) -> Vec<Value> {
    extraction.bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

const P: &str = "http://hl7.org/fhir/StructureDefinition/Patient#";

fn extract_ext(canonical: &str) -> Value {
    json!({"url": url::DEFINITION_EXTRACT, "extension": [{"url": "definition", "valueCanonical": canonical}]})
}

#[test]
fn a_root_definition_extract_makes_a_patient_from_definitions() {
    let q = json!({"resourceType": "Questionnaire",
    "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Patient")],
    "item": [
        {"linkId": "name", "type": "group", "repeats": true, "definition": format!("{P}Patient.name"), "item": [
            {"linkId": "given", "type": "string", "repeats": true, "definition": format!("{P}Patient.name.given")},
            {"linkId": "family", "type": "string", "definition": format!("{P}Patient.name.family")}
        ]},
        {"linkId": "sex", "type": "choice", "definition": format!("{P}Patient.gender")},
        {"linkId": "dob", "type": "date", "definition": format!("{P}Patient.birthDate")},
        {"linkId": "active", "type": "boolean", "definition": format!("{P}Patient.active")}
    ]});
    let x = run(&q, &json!([
        {"linkId": "name", "item": [{"linkId": "given", "answer": [{"valueString": "Ana"}, {"valueString": "Maria"}]}, {"linkId": "family", "answer": [{"valueString": "Lopez"}]}]},
        {"linkId": "name", "item": [{"linkId": "family", "answer": [{"valueString": "Garcia"}]}]},
        {"linkId": "sex", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA3-6", "display": "Female"}}]},
        {"linkId": "dob", "answer": [{"valueDate": "1990-04-01"}]},
        {"linkId": "active", "answer": [{"valueBoolean": true}]}
    ]))
    .unwrap();
    assert_eq!(x.warnings, []);
    assert_eq!(
        x.bundle,
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
            "resource": {"resourceType": "Patient",
                "name": [{"given": ["Ana", "Maria"], "family": "Lopez"}, {"family": "Garcia"}],
                "gender": "female", "birthDate": "1990-04-01", "active": true},
            "request": {"method": "POST", "url": "Patient"}
        }]})
    );
}

#[test]
fn the_plain_canonical_form_and_item_extraction_context_both_make_resources() {
    for ext in [
        json!({"url": url::DEFINITION_EXTRACT, "valueCanonical": "http://hl7.org/fhir/StructureDefinition/Patient"}),
        json!({"url": url::ITEM_EXTRACTION_CONTEXT, "valueCode": "Patient"}),
        json!({"url": url::ITEM_EXTRACTION_CONTEXT, "valueExpression": {"language": "application/x-fhir-query", "expression": "Patient"}}),
    ] {
        let q = json!({"resourceType": "Questionnaire", "extension": [ext], "item": [
            {"linkId": "dob", "type": "date", "definition": format!("{P}Patient.birthDate")}]});
        let x = run(
            &q,
            &json!([{"linkId": "dob", "answer": [{"valueDate": "1990"}]}]),
        )
        .unwrap();
        assert_eq!(
            resources(&x),
            [json!({"resourceType": "Patient", "birthDate": "1990"})]
        );
    }
}

#[test]
fn a_repeating_group_makes_one_related_person_each_linked_to_the_patient() {
    let r = "http://hl7.org/fhir/StructureDefinition/RelatedPerson#";
    let q = json!({"resourceType": "Questionnaire",
    "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Patient")],
    "item": [{"linkId": "kin", "type": "group", "repeats": true,
        "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/RelatedPerson")],
        "item": [
            {"linkId": "kin-name", "type": "string", "definition": format!("{r}RelatedPerson.name.text")},
            {"linkId": "kin-rel", "type": "choice", "definition": format!("{r}RelatedPerson.relationship")},
            {"linkId": "kin-phone", "type": "string", "definition": format!("{r}RelatedPerson.telecom.value"),
             "extension": [{"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
                {"url": "definition", "valueUri": format!("{r}RelatedPerson.telecom.system")},
                {"url": "fixed-value", "valueCode": "phone"}]}]}
        ]}]});
    let x = run(&q, &json!([
        {"linkId": "kin", "item": [{"linkId": "kin-name", "answer": [{"valueString": "Bo"}]},
            {"linkId": "kin-rel", "answer": [{"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}}]},
            {"linkId": "kin-phone", "answer": [{"valueString": "555 0100"}]}]},
        {"linkId": "kin", "item": [{"linkId": "kin-name", "answer": [{"valueString": "Cy"}]}]},
        {"linkId": "kin", "item": []}
    ]))
    .unwrap();
    let all = resources(&x);
    assert_eq!(
        all.len(),
        3,
        "an unanswered instance makes nothing: {all:?}"
    );
    let patient = "urn:uuid:00000000-0000-4000-8000-000000000001";
    assert_eq!(
        all[1],
        json!({"resourceType": "RelatedPerson", "name": [{"text": "Bo"}],
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
            "telecom": [{"value": "555 0100", "system": "phone"}],
            "patient": {"reference": patient}})
    );
    assert_eq!(all[2]["name"], json!([{"text": "Cy"}]));
}

#[test]
fn an_answer_that_does_not_fit_its_element_is_an_error_at_its_link_id() {
    let q = json!({"resourceType": "Questionnaire",
        "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Patient")],
        "item": [{"linkId": "dob", "type": "string", "definition": format!("{P}Patient.birthDate")},
                 {"linkId": "sex", "type": "string", "definition": format!("{P}Patient.gender")}]});
    let errors = run(
        &q,
        &json!([
            {"linkId": "dob", "answer": [{"valueString": "last spring"}]},
            {"linkId": "sex", "answer": [{"valueString": "sometimes"}]}
        ]),
    )
    .unwrap_err();
    let at: Vec<_> = errors
        .iter()
        .map(|e| e.expression.clone().unwrap())
        .collect();
    assert_eq!(at, ["dob", "sex"]);
    for e in &errors {
        assert!(
            !e.diagnostics.contains("spring") && !e.diagnostics.contains("sometimes"),
            "{e:?}"
        );
    }
}

#[test]
fn unsupported_metadata_is_a_warning_and_the_rest_is_extracted() {
    let q = json!({"resourceType": "Questionnaire",
    "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Patient")],
    "item": [
        {"linkId": "odd", "type": "string", "definition": format!("{P}Patient.link.other")},
        {"linkId": "expr", "type": "string", "definition": format!("{P}Patient.name.family"),
         "extension": [{"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
            {"url": "definition", "valueUri": format!("{P}Patient.name.text")},
            {"url": "expression", "valueExpression": {"language": "text/fhirpath", "expression": "'a'.nosuch()"}}]}]},
        {"linkId": "obs", "type": "decimal", "definition": "http://hl7.org/fhir/StructureDefinition/Observation#Observation.valueQuantity.value"}
    ]});
    let x = run(
        &q,
        &json!([
            {"linkId": "odd", "answer": [{"valueString": "x"}]},
            {"linkId": "expr", "answer": [{"valueString": "Lee"}]},
            {"linkId": "obs", "answer": [{"valueDecimal": 1.5}]}
        ]),
    )
    .unwrap();
    assert_eq!(
        resources(&x),
        [json!({"resourceType": "Patient", "name": [{"family": "Lee"}]})]
    );
    let at: Vec<_> = x
        .warnings
        .iter()
        .map(|w| w.expression.clone().unwrap())
        .collect();
    assert_eq!(at, ["odd", "expr", "obs"]);
    assert!(x.warnings.iter().all(|w| w.severity == Severity::Warning));
}

#[test]
fn choice_elements_take_the_answers_type() {
    let o = "http://hl7.org/fhir/StructureDefinition/Observation#";
    let q = json!({"resourceType": "Questionnaire", "item": [
        {"linkId": "smoker", "type": "boolean", "definition": format!("{o}Observation.value[x]"),
         "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Observation"),
            {"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
                {"url": "definition", "valueUri": format!("{o}Observation.effective")},
                {"url": "expression", "valueExpression": {"language": "text/fhirpath", "expression": "now()"}}]},
            {"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
                {"url": "definition", "valueUri": format!("{o}Observation.code.text")},
                {"url": "fixed-value", "valueString": "Smoker"}]}]},
        {"linkId": "weight", "type": "decimal", "definition": format!("{o}Observation.value[x]:valueQuantity.value"),
         "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Observation"),
            {"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
                {"url": "definition", "valueUri": format!("{o}Observation.code.text")},
                {"url": "fixed-value", "valueString": "Weight"}]}]}
    ]});
    let x = run(
        &q,
        &json!([
            {"linkId": "smoker", "answer": [{"valueBoolean": false}]},
            {"linkId": "weight", "answer": [{"valueDecimal": 70.5}]}
        ]),
    )
    .unwrap();
    assert_eq!(
        resources(&x),
        [
            json!({"resourceType": "Observation", "valueBoolean": false, "effectiveDateTime": NOW, "code": {"text": "Smoker"}, "status": "final"}),
            json!({"resourceType": "Observation", "valueQuantity": {"value": 70.5}, "code": {"text": "Weight"}, "status": "final"})
        ]
    );
}

#[test]
fn an_observation_without_a_code_is_left_out_with_a_warning() {
    let o = "http://hl7.org/fhir/StructureDefinition/Observation#";
    let q = json!({"resourceType": "Questionnaire", "item": [
        {"linkId": "t", "type": "decimal", "definition": format!("{o}Observation.valueQuantity.value"),
         "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Observation")]}]});
    let x = run(
        &q,
        &json!([{"linkId": "t", "answer": [{"valueDecimal": 37.2}]}]),
    )
    .unwrap();
    assert_eq!(resources(&x), Vec::<Value>::new());
    assert_eq!(x.warnings.len(), 1);
    assert!(x.warnings[0].diagnostics.contains("Observation.code"));
}

#[test]
fn a_patient_id_answer_makes_the_entry_a_put() {
    let q = json!({"resourceType": "Questionnaire",
        "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Patient")],
        "item": [{"linkId": "id", "type": "string", "definition": format!("{P}Patient.id")}]});
    let x = run(
        &q,
        &json!([{"linkId": "id", "answer": [{"valueString": "pat-1"}]}]),
    )
    .unwrap();
    assert_eq!(
        x.bundle["entry"][0]["request"],
        json!({"method": "PUT", "url": "Patient/pat-1"})
    );
    let bad = run(
        &q,
        &json!([{"linkId": "id", "answer": [{"valueString": "not an id"}]}]),
    )
    .unwrap_err();
    assert_eq!(bad[0].expression.as_deref(), Some("id"));
}

#[test]
fn sequential_and_random_ids_are_uuids() {
    let ids = SequentialIds::default();
    assert_eq!(ids.uuid(), "00000000-0000-4000-8000-000000000001");
    let a = RandomIds.uuid();
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
    assert_ne!(a, RandomIds.uuid());
}

#[test]
fn odd_form_json_never_panics() {
    let questionnaires = [
        json!({"resourceType": "Questionnaire", "extension": [extract_ext("http://hl7.org/fhir/StructureDefinition/Patient")],
            "item": [{"linkId": "a", "type": "string", "definition": "x#Patient.valueÉtrange.ü"},
                     {"linkId": "b", "type": "string", "definition": "#"},
                     {"linkId": "c", "type": "string", "definition": "x#Patient.name.given.extra",
                      "extension": [{"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
                        {"url": "definition", "valueUri": "x#Patient.deceasedÅ"}, {"url": "fixed-value", "valueé": 1}]},
                        {"url": url::DEFINITION_EXTRACT_VALUE, "extension": [
                        {"url": "definition", "valueUri": "x#Patient.gender"}, {"url": "expression", "valueExpression": {"expression": "'\\"}}]}]},
                     {"linkId": "d", "type": "group", "definition": "x#Patient.birthDate", "item": [{"linkId": "e", "type": "string"}]}]}),
        json!({"resourceType": "Questionnaire", "extension": [{"url": url::DEFINITION_EXTRACT, "extension": [{"url": "definition", "valueCanonical": ""}]}], "item": "not a list"}),
        json!({"resourceType": "Questionnaire", "extension": [{"url": url::TEMPLATE_EXTRACT, "extension": [{"url": "template", "valueReference": {"reference": "#nope"}}]}]}),
    ];
    for q in questionnaires {
        let _ = run(
            &q,
            &json!([
                {"linkId": "a", "answer": [{"valueString": "x"}]},
                {"linkId": "b", "answer": [{"valueString": "x"}]},
                {"linkId": "c", "answer": [{"valueString": "x"}]},
                {"linkId": "d", "item": [{"linkId": "e", "answer": [{"valueString": "x"}]}]}
            ]),
        );
    }
}

/// Extraction evaluates over the response as raw FHIR JSON, validation over the
/// typed response: the same engine, so the same expression gives the same
/// values (three-valued `and`/`or`, `+` on strings, `=`, `today()` the caller's).
#[test]
fn extraction_and_validation_agree_on_the_same_expressions() {
    use shared::fhirpath::{Env, Node};
    let response = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
    "authored": "2026-11-28T22:00:00Z",
    "item": [
        {"linkId": "given", "answer": [{"valueString": "Jane"}]},
        {"linkId": "smoker", "answer": [{"valueBoolean": true}]},
        {"linkId": "count", "answer": [{"valueInteger": 3}]},
        {"linkId": "height", "answer": [{"valueDecimal": 1.72}]},
        {"linkId": "born", "answer": [{"valueDate": "1990-05-01"}]}
    ]});
    let typed: shared::response::QuestionnaireResponse =
        serde_json::from_value(response.clone()).unwrap();
    let form = shared::form::Form {
        id: "t".into(),
        url: None,
        version: None,
        title: "T".into(),
        title_translations: shared::map::Map::new(),
        variables: vec![],
        items: vec![],
    };
    // The caller's date: today() is the date of `now` for both.
    let today = shared::Date::new(2026, 11, 29).ok();
    let value = |link: &str| format!("item.where(linkId = '{link}').answer.value");
    let expressions = [
        "true and {}".to_owned(),
        "false and {}".to_owned(),
        "{} or true".to_owned(),
        "{} or false".to_owned(),
        "{} implies false".to_owned(),
        format!("{} and {}", value("smoker"), value("missing")),
        format!("{} or {}", value("missing"), value("smoker")),
        format!("{} + ' Doe'", value("given")),
        "'QuestionnaireResponse/' + 'x'".to_owned(),
        format!("{} + {}", value("given"), value("missing")),
        format!("{} = 3", value("count")),
        format!("{} = 3.0", value("count")),
        format!("{} = 'Jane'", value("given")),
        format!("{} = 'jane'", value("given")),
        format!("{} ~ 'jane'", value("given")),
        format!("{} = {}", value("count"), value("missing")),
        format!("{} * 100", value("height")),
        "today()".to_owned(),
        format!("{} < today()", value("born")),
        "authored < today()".to_owned(),
        format!("iif({}, 'yes', 'no')", value("smoker")),
        "item.answer.value.count()".to_owned(),
        format!("{}.aggregate($this + $total, 0)", value("count")),
        "today() - 18 years".to_owned(),
        "today() + 1 month".to_owned(),
        format!("{} + 1 year", value("born")),
        format!("{} <= today() - 18 'years'", value("born")),
        format!("{} - 1 'mo'", value("born")),
    ];
    for text in &expressions {
        let by_extraction = evaluate(text, &response, &response, &HashMap::new(), NOW_TODAY);
        let expr = shared::fhirpath::check(text).unwrap();
        let env = Env::new(&form, &typed, today);
        let by_validation = env
            .eval(&expr, &[Node::Response(&typed)])
            .map_err(|_| Unsupported)
            .and_then(|nodes| nodes.iter().map(from_node).collect::<Result<Vec<_>, _>>());
        assert_eq!(by_extraction, by_validation, "{text}");
    }
    // And what they give is FHIRPath's answer, not JSON's.
    let one = |text: &str| evaluate(text, &response, &response, &HashMap::new(), NOW_TODAY);
    assert_eq!(one("true and {}"), Ok(vec![]));
    assert_eq!(
        one(&format!("{} + ' Doe'", value("given"))),
        Ok(vec![json!("Jane Doe")])
    );
    assert_eq!(
        one(&format!("{} = 3.0", value("count"))),
        Ok(vec![json!(true)])
    );
    assert_eq!(one("today()"), Ok(vec![json!("2026-11-29")]));
    // Date arithmetic with calendar durations, the same in a form (the
    // browser and the server's checks) as in extraction.
    assert_eq!(one("today() - 18 years"), Ok(vec![json!("2008-11-29")]));
    let env = Env::new(&form, &typed, today);
    let arithmetic = shared::fhirpath::check("today() - 18 years").unwrap();
    assert_eq!(
        env.eval(&arithmetic, &[Node::Response(&typed)]),
        Ok(vec![Node::Date("2008-11-29".into())])
    );
    let decimal: Value = serde_json::from_str("172.0").unwrap();
    assert_eq!(
        one(&format!("{} * 100", value("height"))),
        Ok(vec![decimal])
    );
}

/// `now()` as the caller gives it; its date is `today()`.
const NOW_TODAY: &str = "2026-11-29T10:00:00.000Z";

#[test]
fn the_sdc_examples_expressions_evaluate_on_the_shared_engine() {
    let resource = json!({"resourceType": "QuestionnaireResponse", "id": "qr1", "authored": "2026-01-02T03:04:05Z"});
    let variables = HashMap::from([("NewPatientId".to_owned(), "urn:uuid:1".to_owned())]);
    let run = |text: &str, focus: &Value| evaluate(text, focus, &resource, &variables, NOW);
    let name = json!({"linkId": "name", "item": [
        {"linkId": "given", "answer": [{"valueString": "Jane"}, {"valueString": "Mary"}]},
        {"linkId": "family", "answer": [{"valueString": "Doe"}]},
        {"linkId": "other", "answer": [{"valueString": "x"}]}
    ]});
    assert_eq!(
        run(
            "item.where(linkId='given' or linkId='family').answer.value.join(' ')",
            &name
        ),
        Ok(vec![json!("Jane Mary Doe")])
    );
    assert_eq!(run("%NewPatientId", &name), Ok(vec![json!("urn:uuid:1")]));
    assert_eq!(
        run("'QuestionnaireResponse/' + %resource.id", &name),
        Ok(vec![json!("QuestionnaireResponse/qr1")])
    );
    assert_eq!(
        run(
            "(%resource.authored | %resource.meta.lastUpdated | now()).first()",
            &name
        ),
        Ok(vec![json!("2026-01-02T03:04:05Z")])
    );
    assert_eq!(run("now()", &name), Ok(vec![json!(NOW)]));
    assert_eq!(run("%resource.author", &name), Ok(vec![]));
    // What the engine refuses is Unsupported, never a guess; hostile input stops.
    for text in [
        "'open".to_owned(),
        String::new(),
        "nosuch()".to_owned(),
        "(".repeat(100_000),
        vec!["1"; 5_000].join(" | "),
        "(1 | 2) + 1".to_owned(),
    ] {
        assert_eq!(run(&text, &json!({})), Err(Unsupported), "{text}");
    }
}
