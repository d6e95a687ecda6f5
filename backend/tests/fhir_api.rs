//! The FHIR API as FHIR clients expect it (issue 15), over HTTP: search modifiers
//! and result parameters implemented or refused, honest refusals (405, 501,
//! 406), `Prefer`, Bundles with GET entries and entry-named issues, `If-Match`
//! and `If-None-Match`, the CapabilityStatement tried item by item, and SDC's
//! `$validate` and `$extract` on posted and stored responses, `$populate` with
//! `x-fhir-query` variables and `itemPopulationContext` groups over real data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Server {
    root: String,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _spawned: common::Spawned,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let spawned = common::spawn_server(dir.path(), &dir.path().join("no-dist")).await;
    Server {
        root: spawned.base.clone(),
        base: format!("{}/fhir", spawned.base),
        client: spawned.client.clone(),
        _dir: dir,
        _spawned: spawned,
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/fhir+json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let a = self.call(Method::GET, path, None, &[]).await;
        (a.status, a.json())
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let a = self.call(Method::POST, path, Some(body), &[]).await;
        (a.status, a.json())
    }

    async fn create(&self, resource: &Value) -> String {
        let t = resource["resourceType"].as_str().unwrap();
        let (status, created) = self.post(&format!("/{t}"), resource).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_str().unwrap().to_owned()
    }

    /// The ids a search finds, in the order given.
    async fn ids(&self, search: &str) -> Vec<String> {
        let (status, bundle) = self.get(search).await;
        assert_eq!(status, StatusCode::OK, "{search}: {bundle}");
        bundle["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn refused(&self, search: &str) -> Value {
        let (status, outcome) = self.get(search).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{search}: {outcome}"
        );
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        outcome
    }
}

fn patient(given: &str, family: &str, birth: &str, gender: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
        "birthDate": birth, "gender": gender})
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn search_modifiers_are_honoured_or_refused() {
    let s = server().await;
    let mut ana = patient("Ana", "Núñez", "1980-03-27", "female");
    ana["identifier"] = json!([{"system": "urn:mrn", "value": "A1"}]);
    let ana = s.create(&ana).await;
    let bo = s.create(&patient("Bo", "Diaz", "1991-01-01", "male")).await;
    let cy = s
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Ortiz", "given": ["Cy"]}]}))
        .await;

    // :not is "none of these values", a resource without any included.
    assert_eq!(
        sorted(s.ids("/Patient?gender:not=female").await),
        sorted(vec![bo.clone(), cy.clone()])
    );
    assert_eq!(
        sorted(s.ids(&format!("/Patient?_id:not={ana}")).await),
        sorted(vec![bo.clone(), cy.clone()])
    );
    // :missing is a presence test, not a value.
    assert_eq!(
        sorted(s.ids("/Patient?identifier:missing=true").await),
        sorted(vec![bo.clone(), cy.clone()])
    );
    assert_eq!(
        s.ids("/Patient?identifier:missing=false").await,
        std::slice::from_ref(&ana)
    );
    assert_eq!(
        s.ids("/Patient?birthdate:missing=true").await,
        std::slice::from_ref(&cy)
    );
    // :contains anywhere in the (folded) text; the default from the start.
    assert_eq!(
        s.ids("/Patient?family:contains=une").await,
        std::slice::from_ref(&ana)
    );
    assert!(s.ids("/Patient?family=une").await.is_empty());
    assert_eq!(
        s.ids("/Patient?family:exact=nunez").await,
        std::slice::from_ref(&ana)
    );
    assert!(s.ids("/Patient?family:exact=nun").await.is_empty());

    // Anything else is refused, naming the parameter, never searched as a value.
    for bad in [
        "/Patient?gender:text=female",
        "/Patient?family:below=x",
        "/Patient?birthdate:not=1980",
        "/Patient?identifier:of-type=x",
        "/Patient?_id:missing=true",
        "/Patient?_count:exact=1",
        "/Patient?identifier:missing=perhaps",
        "/QuestionnaireResponse?subject:Patient=x",
    ] {
        let outcome = s.refused(bad).await;
        let expression = outcome["issue"][0]["expression"][0].as_str().unwrap();
        assert!(bad.contains(expression), "{bad}: {outcome}");
    }
    let outcome = s.refused("/Patient?gender:text=female").await;
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    // A bare id is a Patient where the parameter can only point at one; where
    // it could point at several it is refused, not compared whole (nothing).
    let obs = s
        .create(&json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "smoker"}, "subject": {"reference": format!("Patient/{ana}")}}))
        .await;
    assert_eq!(
        s.ids(&format!("/Observation?patient={ana}")).await,
        std::slice::from_ref(&obs)
    );
    let outcome = s.refused(&format!("/Observation?subject={ana}")).await;
    assert_eq!(outcome["issue"][0]["code"], "not-supported", "{outcome}");
    // Any text in a date, a character of several bytes included: 422, not a panic.
    for bad in [
        "2026-01-0é",
        "2026-01-01Té",
        "éé",
        "ge2026-01-01T10:00:00+0é",
    ] {
        let q = serde_urlencoded::to_string([("_lastUpdated", bad)]).unwrap();
        s.refused(&format!("/Patient?{q}")).await;
    }
}

#[tokio::test]
async fn result_parameters_are_implemented_or_refused() {
    let s = server().await;
    let mut ids = Vec::new();
    for (given, family, birth) in [
        ("Cy", "Baker", "1990-05-05"),
        ("Ana", "Carter", "1970-01-01"),
        ("Bo", "Adams", "1980-02-02"),
    ] {
        let mut p = patient(given, family, birth, "female");
        p["multipleBirthBoolean"] = json!(false);
        ids.push(s.create(&p).await);
    }
    let (baker, carter, adams) = (ids[0].clone(), ids[1].clone(), ids[2].clone());

    // _count=0 and _summary=count: the total only, and no next link to loop on.
    for q in ["/Patient?_count=0", "/Patient?_summary=count"] {
        let (status, bundle) = s.get(q).await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert_eq!(bundle["total"], 3, "{q}");
        assert!(bundle.get("entry").is_none(), "{q}: {bundle}");
        let links = bundle["link"].as_array().unwrap();
        assert!(
            links.iter().all(|l| l["relation"] != "next"),
            "{q}: {bundle}"
        );
    }
    // _total and fhirpy's _totalMethod are honoured: the total is always exact.
    for q in [
        "/Patient?_total=accurate",
        "/Patient?_totalMethod=count",
        "/Patient?_total=estimate",
        "/Patient?_total=none",
    ] {
        let (status, bundle) = s.get(q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {bundle}");
        assert_eq!(bundle["total"], 3, "{q}");
    }
    s.refused("/Patient?_total=exactish").await;

    // _summary=true: the summary elements, tagged SUBSETTED.
    let (_, bundle) = s.get("/Patient?_summary=true").await;
    for e in bundle["entry"].as_array().unwrap() {
        let r = &e["resource"];
        assert!(r["birthDate"].is_string(), "{r}");
        assert!(r.get("multipleBirthBoolean").is_none(), "{r}");
        assert!(
            r["meta"]["tag"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["code"] == "SUBSETTED"),
            "{r}"
        );
    }
    // _elements: those asked for (and id, meta).
    let (_, bundle) = s.get("/Patient?_elements=birthDate").await;
    let r = &bundle["entry"][0]["resource"];
    assert!(r["birthDate"].is_string() && r["id"].is_string(), "{r}");
    assert!(r.get("name").is_none() && r.get("gender").is_none(), "{r}");
    for bad in [
        "/Patient?_summary=bogus",
        "/Patient?_summary=text",
        "/Patient?_summary=data",
        "/Patient?_elements=name.family",
        "/Patient?_summary=true&_elements=name",
    ] {
        let outcome = s.refused(bad).await;
        assert!(
            ["not-supported", "value"].contains(&outcome["issue"][0]["code"].as_str().unwrap()),
            "{bad}: {outcome}"
        );
    }

    // _sort on the declared parameters, - for descending.
    assert_eq!(
        s.ids("/Patient?_sort=birthdate").await,
        [carter.clone(), adams.clone(), baker.clone()]
    );
    assert_eq!(
        s.ids("/Patient?_sort=-birthdate").await,
        [baker.clone(), adams.clone(), carter.clone()]
    );
    assert_eq!(
        s.ids("/Patient?_sort=family").await,
        [adams.clone(), baker.clone(), carter.clone()]
    );
    assert_eq!(
        s.ids("/Patient?_sort=given").await,
        [carter.clone(), adams.clone(), baker.clone()]
    );
    assert_eq!(s.ids("/Patient?_sort=-_lastUpdated,family").await.len(), 3);
    let outcome = s.refused("/Patient?_sort=gender").await;
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    s.refused("/Patient?_sort=nonsense").await;

    // Paging to the end with the links, in the sorted order.
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/Patient?_sort=family&_count=1", s.base));
    while let Some(url) = next {
        let bundle: Value = s
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(bundle["total"], 3);
        for e in bundle["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_owned());
        }
        next = bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        assert!(seen.len() <= 3, "paging does not end");
    }
    assert_eq!(seen, [adams, baker, carter]);
}

#[tokio::test]
async fn unsupported_interactions_are_405_or_501_never_403() {
    let s = server().await;
    let id = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    for (method, path, allow) in [
        (Method::DELETE, format!("/Patient/{id}"), "PUT"),
        (Method::PATCH, format!("/Patient/{id}"), "PUT"),
        (Method::DELETE, "/Patient?family=diaz".to_owned(), "POST"),
        (Method::PUT, "/Patient?family=diaz".to_owned(), "POST"),
        (
            Method::DELETE,
            "/Questionnaire/registration".to_owned(),
            "PUT",
        ),
        (Method::GET, String::new(), "POST"),
    ] {
        let a = s.call(method.clone(), &path, Some(&json!({})), &[]).await;
        let what = format!("{method} {path}: {} {}", a.status, a.text);
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert!(a.header("allow").contains(allow), "{what}");
        assert_eq!(a.json()["issue"][0]["code"], "not-supported", "{what}");
    }
    // Nothing was deleted.
    assert_eq!(s.get(&format!("/Patient/{id}")).await.0, StatusCode::OK);
    // An operation this server does not have: 501.
    for method in [Method::GET, Method::POST] {
        let a = s
            .call(
                method,
                &format!("/Patient/{id}/$everything"),
                Some(&json!({})),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{}", a.text);
        assert_eq!(a.json()["issue"][0]["code"], "not-supported");
    }
    let a = s.call(Method::GET, "/Patient/$everything", None, &[]).await;
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{}", a.text);

    // POST _search is a search.
    let a = s
        .client
        .post(format!("{}/Patient/_search", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=diaz")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::OK);
    let bundle: Value = a.json().await.unwrap();
    assert_eq!(bundle["total"], 1);
    assert_eq!(bundle["entry"][0]["resource"]["id"], id.as_str());

    // $validate on any served type: 200 with an OperationOutcome.
    let (status, outcome) = s
        .post(
            "/Patient/$validate",
            &patient("Bo", "Diaz", "1990-01-01", "male"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["issue"][0]["severity"], "information");
    let (status, outcome) = s
        .post(
            "/Patient/$validate",
            &json!({"resourceType": "Parameters", "parameter": [{"name": "resource",
                "resource": {"resourceType": "Patient", "birthDate": "1990-13-01"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.birthDate");

    // POST /fhir/Questionnaire creates a form under an id the server chooses.
    let form = json!({"resourceType": "Questionnaire", "status": "active",
        "url": "http://example.org/q/posted",
        "item": [{"linkId": "a", "text": "A", "type": "string"}]});
    let a = s
        .call(Method::POST, "/Questionnaire", Some(&form), &[])
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let location = a.header("location").to_owned();
    let id = a.json()["id"].as_str().unwrap().to_owned();
    assert!(
        location.contains(&format!("/Questionnaire/{id}/_history/1")),
        "{location}"
    );
    assert_eq!(
        s.get(&format!("/Questionnaire/{id}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_base_with_a_trailing_slash_is_the_base() {
    let s = server().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("Ana", "Diaz", "1980-03-27", "female"), "request": {"method": "POST", "url": "Patient"}}]});
    let (status, answer) = s.post("/", &bundle).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["type"], "transaction-response");
    let a = s.call(Method::GET, "/", None, &[]).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", a.text);
    assert_eq!(
        a.json()["resourceType"],
        "OperationOutcome",
        "not the app's HTML"
    );
}

#[tokio::test]
async fn formats_other_than_json_are_406() {
    let s = server().await;
    for (path, accept) in [
        ("/metadata", "application/fhir+xml"),
        ("/Patient", "application/xml"),
        ("/Patient?_format=xml", "application/fhir+json"),
        ("/Patient?_format=application/fhir%2Bxml", "*/*"),
        (
            "/metadata",
            "application/fhir+json;q=0, application/fhir+xml",
        ),
    ] {
        let a = s.call(Method::GET, path, None, &[("accept", accept)]).await;
        assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE, "{path} {accept}");
        assert_eq!(a.json()["issue"][0]["code"], "not-supported");
    }
    for (path, accept) in [
        ("/metadata", "application/fhir+json"),
        ("/Patient?_format=json", "application/json"),
        ("/Patient?_format=application/fhir%2Bjson", "*/*"),
        ("/Patient", "application/fhir+json; fhirVersion=4.0"),
        ("/Patient", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ] {
        let a = s.call(Method::GET, path, None, &[("accept", accept)]).await;
        assert_eq!(a.status, StatusCode::OK, "{path} {accept}: {}", a.text);
    }
}

#[tokio::test]
async fn writes_answer_as_prefer_asks() {
    let s = server().await;
    let body = patient("Ana", "Diaz", "1980-03-27", "female");
    let a = s
        .call(
            Method::POST,
            "/Patient",
            Some(&body),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(a.text.is_empty(), "{}", a.text);
    assert_eq!(a.header("etag"), "W/\"1\"");
    assert!(!a.header("last-modified").is_empty());
    let location = a.header("location").to_owned();
    let id = location.split('/').nth(3).unwrap().to_owned();

    let a = s
        .call(
            Method::PUT,
            &format!("/Patient/{id}"),
            Some(&{
                let mut b = body.clone();
                b["id"] = json!(id);
                b["gender"] = json!("other");
                b
            }),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["resourceType"], "OperationOutcome");
    assert_eq!(a.json()["issue"][0]["severity"], "information");
    let a = s
        .call(
            Method::POST,
            "/Patient",
            Some(&body),
            &[("prefer", "return=representation")],
        )
        .await;
    assert_eq!(a.json()["resourceType"], "Patient");

    // A transaction's entries carry the resources by default, none when minimal.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": body, "request": {"method": "POST", "url": "Patient"}}]});
    let (_, answer) = s.post("", &bundle).await;
    assert_eq!(answer["entry"][0]["resource"]["resourceType"], "Patient");
    let a = s
        .call(
            Method::POST,
            "",
            Some(&bundle),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert!(a.json()["entry"][0].get("resource").is_none(), "{}", a.text);
    assert!(a.json()["entry"][0]["response"]["location"].is_string());
    let a = s
        .call(
            Method::POST,
            "",
            Some(&bundle),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(
        a.json()["entry"][0]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    // The Questionnaire routes too.
    let form = json!({"resourceType": "Questionnaire", "status": "active",
        "item": [{"linkId": "a", "text": "A", "type": "string"}]});
    let a = s
        .call(
            Method::PUT,
            "/Questionnaire/prefer",
            Some(&form),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(a.text.is_empty());
}

#[tokio::test]
async fn bundles_take_get_entries_and_name_each_entry() {
    let s = server().await;
    let ana = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{ana}")}},
        {"request": {"method": "GET", "url": "Patient?family=diaz"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
        {"resource": {"resourceType": "Patient", "birthDate": "1980-13-01"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": format!("Patient/{ana}/_history/1")}},
        {"request": {"method": "GET", "url": "Patient?gender:text=x"}},
        {"request": {"method": "GET", "url": "Questionnaire/registration"}},
    ]});
    let (status, answer) = s.post("", &batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let entries = answer["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(entries[0]["resource"]["id"], ana.as_str());
    assert_eq!(entries[1]["resource"]["resourceType"], "Bundle");
    assert_eq!(entries[1]["resource"]["total"], 1);
    assert!(
        entries[2]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    assert!(
        entries[3]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("422")
    );
    assert_eq!(
        entries[3]["response"]["outcome"]["issue"][0]["expression"][0],
        "Bundle.entry[3].resource.birthDate"
    );
    assert_eq!(entries[4]["resource"]["meta"]["versionId"], "1");
    assert!(
        entries[5]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("422")
    );
    assert_eq!(entries[6]["resource"]["resourceType"], "Questionnaire");
    assert_eq!(entries[6]["resource"]["id"], "registration");

    // A transaction's writes, then its reads, which see them.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a1c1e2b-0000-4000-8000-000000000001",
         "resource": patient("Bo", "Diaz", "1990-01-01", "male"), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient?family=diaz&_summary=count"}},
    ]});
    let (status, answer) = s.post("", &tx).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(answer["entry"][1]["resource"]["total"], 2);
    // A bad entry of a transaction is named by its place in the Bundle.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient?family=diaz"}},
        {"resource": {"resourceType": "Patient", "gender": "sometimes"}, "request": {"method": "POST", "url": "Patient"}},
    ]});
    let (status, outcome) = s.post("", &tx).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[1].resource.gender"
    );
    // A plain POST names the resource's element, not transaction internals.
    let (status, outcome) = s
        .post(
            "/Patient",
            &json!({"resourceType": "Patient", "birthDate": "1980-13-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.birthDate");
}

#[tokio::test]
async fn if_match_is_honoured_on_every_update_and_reads_answer_304() {
    let s = server().await;
    let form = |text: &str| {
        json!({"resourceType": "Questionnaire", "status": "active",
            "item": [{"linkId": "a", "text": text, "type": "string"}]})
    };
    let put = |tag: &'static str, body: Value| {
        let s = &s;
        async move {
            s.call(
                Method::PUT,
                "/Questionnaire/edited",
                Some(&body),
                &[("if-match", tag)],
            )
            .await
        }
    };
    let a = s
        .call(
            Method::PUT,
            "/Questionnaire/edited",
            Some(&form("one")),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(!a.header("last-modified").is_empty());
    assert_eq!(put("W/\"1\"", form("two")).await.status, StatusCode::OK);
    // Stale: 412, and the form is unchanged.
    let a = put("W/\"1\"", form("three")).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.text);
    let a = put("nonsense", form("three")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let (_, stored) = s.get("/Questionnaire/edited").await;
    assert_eq!(stored["item"][0]["text"], "two");
    assert_eq!(stored["meta"]["versionId"], "2");

    // The store's resources: malformed is 400 too.
    let id = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let mut p = patient("Ana", "Diaz", "1980-03-27", "other");
    p["id"] = json!(id);
    let a = s
        .call(
            Method::PUT,
            &format!("/Patient/{id}"),
            Some(&p),
            &[("if-match", "W/\"x\"")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.json()["issue"][0]["expression"][0], "If-Match");
    let a = s
        .call(
            Method::PUT,
            &format!("/Patient/{id}"),
            Some(&p),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.text);

    // Reads: Last-Modified, and 304 for the version the client has.
    for path in [format!("/Patient/{id}"), "/Questionnaire/edited".to_owned()] {
        let a = s.call(Method::GET, &path, None, &[]).await;
        let modified = httpdate_ok(a.header("last-modified"));
        assert!(modified, "{path}: {:?}", a.headers);
        let etag = a.header("etag").to_owned();
        let a = s
            .call(Method::GET, &path, None, &[("if-none-match", &etag)])
            .await;
        assert_eq!(a.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(a.text.is_empty());
        let a = s
            .call(Method::GET, &path, None, &[("if-none-match", "W/\"99\"")])
            .await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
    }
}

/// An HTTP date: `Mon, 07 Dec 2026 19:00:00 GMT`.
fn httpdate_ok(v: &str) -> bool {
    v.ends_with(" GMT") && v.len() == 29 && v.as_bytes()[3] == b','
}

#[tokio::test]
async fn the_capability_statement_is_tried_item_by_item() {
    // Everything /metadata declares is tried: each interaction and flag, each
    // search parameter with a value that must find the example and one that must
    // not (a parameter accepted and ignored fails here), each operation.
    let s = server().await;
    let (_, cs) = s.get("/metadata").await;
    let patient_id = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let subject = format!("Patient/{patient_id}");
    let examples = |t: &str| -> Value {
        let mut example = match t {
            "Patient" => {
                let mut p = patient("Bo", "Diaz", "1990-01-01", "male");
                p["telecom"] = json!([{"system": "phone", "value": "555-0100"},
                    {"system": "email", "value": "bo@example.org"}]);
                p["address"] = json!([{"postalCode": "02139"}]);
                p
            }
            "QuestionnaireResponse" => json!({"resourceType": t, "status": "completed",
                "questionnaire": "http://example.org/q", "subject": {"reference": subject}}),
            "Provenance" => json!({"resourceType": t, "target": [{"reference": subject}],
                "recorded": "2026-12-01T10:00:00Z", "agent": [{"who": {"display": "Intake"}}]}),
            "Task" => json!({"resourceType": t, "status": "requested", "intent": "order",
                "focus": {"reference": subject}}),
            "RelatedPerson" => json!({"resourceType": t, "patient": {"reference": subject}}),
            "Observation" => json!({"resourceType": t, "status": "final",
                "code": {"text": "smoker"}, "subject": {"reference": subject}}),
            "Questionnaire" => {
                return json!({"resourceType": t, "status": "active",
                "url": "http://example.org/q/cs",
                "item": [{"linkId": "a", "text": "A", "type": "string"}]});
            }
            _ => return Value::Null,
        };
        let identifier = json!({"system": "urn:cs", "value": format!("{t}-1")});
        match t {
            "Provenance" => {}
            // R4: one identifier on a response, a list elsewhere.
            "QuestionnaireResponse" => example["identifier"] = identifier,
            _ => example["identifier"] = json!([identifier]),
        }
        example["meta"] = json!({"tag": [{"system": "urn:cs", "code": "tagged"}]});
        example
    };
    // The tests' own token, as the audit trail names the agent.
    let (_, events) = s.get(&format!("/AuditEvent?patient={patient_id}")).await;
    let agent = events["entry"][0]["resource"]["agent"][0]["who"]["identifier"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // (a value that finds the example, one that does not).
    let probes = |t: &str, name: &str, id: &str| -> (String, String) {
        let pair = |hit: &str, miss: &str| (hit.to_owned(), miss.to_owned());
        match (t, name) {
            ("AuditEvent", "patient") => pair(&patient_id, "nobody"),
            ("AuditEvent", "agent") => pair(&agent, "nobody-at-all"),
            ("AuditEvent", "date") => pair("ge2000-01-01", "le2000-01-01"),
            (_, "_id") => pair(id, "nobody"),
            (_, "_lastUpdated") => pair("ge2000-01-01", "lt2000-01-01"),
            (_, "_tag") => pair("urn:cs|tagged", "urn:cs|other"),
            (_, "identifier") => (format!("urn:cs|{t}-1"), "urn:cs|none".into()),
            (_, "subject" | "patient" | "target" | "focus") => {
                (subject.clone(), "Patient/nobody".into())
            }
            (_, "family") => pair("Diaz", "Zed"),
            (_, "given" | "name") => pair("Bo", "Zed"),
            (_, "birthdate") => pair("1990-01-01", "1901-01-01"),
            (_, "gender") => pair("male", "other"),
            (_, "phone") => pair("5550100", "5550199"),
            (_, "email") => pair("bo@example.org", "no@example.org"),
            (_, "address-postalcode") => pair("02139", "99999"),
            ("QuestionnaireResponse", "status") => pair("completed", "amended"),
            ("Task", "status") => pair("requested", "completed"),
            ("QuestionnaireResponse", "questionnaire") => {
                pair("http://example.org/q", "http://example.org/none")
            }
            ("Questionnaire", "url") => pair("http://example.org/q/cs", "http://example.org/none"),
            _ => panic!("no probe for {t}?{name}: add one"),
        }
    };
    // The SDC operations that exist are declared (they were missing).
    let declared = |t: &str| -> Vec<String> {
        cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == t)
            .flat_map(|r| r["operation"].as_array().cloned().unwrap_or_default())
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        sorted(declared("QuestionnaireResponse")),
        ["extract", "validate"]
    );
    assert!(declared("Questionnaire").contains(&"populate".to_owned()));
    assert!(declared("Patient").contains(&"match".to_owned()));
    let mut tried = 0;
    for r in cs["rest"][0]["resource"].as_array().unwrap() {
        let t = r["type"].as_str().unwrap();
        let codes: Vec<&str> = r["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        for code in &codes {
            assert!(
                [
                    "create",
                    "update",
                    "read",
                    "vread",
                    "history-instance",
                    "search-type"
                ]
                .contains(code),
                "{t} declares {code}, which this test does not try: add it"
            );
        }
        let mut id = None;
        if codes.contains(&"create") {
            let a = s
                .call(Method::POST, &format!("/{t}"), Some(&examples(t)), &[])
                .await;
            assert_eq!(a.status, StatusCode::CREATED, "create {t}: {}", a.text);
            id = a.json()["id"].as_str().map(str::to_owned);
            tried += 1;
        }
        if r["conditionalCreate"] == true {
            let id = id.clone().unwrap();
            let a = s
                .call(
                    Method::POST,
                    &format!("/{t}"),
                    Some(&examples(t)),
                    &[("If-None-Exist", &format!("_id={id}"))],
                )
                .await;
            assert_eq!(
                a.status,
                StatusCode::OK,
                "conditional create {t}: {}",
                a.text
            );
            assert_eq!(a.json()["id"], id.as_str());
            tried += 1;
        }
        if codes.contains(&"update") {
            let id = id.clone().unwrap_or_else(|| "tried".to_owned());
            let mut body = examples(t);
            body["id"] = json!(id);
            let a = s
                .call(Method::PUT, &format!("/{t}/{id}"), Some(&body), &[])
                .await;
            assert!(a.status.is_success(), "update {t}: {} {}", a.status, a.text);
            tried += 1;
        }
        if r["updateCreate"] == true {
            let new = format!("cs-{}", t.to_lowercase());
            let mut body = examples(t);
            body["id"] = json!(new);
            let a = s
                .call(Method::PUT, &format!("/{t}/{new}"), Some(&body), &[])
                .await;
            assert_eq!(
                a.status,
                StatusCode::CREATED,
                "update as create {t}: {}",
                a.text
            );
            tried += 1;
        }
        let id = id.unwrap_or_else(|| "tried".to_owned());
        for (code, path) in [
            ("read", format!("/{t}/{id}")),
            ("vread", format!("/{t}/{id}/_history/1")),
            ("history-instance", format!("/{t}/{id}/_history")),
        ] {
            if codes.contains(&code) {
                let (status, body) = s.get(&path).await;
                assert_eq!(status, StatusCode::OK, "{code} {t}: {body}");
                tried += 1;
            }
        }
        if r["conditionalRead"] == "not-match" {
            let a = s.call(Method::GET, &format!("/{t}/{id}"), None, &[]).await;
            let etag = a.header("etag").to_owned();
            let again = s
                .call(
                    Method::GET,
                    &format!("/{t}/{id}"),
                    None,
                    &[("If-None-Match", &etag)],
                )
                .await;
            assert_eq!(
                again.status,
                StatusCode::NOT_MODIFIED,
                "conditional read {t}"
            );
            tried += 1;
        }
        assert!(codes.contains(&"search-type"), "{t}");
        for p in r["searchParam"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            let (hit, miss) = probes(t, name, &id);
            let found = |bundle: &Value| -> Vec<String> {
                bundle["entry"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_owned())
                    .collect()
            };
            let mut results = Vec::new();
            for value in [&hit, &miss] {
                let q = serde_urlencoded::to_string([(name, value)]).unwrap();
                let (status, body) = s.get(&format!("/{t}?{q}")).await;
                assert_eq!(status, StatusCode::OK, "{t}?{q}: {body}");
                assert_eq!(body["type"], "searchset");
                results.push(found(&body));
            }
            if t == "AuditEvent" {
                assert!(!results[0].is_empty(), "{t}?{name}={hit} finds nothing");
                assert!(results[1].is_empty(), "{t}?{name}={miss} finds something");
            } else {
                assert!(results[0].contains(&id), "{t}?{name}={hit} misses {id}");
                assert!(!results[1].contains(&id), "{t}?{name}={miss} finds {id}");
            }
            tried += 1;
        }
        for op in r["operation"].as_array().cloned().unwrap_or_default() {
            let name = op["name"].as_str().unwrap();
            let a = s
                .call(
                    Method::POST,
                    &format!("/{t}/${name}"),
                    Some(&examples(t)),
                    &[],
                )
                .await;
            assert!(
                ![404, 405, 501].contains(&a.status.as_u16()),
                "${name} on {t}: {} {}",
                a.status,
                a.text
            );
            tried += 1;
        }
    }
    for i in cs["rest"][0]["interaction"].as_array().unwrap() {
        let kind = i["code"].as_str().unwrap();
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": examples("Patient"), "request": {"method": "POST", "url": "Patient"}}]});
        let (status, answer) = s.post("", &bundle).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {answer}");
        tried += 1;
    }
    assert!(tried > 80, "{tried}");
}

#[tokio::test]
async fn sdc_validate_checks_structure_and_extract_takes_the_questionnaire() {
    let s = server().await;
    common::registration::import(&s.client, &s.root).await;
    let good = common::registration::response("Ana", "Diaz", "1980-03-27", None);
    let (status, outcome) = s.post("/QuestionnaireResponse/$validate", &good).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(outcome["issue"][0]["severity"], "information", "{outcome}");
    for (change, at) in [
        (json!({"status": "bogus"}), "QuestionnaireResponse.status"),
        (json!({"foo": 1}), "QuestionnaireResponse"),
    ] {
        let mut bad = good.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (status, outcome) = s.post("/QuestionnaireResponse/$validate", &bad).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            outcome["issue"][0]["severity"], "error",
            "{change}: {outcome}"
        );
        assert_eq!(outcome["issue"][0]["expression"][0], at, "{outcome}");
    }

    // $extract with the form given as SDC's `questionnaire` parameter: the
    // response may name a form this server does not have.
    let mut elsewhere = good.clone();
    elsewhere["questionnaire"] = json!("http://elsewhere.example/Questionnaire/reg");
    let mut form = common::registration::form();
    form["url"] = json!("http://elsewhere.example/Questionnaire/reg");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "questionnaire-response", "resource": elsewhere},
        {"name": "questionnaire", "resource": form}]});
    let (status, extracted) = s.post("/QuestionnaireResponse/$extract", &params).await;
    assert_eq!(status, StatusCode::OK, "{extracted}");
    let bundle = if extracted["resourceType"] == "Parameters" {
        extracted["parameter"][0]["resource"].clone()
    } else {
        extracted
    };
    assert!(
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Patient"),
        "{bundle}"
    );
    // Without it, that response names an unknown form: 422.
    let (status, _) = s
        .post(
            "/QuestionnaireResponse/$extract",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "questionnaire-response", "resource": params["parameter"][0]["resource"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // On a stored response.
    let id = s.create(&good).await;
    let (status, outcome) = s
        .post(
            &format!("/QuestionnaireResponse/{id}/$validate"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["issue"][0]["severity"], "information", "{outcome}");
    let (status, extracted) = s
        .post(&format!("/QuestionnaireResponse/{id}/$extract"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{extracted}");
    let (status, _) = s
        .post("/QuestionnaireResponse/nobody/$extract", &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_intake_retried_with_its_keys_reordered_is_the_same_submission() {
    let s = server().await;
    common::registration::import(&s.client, &s.root).await;
    let mut body = common::registration::response("Ana", "Diaz", "1980-03-27", None);
    body["extension"] = json!([{"url": "http://example.org/score", "valueDecimal": 1.5}]);
    let (status, first) = common::registration::submit(&s.client, &s.root, "retry-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The same content, keys in reverse order and a number written otherwise.
    fn reversed(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let fields: Vec<String> = m
                    .iter()
                    .rev()
                    .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), reversed(v)))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
            Value::Array(a) => {
                format!("[{}]", a.iter().map(reversed).collect::<Vec<_>>().join(","))
            }
            other => other.to_string(),
        }
    }
    let text = reversed(&body).replace("1.5", "15e-1");
    assert!(text.contains("15e-1"));
    assert_ne!(text, body.to_string());
    let r = s
        .client
        .post(format!("{}/api/intakes", s.root))
        .header("content-type", "application/fhir+json")
        .header("idempotency-key", "retry-1")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["intake"], first["intake"]);
    // Different content under the key is still refused.
    let other = common::registration::response("Bo", "Diaz", "1980-03-27", None);
    let (status, _) = common::registration::submit(&s.client, &s.root, "retry-1", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn populate_prefills_from_the_patients_chart_and_refuses_what_it_cannot() {
    let s = server().await;
    let form = json!({"resourceType": "Questionnaire", "status": "active",
    "url": "http://example.org/q/populate",
    "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-launchContext",
        "extension": [{"url": "name", "valueCoding": {"system": "http://hl7.org/fhir/uv/sdc/CodeSystem/launchContext", "code": "patient"}},
            {"url": "type", "valueCode": "Patient"}]}],
    "item": [
        {"linkId": "birth", "text": "Birth date", "type": "date",
         "extension": [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
            "valueExpression": {"language": "text/fhirpath", "expression": "%patient.birthDate"}}]},
        {"linkId": "note", "text": "Note", "type": "string", "initial": [{"valueString": "none"}]}
    ]});
    let a = s
        .call(Method::PUT, "/Questionnaire/populate", Some(&form), &[])
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let id = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let answers = |params: &Value| {
        let response = params["parameter"][0]["resource"].clone();
        assert_eq!(
            response["resourceType"], "QuestionnaireResponse",
            "{params}"
        );
        assert_eq!(response["status"], "in-progress");
        response
    };
    let find = |response: &Value, link: &str| -> Value {
        response["item"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["linkId"] == link)
            .map(|i| i["answer"][0].clone())
            .unwrap_or(Value::Null)
    };
    let (status, params) = s
        .post(
            "/Questionnaire/populate/$populate",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "subject", "valueReference": {"reference": format!("Patient/{id}")}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{params}");
    let response = answers(&params);
    assert_eq!(
        find(&response, "birth")["valueDate"],
        "1980-03-27",
        "{response}"
    );
    assert_eq!(find(&response, "note")["valueString"], "none");
    assert_eq!(response["subject"]["reference"], format!("Patient/{id}"));
    // By canonical, the patient as the launch context.
    let (status, params) = s
        .post(
            "/Questionnaire/$populate",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "canonical", "valueCanonical": "http://example.org/q/populate"},
                {"name": "context", "part": [
                    {"name": "name", "valueString": "patient"},
                    {"name": "content", "valueReference": {"reference": format!("Patient/{id}")}}]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{params}");
    assert_eq!(find(&answers(&params), "birth")["valueDate"], "1980-03-27");
    // No such patient: 422; no such form: 404.
    let (status, _) = s
        .post(
            "/Questionnaire/populate/$populate",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "subject", "valueReference": {"reference": "Patient/nobody"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s
        .post(
            "/Questionnaire/nothing/$populate",
            &json!({"resourceType": "Parameters"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A form that populates from a query: refused, naming where, not skipped.
    let mut queried = form.clone();
    queried["item"][0]["extension"][0]["valueExpression"] = json!({"language": "application/x-fhir-query", "expression": "Observation?subject={{%patient.id}}"});
    let a = s
        .call(Method::PUT, "/Questionnaire/queried", Some(&queried), &[])
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let (status, outcome) = s
        .post(
            "/Questionnaire/queried/$populate",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "subject", "valueReference": {"reference": format!("Patient/{id}")}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
    assert!(
        outcome["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .starts_with("Questionnaire.item[0]"),
        "{outcome}"
    );
}

#[tokio::test]
async fn questionnaire_search_refuses_what_it_does_not_know() {
    let s = server().await;
    let form = json!({"resourceType": "Questionnaire", "status": "active",
        "url": "http://example.org/q/searched",
        "item": [{"linkId": "a", "text": "A", "type": "string"}]});
    let a = s
        .call(Method::PUT, "/Questionnaire/searched", Some(&form), &[])
        .await;
    assert!(a.status.is_success());
    let (status, bundle) = s
        .get("/Questionnaire?url=http://example.org/q/searched")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bundle["total"], 1);
    for bad in [
        "/Questionnaire?url=http://example.org/q/searched&_summary=count",
        "/Questionnaire?url:contains=example",
        "/Questionnaire?title=A",
    ] {
        s.refused(bad).await;
    }
}

#[tokio::test]
async fn a_read_shows_what_its_query_asks_or_refuses_it() {
    let s = server().await;
    let mut p = patient("Ana", "Diaz", "1980-03-27", "female");
    p["multipleBirthBoolean"] = json!(false);
    let id = s.create(&p).await;
    let (status, read) = s.get(&format!("/Patient/{id}?_elements=birthDate")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        read.get("name").is_none() && read["birthDate"].is_string(),
        "{read}"
    );
    let (_, read) = s
        .get(&format!("/Patient/{id}/_history/1?_summary=true"))
        .await;
    assert!(
        read.get("multipleBirthBoolean").is_none() && read["name"].is_array(),
        "{read}"
    );
    let (_, read) = s.get(&format!("/Patient/{id}?_summary=false")).await;
    assert_eq!(read["multipleBirthBoolean"], false);
    for bad in ["?_summary=count", "?family=x", "?_elements=name.given"] {
        s.refused(&format!("/Patient/{id}{bad}")).await;
    }
}

const VARIABLE: &str = "http://hl7.org/fhir/StructureDefinition/variable";
const POPULATION_CONTEXT: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-itemPopulationContext";
const INITIAL: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression";

fn expression(url: &str, name: Option<&str>, language: &str, text: &str) -> Value {
    let mut x = json!({"language": language, "expression": text});
    if let Some(name) = name {
        x["name"] = json!(name);
    }
    json!({"url": url, "valueExpression": x})
}

fn initial(text: &str) -> Value {
    json!([expression(INITIAL, None, "text/fhirpath", text)])
}

/// A form that reads the chart beyond the Patient: `%observations` from an
/// x-fhir-query variable, a repeating group per RelatedPerson (a query context)
/// and one per Observation (a FHIRPath context over the variable's Bundle).
fn history_form(observations_query: &str) -> Value {
    json!({"resourceType": "Questionnaire", "status": "active",
    "url": "http://example.org/q/history",
    "extension": [
        {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-launchContext",
         "extension": [{"url": "name", "valueCoding": {"system": "http://hl7.org/fhir/uv/sdc/CodeSystem/launchContext", "code": "patient"}},
            {"url": "type", "valueCode": "Patient"}]},
        expression(VARIABLE, Some("observations"), "application/x-fhir-query", observations_query)],
    "item": [
        {"linkId": "family", "text": "Family name", "type": "string",
         "extension": initial("%patient.name.first().family")},
        {"linkId": "on-file", "text": "Observations on file", "type": "integer",
         "extension": initial("%observations.entry.count()")},
        {"linkId": "contacts", "text": "Contacts", "type": "group", "repeats": true,
         "extension": [expression(POPULATION_CONTEXT, Some("contact"), "application/x-fhir-query",
            "RelatedPerson?patient={{%patient.id}}")],
         "item": [{"linkId": "contact-name", "text": "Name", "type": "string",
            "extension": initial("%contact.name.first().family")}]},
        {"linkId": "findings", "text": "Findings", "type": "group", "repeats": true,
         "extension": [expression(POPULATION_CONTEXT, Some("obs"), "text/fhirpath",
            "%observations.entry.resource")],
         "item": [{"linkId": "finding", "text": "Finding", "type": "string",
            "extension": initial("%obs.code.text")}]}
    ]})
}

/// Each answer of the items `link` in `items` and every group below, as text.
fn answers_of(items: &Value, link: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in items.as_array().into_iter().flatten() {
        if item["linkId"] == link {
            for a in item["answer"].as_array().into_iter().flatten() {
                let v = a
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(k, _)| k.starts_with("value"))
                    .map(|(_, v)| v.clone())
                    .unwrap();
                out.push(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            }
        }
        out.extend(answers_of(&item["item"], link));
    }
    out
}

fn groups(response: &Value, link: &str) -> usize {
    response["item"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["linkId"] == link)
        .count()
}

#[tokio::test]
async fn populate_runs_x_fhir_queries_and_fills_a_group_per_context_resource() {
    let s = server().await;
    let ana = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let bo = s.create(&patient("Bo", "Ruiz", "1990-01-01", "male")).await;
    let of = |p: &str| json!({"reference": format!("Patient/{p}")});
    let mut found = Vec::new();
    for family in ["Lopez", "Vega"] {
        found.push(
            s.create(
                &json!({"resourceType": "RelatedPerson", "patient": of(&ana),
                "name": [{"family": family}]}),
            )
            .await,
        );
    }
    for text in ["smoker", "asthma"] {
        found.push(
            s.create(&json!({"resourceType": "Observation", "status": "final",
                "code": {"text": text}, "subject": of(&ana)}))
                .await,
        );
    }
    // Another patient's: never in Ana's form.
    s.create(&json!({"resourceType": "RelatedPerson", "patient": of(&bo), "name": [{"family": "Other"}]}))
        .await;
    s.create(&json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "diabetes"}, "subject": of(&bo)}))
        .await;
    let a = s
        .call(
            Method::PUT,
            "/Questionnaire/history",
            Some(&history_form("Observation?subject=Patient/{{%patient.id}}")),
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    // The import knows these: no warning that the query variable is bad
    // FHIRPath or that itemPopulationContext is unsupported.
    let compiled: Value = s
        .client
        .get(format!("{}/api/forms/history", s.root))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let warnings = compiled["warnings"].to_string();
    assert!(
        !warnings.contains("observations") && !warnings.contains("itemPopulationContext"),
        "{warnings}"
    );
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "subject", "valueReference": {"reference": format!("Patient/{ana}")}}]});
    let (status, answer) = s.post("/Questionnaire/history/$populate", &params).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let response = &answer["parameter"][0]["resource"];
    assert_eq!(response["status"], "in-progress");
    let items = &response["item"];
    assert_eq!(answers_of(items, "family"), ["Diaz"]);
    assert_eq!(answers_of(items, "on-file"), ["2"], "{response}");
    assert_eq!(groups(response, "contacts"), 2, "{response}");
    assert_eq!(sorted(answers_of(items, "contact-name")), ["Lopez", "Vega"]);
    assert_eq!(groups(response, "findings"), 2, "{response}");
    assert_eq!(sorted(answers_of(items, "finding")), ["asthma", "smoker"]);

    // A patient with nothing on file: no contact or finding groups at all.
    let params_bo = json!({"resourceType": "Parameters", "parameter": [
        {"name": "subject", "valueReference": {"reference": "Patient/none-of-these"}}]});
    let (status, _) = s.post("/Questionnaire/history/$populate", &params_bo).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let cy = s.create(&patient("Cy", "Soto", "1970-05-05", "male")).await;
    let (status, answer) = s
        .post(
            "/Questionnaire/history/$populate",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "subject", "valueReference": {"reference": format!("Patient/{cy}")}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let response = &answer["parameter"][0]["resource"];
    assert_eq!(answers_of(&response["item"], "on-file"), ["0"]);
    assert_eq!(groups(response, "contacts"), 0, "{response}");
    assert_eq!(groups(response, "findings"), 0, "{response}");

    // Every resource the queries read is on the record, as a search by this caller.
    let (status, events) = s.get(&format!("/AuditEvent?patient={ana}")).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let recorded = events.to_string();
    for id in &found {
        assert!(recorded.contains(id.as_str()), "{id} not audited: {events}");
    }
}

#[tokio::test]
async fn populate_queries_the_server_cannot_run_are_refused_naming_the_query() {
    let s = server().await;
    let ana = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "subject", "valueReference": {"reference": format!("Patient/{ana}")}}]});
    for (query, code, says) in [
        // A parameter this server does not search by.
        (
            "Observation?code=http://loinc.org|72166-2&patient={{%patient.id}}",
            "not-supported",
            "%observations",
        ),
        // Another server.
        (
            "https://other.example.org/fhir/Observation?patient={{%patient.id}}",
            "not-supported",
            "URL",
        ),
        // A type this server does not keep.
        (
            "AllergyIntolerance?patient={{%patient.id}}",
            "not-supported",
            "AllergyIntolerance",
        ),
        // A read, not a search.
        ("Patient/{{%patient.id}}", "not-supported", "not a search"),
        // An embedded expression that gives a resource, not a value.
        ("Observation?patient={{%patient}}", "invalid", "complex"),
    ] {
        let a = s
            .call(
                Method::PUT,
                "/Questionnaire/history",
                Some(&history_form(query)),
                &[],
            )
            .await;
        assert!(a.status.is_success(), "{}", a.text);
        let (status, outcome) = s.post("/Questionnaire/history/$populate", &params).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {outcome}"
        );
        let issue = &outcome["issue"][0];
        assert_eq!(issue["code"], code, "{query}: {outcome}");
        assert_eq!(
            issue["expression"][0], "Questionnaire.extension[1]",
            "{query}: {outcome}"
        );
        assert!(
            issue["diagnostics"].as_str().unwrap().contains(says),
            "{query}: {outcome}"
        );
    }
}

#[tokio::test]
async fn populate_runs_at_most_32_queries() {
    let s = server().await;
    let mut form = history_form("Observation?patient={{%patient.id}}");
    for n in 0..32 {
        form["extension"].as_array_mut().unwrap().push(expression(
            VARIABLE,
            Some(&format!("q{n}")),
            "application/x-fhir-query",
            "RelatedPerson?patient={{%patient.id}}",
        ));
    }
    let a = s
        .call(Method::PUT, "/Questionnaire/greedy", Some(&form), &[])
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let (status, outcome) = s
        .post(
            "/Questionnaire/greedy/$populate",
            &json!({"resourceType": "Parameters"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "too-costly", "{outcome}");
}

#[tokio::test]
async fn populate_reads_only_what_the_callers_role_may_read() {
    let s = server().await;
    let ana = s
        .create(&patient("Ana", "Diaz", "1980-03-27", "female"))
        .await;
    let a = s
        .call(
            Method::PUT,
            "/Questionnaire/history",
            Some(&history_form("Observation?patient={{%patient.id}}")),
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    // The front desk reads demographics, not what patients answered.
    let added = s
        .client
        .post(format!("{}/api/admin/users", s.root))
        .json(&json!({"username": "desk", "role": "front-desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let password = added.json::<Value>().await.unwrap()["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = reqwest::Client::new();
    let login = plain
        .post(format!("{}/api/staff/login", s.root))
        .json(&json!({"username": "desk", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = plain
        .post(format!("{}/Questionnaire/history/$populate", s.base))
        .header("content-type", "application/fhir+json")
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .body(
            json!({"resourceType": "Parameters", "parameter": [
                {"name": "subject", "valueReference": {"reference": format!("Patient/{ana}")}}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let outcome: Value = answer.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "forbidden", "{outcome}");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Questionnaire.extension[1]"
    );
}

#[tokio::test]
async fn populate_fills_sdcs_own_demographics_example_from_the_chart() {
    // SDC's demographics example: a group per name of the patient (a FHIRPath
    // context), a group per RelatedPerson (an x-fhir-query context) and, inside
    // each, a group per name of that relative.
    let s = server().await;
    let (_, text) = common::fixtures()
        .into_iter()
        .find(|(stem, _)| stem.contains("demographics.fsh"))
        .unwrap();
    let mut form: Value = serde_json::from_str(&text).unwrap();
    form["id"] = json!("demographics");
    let a = s
        .call(Method::PUT, "/Questionnaire/demographics", Some(&form), &[])
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let ana = s
        .create(&json!({"resourceType": "Patient", "birthDate": "1980-03-27",
            "name": [{"family": "Diaz", "given": ["Ana", "Maria"]}, {"family": "Ruiz", "given": ["Annie"]}]}))
        .await;
    let of = json!({"reference": format!("Patient/{ana}")});
    let lopez = s
        .create(&json!({"resourceType": "RelatedPerson", "patient": of,
            "name": [{"family": "Lopez", "given": ["Luz"]}]}))
        .await;
    let vega = s
        .create(&json!({"resourceType": "RelatedPerson", "patient": of,
            "name": [{"family": "Vega", "given": ["Val"]}, {"family": "Vega Soto"}]}))
        .await;
    let (status, answer) = s
        .post(
            "/Questionnaire/demographics/$populate",
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "subject", "valueReference": {"reference": format!("Patient/{ana}")}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let response = &answer["parameter"][0]["resource"];
    let items = &response["item"];
    assert_eq!(answers_of(items, "patient.id"), std::slice::from_ref(&ana));
    assert_eq!(answers_of(items, "patient.birthDate"), ["1980-03-27"]);
    assert_eq!(groups(response, "patient.name"), 2, "{response}");
    assert_eq!(answers_of(items, "patient.name.family"), ["Diaz", "Ruiz"]);
    assert_eq!(
        answers_of(items, "patient.name.given"),
        ["Ana", "Maria", "Annie"]
    );
    assert_eq!(groups(response, "relative"), 2, "{response}");
    assert_eq!(
        sorted(answers_of(items, "relative.id")),
        sorted(vec![lopez, vega])
    );
    // Each relative's own names, nested in its group.
    let relatives: Vec<&Value> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["linkId"] == "relative")
        .collect();
    let mut families: Vec<Vec<String>> = relatives
        .iter()
        .map(|r| answers_of(&r["item"], "relative.name.family"))
        .collect();
    families.sort();
    assert_eq!(families, [vec!["Lopez"], vec!["Vega", "Vega Soto"]]);
}

#[tokio::test]
async fn a_create_with_its_condition_in_the_query_string_is_conditional() {
    // fhirpy's `get_or_create` sends the condition as the POST's query string:
    // ignored, it made a second patient.
    let s = server().await;
    let mut ana = patient("Ana", "Diaz", "1980-03-27", "female");
    ana["identifier"] = json!([{"system": "urn:test", "value": "q-1"}]);
    let path = "/Patient?identifier=urn%3Atest%7Cq-1";
    let first = s.call(Method::POST, path, Some(&ana), &[]).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = s.call(Method::POST, path, Some(&ana), &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(s.ids("/Patient?identifier=urn:test|q-1").await.len(), 1);
    // `_format` is not a condition; the same condition in the header is fine,
    // another one is a 400; a condition the store cannot search is a 422.
    let plain = s
        .call(
            Method::POST,
            "/Patient?_format=json",
            Some(&patient("Bo", "Diaz", "1990-01-01", "male")),
            &[],
        )
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    let same = s
        .call(
            Method::POST,
            path,
            Some(&ana),
            &[("If-None-Exist", "identifier=urn:test|q-1")],
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    let other = s
        .call(
            Method::POST,
            path,
            Some(&ana),
            &[("If-None-Exist", "identifier=urn:test|q-2")],
        )
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.text);
    let unknown = s
        .call(Method::POST, "/Patient?shoe-size=9", Some(&ana), &[])
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text
    );
}
