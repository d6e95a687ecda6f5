//! The match-resolution API (`/api/staff/review`) over HTTP against the real app on
//! loopback: the queue, one item per role, each decision and where it lands in
//! the EMR (our store, or a remote FHIR server started by the test), optimistic
//! locking under a race, re-authentication, roles, and the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod staff_common;

use std::time::{Duration, Instant};

use backend::auth::Role;
use common::medplum::{MedplumPeer, PeerOptions};
use common::registration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use staff_common::{Session, TestApp};

const STALE: &str =
    "Someone else has already decided this intake. Reload to see the current state.";

/// The app with the registration form, a clinician, a front-desk user, an
/// admin, and an admin token.
struct Clinic {
    app: TestApp,
    clinician: (Session, String),
    front_desk: (Session, String),
    admin: (Session, String),
    token: String,
}

impl Clinic {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut backend::Config)) -> Self {
        let app = TestApp::spawn_with(|c| {
            c.max_body_bytes = 256 * 1024;
            configure(c);
        })
        .await;
        registration::import(&app.admin().await, &app.base).await;
        Self {
            clinician: app.signed_in("carla", Role::Clinician).await,
            front_desk: app.signed_in("frank", Role::FrontDesk).await,
            admin: app.signed_in("ada", Role::Admin).await,
            token: app.token("emr-sync", Role::Admin).await,
            app,
        }
    }

    /// Submits a registration; its answer.
    async fn submit(&self, key: &str, body: &Value) -> Value {
        let (status, answer) =
            registration::submit(&self.app.admin().await, &self.app.base, key, body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer
    }

    async fn get(&self, path: &str, session: &Session) -> (StatusCode, Value) {
        let r = self
            .app
            .as_staff(self.app.client.get(self.app.url(path)), session)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn queue(&self) -> Value {
        let (status, body) = self.get("/api/staff/review", &self.clinician.0).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn item(&self, task: &str, session: &Session) -> Value {
        let (status, body) = self
            .get(&format!("/api/staff/review/{task}"), session)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// POSTs a decision as `session` with `If-Match: W/"version"` (none if `None`).
    async fn decide(
        &self,
        task: &str,
        version: Option<&str>,
        session: &Session,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut req = self.app.as_staff(
            self.app
                .client
                .post(self.app.url(&format!("/api/staff/review/{task}/decision")))
                .json(body),
            session,
        );
        if let Some(v) = version {
            req = req.header("if-match", format!("W/\"{v}\""));
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The resources a search of our `/fhir` finds, read with the admin token.
    async fn search(&self, query: &str) -> Vec<Value> {
        let r = self
            .app
            .client
            .get(self.app.url(&format!("/fhir/{query}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        common::http::resources(&r.json().await.unwrap())
    }

    async fn read(&self, reference: &str) -> Value {
        let r = self
            .app
            .client
            .get(self.app.url(&format!("/fhir/{reference}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{reference}");
        r.json().await.unwrap()
    }

    /// The queue's item for intake `id`.
    async fn queued(&self, intake: &str) -> Option<Value> {
        self.queue().await["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["intake"] == intake)
            .cloned()
    }

    /// A first visit (a new chart) and a doubtful second one (same family, birth
    /// date and phone, another given name): the chart and the second intake, whose
    /// item waits in the queue.
    async fn doubtful(&self) -> (String, String, Value) {
        let first = self
            .submit(
                "first",
                &registration::response("Amani", "Otieno", "1995-07-15", Some("+254 700 000 001")),
            )
            .await;
        assert_eq!(first["outcome"], "created", "{first}");
        let second = self
            .submit(
                "second",
                &registration::response("Zawadi", "Otieno", "1995-07-15", Some("+254 700 000 001")),
            )
            .await;
        assert_eq!(second["outcome"], "review", "{second}");
        let intake = second["intake"].as_str().unwrap().to_owned();
        let item = self
            .queued(&intake)
            .await
            .expect("the review item is queued");
        (first["patient"].as_str().unwrap().to_owned(), intake, item)
    }

    /// Every audit event, oldest first.
    async fn audit(&self) -> Vec<Value> {
        self.app.audit_events().await
    }
}

fn task_of(item: &Value) -> (String, String) {
    (
        item["task"].as_str().unwrap().to_owned(),
        item["version"].as_str().unwrap().to_owned(),
    )
}

fn diagnostics(outcome: &Value) -> &str {
    outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
}

/// Events by `agent` touching `entity`, with `outcome` (`0` success, `4` failure).
fn events_about<'a>(
    events: &'a [Value],
    agent: &str,
    entity: &str,
    outcome: &str,
) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["agent"][0]["who"]["identifier"]["value"] == agent)
        .filter(|e| e["outcome"] == outcome)
        .filter(|e| {
            e["entity"]
                .as_array()
                .is_some_and(|list| list.iter().any(|x| x["what"]["reference"] == entity))
        })
        .collect()
}

/// Sets the answer to `link_id` anywhere in a response.
fn set_answer(item: &mut Value, link_id: &str, answer: &Value) {
    if item["linkId"] == link_id {
        item["answer"] = answer.clone();
    }
    for key in ["item", "answer"] {
        if let Some(children) = item.get_mut(key).and_then(Value::as_array_mut) {
            for child in children {
                set_answer(child, link_id, answer);
            }
        }
    }
}

#[tokio::test]
async fn the_queue_lists_waiting_items_oldest_first_with_their_count() {
    let c = Clinic::start().await;
    let empty = c.queue().await;
    assert_eq!(empty, json!({"count": 0, "items": []}));

    let (_, review_intake, _) = c.doubtful().await;
    // A returning patient with a new phone: linked, the phone proposed.
    let linked = c
        .submit(
            "third",
            &registration::response("Amani", "Otieno", "1995-07-15", Some("+254 711 111 111")),
        )
        .await;
    assert_eq!(linked["outcome"], "linked", "{linked}");

    let queue = c.queue().await;
    assert_eq!(queue["count"], 2, "{queue}");
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let (first, second) = (&items[0], &items[1]);
    assert_eq!(first["intake"], review_intake.as_str());
    assert_eq!(first["kind"], "match");
    assert_eq!(first["summary"], "Z. Otieno, born 1995");
    assert!(
        matches!(first["grade"].as_str(), Some("probable" | "possible")),
        "{first}"
    );
    let score = first["topScore"].as_f64().unwrap();
    assert!(score > 0.5 && score <= 1.0, "{first}");
    assert_eq!(first["version"], "1");
    assert!(first["ageSeconds"].as_i64().unwrap() >= 0);
    assert_eq!(second["intake"], linked["intake"]);
    assert_eq!(second["kind"], "demographics");
    assert_eq!(second["summary"], "A. Otieno, born 1995");
    assert_eq!(
        (&second["topScore"], &second["grade"]),
        (&Value::Null, &Value::Null)
    );
    assert!(first["received"].as_str().unwrap() <= second["received"].as_str().unwrap());

    // Every staff role may read it; the reading is audited.
    for session in [&c.front_desk.0, &c.admin.0] {
        let (status, body) = c.get("/api/staff/review", session).await;
        assert_eq!((status, &body["count"]), (StatusCode::OK, &json!(2)));
    }
    let reads = c
        .audit()
        .await
        .into_iter()
        .filter(|e| e["subtype"][0]["code"] == "search-type" && e["outcome"] == "0")
        .count();
    // The empty queue, the one `doubtful` looked at, and the three above.
    assert_eq!(reads, 5);
    // Nobody signed in: nothing.
    let r = c
        .app
        .client
        .get(c.app.url("/api/staff/review"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_item_shows_the_candidates_explained_and_the_answers_only_to_clinicians_and_admins() {
    let c = Clinic::start().await;
    let (chart, intake, item) = c.doubtful().await;
    let (task, _) = task_of(&item);
    for (who, session, answers) in [
        ("frank", &c.front_desk.0, false),
        ("carla", &c.clinician.0, true),
        ("ada", &c.admin.0, true),
    ] {
        let view = c.item(&task, session).await;
        assert_eq!(view["task"], task.as_str(), "{who}");
        assert_eq!(view["kind"], "match", "{who}");
        assert_eq!(view["version"], "1", "{who}");
        assert_eq!(view["intake"]["id"], intake.as_str(), "{who}");
        assert_eq!(view["intake"]["status"], "review", "{who}");
        assert_eq!(
            view["intake"]["patient"]["resourceType"], "Patient",
            "{who}"
        );
        assert_eq!(
            view["intake"]["patient"]["name"][0]["given"][0], "Zawadi",
            "{who}"
        );
        assert_eq!(
            view["intake"].get("answers").is_some(),
            answers,
            "{who}: {}",
            view["intake"]
        );
        if answers {
            assert_eq!(
                view["intake"]["answers"]["resourceType"], "QuestionnaireResponse",
                "{who}"
            );
        }
        let candidates = view["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 1, "{who}: {view}");
        let candidate = &candidates[0];
        assert_eq!(
            format!("Patient/{}", candidate["patient"]["id"].as_str().unwrap()),
            chart,
            "{who}"
        );
        assert_eq!(candidate["patient"]["name"][0]["given"][0], "Amani");
        assert!(candidate["score"].as_f64().unwrap() > 0.0);
        let fields = candidate["fields"].as_array().unwrap();
        assert!(
            fields.iter().any(|f| f["field"] == "family"
                && f["level"] == "exact"
                && f["weight"].as_f64().unwrap() > 0.0),
            "{fields:?}"
        );
        let history = candidate["history"].as_array().unwrap();
        assert!(
            history
                .iter()
                .any(|h| h["what"] == "Intake created this chart"),
            "{history:?}"
        );
        assert!(history.len() <= 5);
        assert!(view.get("proposed").is_none() && view.get("delivery").is_none());
        // Audited, naming the candidate's chart.
        assert_eq!(
            events_about(&c.audit().await, who, &chart, "0").len(),
            1,
            "{who}"
        );
    }
    let (status, outcome) = c
        .get("/api/staff/review/no-such-task", &c.clinician.0)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn linking_lands_the_response_on_the_chosen_chart_at_once() {
    let c = Clinic::start().await;
    let (chart, intake, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.clinician.0,
            &json!({"action": "link", "patient": chart, "password": c.clinician.1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(
        decided,
        json!({"task": task, "status": "completed",
            "intake": {"id": intake, "status": "delivered", "patient": chart}})
    );
    // The chart holds both responses now, the second with its Provenance naming
    // the patient's device and the clinician who decided.
    let responses = c
        .search(&format!("QuestionnaireResponse?subject={chart}"))
        .await;
    assert_eq!(responses.len(), 2, "{responses:?}");
    let linked = responses
        .iter()
        .find(|r| r["identifier"]["value"] == intake.as_str())
        .expect("the intake's response is on the chart");
    let provenance = c
        .search(&format!(
            "Provenance?target=QuestionnaireResponse/{}",
            linked["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(provenance.len(), 1);
    let agents: Vec<&Value> = provenance[0]["agent"].as_array().unwrap().iter().collect();
    assert!(
        agents.iter().any(|a| a["who"]["display"] == "carla"),
        "{agents:?}"
    );
    // Still one chart of that family; the intake says where it went.
    assert_eq!(c.search("Patient?family=otieno").await.len(), 1);
    let state: Value = c
        .app
        .admin()
        .await
        .get(c.app.url(&format!("/api/intakes/{intake}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&state["status"], &state["patient"]),
        (&json!("delivered"), &json!(chart))
    );
    // The Task is completed by the clinician, naming the decision and the patient.
    let done = c.read(&format!("Task/{task}")).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["owner"]["display"], "carla");
    assert_eq!(done["output"][0]["valueCode"], "link");
    assert_eq!(
        done["output"][1]["valueReference"]["reference"],
        chart.as_str()
    );
    assert_eq!(done["meta"]["versionId"], "2");
    common::fhir_validator::assert_valid("decided task", &[done, linked.clone()]);
    // Out of the queue; the decision is audited with the chart.
    assert_eq!(c.queue().await["count"], 0);
    let events = c.audit().await;
    let decisions = events_about(&events, "carla", &chart, "0");
    assert!(
        decisions.iter().any(|e| e["action"] == "U"),
        "{decisions:?}"
    );
    // Deciding it again with the version now current: already decided.
    let (status, outcome) = c
        .decide(
            &task,
            Some("2"),
            &c.clinician.0,
            &json!({"action": "create", "password": c.clinician.1}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{outcome}");
    assert_eq!(c.search("Patient?family=otieno").await.len(), 1);
}

#[tokio::test]
async fn creating_makes_exactly_one_new_chart_with_the_response() {
    let c = Clinic::start().await;
    let (chart, intake, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.admin.0,
            &json!({"action": "create", "password": c.admin.1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let new_chart = decided["intake"]["patient"].as_str().unwrap().to_owned();
    assert_ne!(new_chart, chart);
    assert_eq!(decided["intake"]["status"], "delivered");
    let charts = c.search("Patient?family=otieno").await;
    assert_eq!(charts.len(), 2, "{charts:?}");
    let created = c.read(&new_chart).await;
    assert_eq!(created["name"][0]["given"][0], "Zawadi");
    let responses = c
        .search(&format!("QuestionnaireResponse?subject={new_chart}"))
        .await;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["identifier"]["value"], intake.as_str());
    let done = c.read(&format!("Task/{task}")).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["valueCode"], "create");
    assert_eq!(
        done["output"][1]["valueReference"]["reference"],
        new_chart.as_str()
    );
    // The new chart is a match candidate at once: the same person again is linked.
    let again = c
        .submit(
            "fourth",
            &registration::response("Zawadi", "Otieno", "1995-07-15", Some("+254 700 000 001")),
        )
        .await;
    assert_eq!(again["patient"], new_chart.as_str(), "{again}");
    assert_eq!(
        events_about(&c.audit().await, "ada", &new_chart, "0").len(),
        1
    );
}

#[tokio::test]
async fn not_this_removes_the_candidate_and_the_item_waits_until_a_chart_is_made() {
    let c = Clinic::start().await;
    let (chart, intake, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.clinician.0,
            &json!({"action": "not-this", "patient": chart}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "in-progress");
    assert_eq!(
        decided["intake"],
        json!({"id": intake, "status": "review", "patient": null})
    );
    let still = c.queued(&intake).await.expect("still in the queue");
    assert_eq!(still["version"], "2");
    assert_eq!(
        (&still["topScore"], &still["grade"]),
        (&Value::Null, &Value::Null)
    );
    let view = c.item(&task, &c.clinician.0).await;
    assert_eq!(view["candidates"], json!([]));
    // The chart ruled out cannot be linked any more.
    let (status, outcome) = c
        .decide(
            &task,
            Some("2"),
            &c.clinician.0,
            &json!({"action": "link", "patient": chart, "password": c.clinician.1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "patient");
    let (status, decided) = c
        .decide(
            &task,
            Some("2"),
            &c.clinician.0,
            &json!({"action": "create", "password": c.clinician.1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(c.search("Patient?family=otieno").await.len(), 2);
    assert!(c.queued(&intake).await.is_none());
}

#[tokio::test]
async fn proposed_details_are_accepted_or_refused_element_by_element() {
    let c = Clinic::start().await;
    let first = c
        .submit(
            "first",
            &registration::response("Amani", "Otieno", "1995-07-15", Some("+254 700 000 001")),
        )
        .await;
    let chart = first["patient"].as_str().unwrap().to_owned();
    let mut body =
        registration::response("Amani", "Otieno", "1995-07-15", Some("+254 711 111 111"));
    set_answer(
        &mut body,
        "PR-address-city",
        &registration::string("Mombasa"),
    );
    let second = c.submit("second", &body).await;
    assert_eq!(second["outcome"], "linked", "{second}");
    let item = c
        .queued(second["intake"].as_str().unwrap())
        .await
        .expect("the proposal is queued");
    assert_eq!(item["kind"], "demographics");
    let (task, version) = task_of(&item);
    let view = c.item(&task, &c.front_desk.0).await;
    let proposed = view["proposed"].as_array().unwrap();
    let elements: Vec<&str> = proposed
        .iter()
        .map(|p| p["element"].as_str().unwrap())
        .collect();
    assert_eq!(elements, ["phone", "address"], "{proposed:?}");
    assert_eq!(proposed[0]["current"][0]["value"], "+254 700 000 001");
    assert_eq!(proposed[0]["proposed"][0]["value"], "+254 711 111 111");
    assert_eq!(proposed[1]["current"][0]["city"], "Nairobi");
    assert_eq!(proposed[1]["proposed"][0]["city"], "Mombasa");

    // What does not fit the proposal is refused, and nothing is written.
    for (bad, at) in [
        (json!({"action": "update", "accept": ["phone"]}), "accept"),
        (
            json!({"action": "update", "accept": ["phone", "gender"], "refuse": ["address"]}),
            "accept",
        ),
        (
            json!({"action": "update", "accept": ["phone", "address"], "refuse": ["address"]}),
            "refuse",
        ),
        (json!({"action": "retry"}), "action"),
        (
            json!({"action": "link", "patient": chart, "password": c.clinician.1}),
            "action",
        ),
    ] {
        let (status, outcome) = c.decide(&task, Some(&version), &c.clinician.0, &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {outcome}");
        assert_eq!(outcome["issue"][0]["expression"][0], at, "{bad}: {outcome}");
    }
    assert_eq!(c.read(&chart).await["meta"]["versionId"], "1");

    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.clinician.0,
            &json!({"action": "update", "accept": ["phone"], "refuse": ["address"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "completed");
    let updated = c.read(&chart).await;
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["telecom"][0]["value"], "+254 711 111 111");
    assert_eq!(updated["address"][0]["city"], "Nairobi");
    assert_eq!(updated["name"][0]["family"], "Otieno");
    let done = c.read(&format!("Task/{task}")).await;
    let outputs: Vec<(&str, &str)> = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            Some((
                o["type"]["coding"][0]["code"].as_str()?,
                o["valueString"].as_str()?,
            ))
        })
        .collect();
    assert_eq!(
        outputs,
        [
            ("accepted-element", "phone"),
            ("refused-element", "address")
        ]
    );
    assert_eq!(c.queue().await["count"], 0);
    assert_eq!(
        events_about(&c.audit().await, "carla", &chart, "0").len(),
        1
    );
}

#[tokio::test]
async fn a_stale_or_missing_version_is_refused_and_a_race_decides_once() {
    let c = Clinic::start().await;
    let (chart, _, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let link = |password: &str| json!({"action": "link", "patient": chart, "password": password});

    let (status, outcome) = c
        .decide(&task, None, &c.clinician.0, &link(&c.clinician.1))
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{outcome}");
    let (status, outcome) = c
        .decide(&task, Some("7"), &c.clinician.0, &link(&c.clinician.1))
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{outcome}");
    assert_eq!(diagnostics(&outcome), STALE);

    // Two people decide the same item at the same moment, from the same version.
    let (link_body, create_body) = (
        link(&c.clinician.1),
        json!({"action": "create", "password": c.admin.1}),
    );
    let (a, b) = tokio::join!(
        c.decide(&task, Some(&version), &c.clinician.0, &link_body),
        c.decide(&task, Some(&version), &c.admin.0, &create_body),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "{a:?} {b:?}"
    );
    let loser = if a.0 == StatusCode::OK { &b.1 } else { &a.1 };
    assert_eq!(diagnostics(loser), STALE);
    // One decision's writes, not two: either the chart got the response, or a new
    // chart was made; never both, never twice.
    let charts = c.search("Patient?family=otieno").await.len();
    let responses = c.search("QuestionnaireResponse").await.len();
    assert_eq!(responses, 2);
    assert!(
        (a.0 == StatusCode::OK && charts == 1) || (b.0 == StatusCode::OK && charts == 2),
        "{charts} charts"
    );
    let done = c.read(&format!("Task/{task}")).await;
    assert_eq!(done["meta"]["versionId"], "2");
    assert_eq!(done["output"].as_array().unwrap().len(), 2);
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE intake_id = ?")
        .bind(item["intake"].as_str().unwrap())
        .fetch_one(&c.app.db)
        .await
        .unwrap();
    assert_eq!(outbox, 1);
}

#[tokio::test]
async fn a_wrong_password_is_401_audited_and_decides_nothing() {
    let c = Clinic::start().await;
    let (chart, intake, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    for body in [
        json!({"action": "link", "patient": chart, "password": "not-the-password"}),
        json!({"action": "link", "patient": chart}),
        json!({"action": "create", "password": c.admin.1}),
    ] {
        let (status, outcome) = c.decide(&task, Some(&version), &c.clinician.0, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let task_now = c.read(&format!("Task/{task}")).await;
    assert_eq!(
        (&task_now["status"], &task_now["meta"]["versionId"]),
        (&json!("requested"), &json!("1"))
    );
    assert_eq!(
        c.search(&format!("QuestionnaireResponse?subject={chart}"))
            .await
            .len(),
        1
    );
    assert!(c.queued(&intake).await.is_some());
    let failures = events_about(&c.audit().await, "carla", &format!("Task/{task}"), "4").len();
    assert_eq!(failures, 3);
    // A bearer token has no person to re-authenticate: it decides without one.
    let r = c
        .app
        .client
        .post(c.app.url(&format!("/api/staff/review/{task}/decision")))
        .bearer_auth(&c.token)
        .header("if-match", format!("W/\"{version}\""))
        .json(&json!({"action": "link", "patient": chart}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        c.search(&format!("QuestionnaireResponse?subject={chart}"))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn front_desk_may_read_but_not_decide_and_a_decision_needs_the_csrf_token() {
    let c = Clinic::start().await;
    let (chart, _, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let body = json!({"action": "not-this", "patient": chart});
    let (status, outcome) = c
        .decide(&task, Some(&version), &c.front_desk.0, &body)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        events_about(&c.audit().await, "frank", &format!("Task/{task}"), "4").len(),
        1
    );
    // A clinician's cookie without the CSRF token: refused too.
    let r = c
        .app
        .client
        .post(c.app.url(&format!("/api/staff/review/{task}/decision")))
        .header(
            "cookie",
            format!("__Host-intake-session={}", c.clinician.0.id),
        )
        .header("if-match", format!("W/\"{version}\""))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let task_now = c.read(&format!("Task/{task}")).await;
    assert_eq!(task_now["meta"]["versionId"], "1");
}

#[tokio::test]
async fn bad_decisions_are_4xx_outcomes_that_write_nothing() {
    let c = Clinic::start().await;
    let (chart, _, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let cases = [
        (json!({"action": "merge"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"action": "link", "password": c.clinician.1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"action": "link", "patient": "Patient/nobody", "password": c.clinician.1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"action": "link", "patient": "Observation/1", "password": c.clinician.1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"action": "not-this", "patient": "Patient/nobody"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"action": "update", "accept": ["telecom"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"action": "retry"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"action": "not-this", "patient": chart, "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!(["link"]), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, expected) in cases {
        let (status, outcome) = c.decide(&task, Some(&version), &c.clinician.0, &body).await;
        assert_eq!(status, expected, "{body}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{body}");
        // Nothing a patient typed comes back.
        assert!(!outcome.to_string().contains("Otieno"), "{outcome}");
    }
    let r = c
        .app
        .as_staff(
            c.app
                .client
                .post(c.app.url(&format!("/api/staff/review/{task}/decision")))
                .header("if-match", "W/\"1\"")
                .header("content-type", "application/json")
                .body("{not json"),
            &c.clinician.0,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = c
        .decide(
            "no-such-task",
            Some("1"),
            &c.clinician.0,
            &json!({"action": "retry"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let task_now = c.read(&format!("Task/{task}")).await;
    assert_eq!(task_now["meta"]["versionId"], "1");
    assert_eq!(c.queue().await["count"], 1);
}

#[tokio::test]
async fn a_dead_lettered_delivery_is_queued_and_a_retry_delivers_it() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let url = emr.base_url();
    let c = Clinic::start_with(|config| {
        config.emr.emr_url = Some(url);
        config.emr.emr_timeout_ms = Some(2_000);
        config.delivery.delivery_retry_ms = Some(20);
        config.delivery.delivery_retry_max_ms = Some(50);
        config.delivery.delivery_max_attempts = Some(3);
    })
    .await;
    emr.fail_next_transactions(503, 1_000_000).await;
    let answer = c
        .submit(
            "dead-1",
            &registration::response("Wairimu", "Mutiso", "1984-06-30", Some("+254 733 100 200")),
        )
        .await;
    let intake = answer["intake"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let item = loop {
        if let Some(item) = c.queued(&intake).await {
            break item;
        }
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(item["kind"], "delivery");
    assert_eq!(item["summary"], "W. Mutiso, born 1984");
    let (task, version) = task_of(&item);
    let view = c.item(&task, &c.clinician.0).await;
    assert_eq!(view["intake"]["status"], "dead");
    assert_eq!(view["delivery"]["status"], "dead");
    assert_eq!(view["delivery"]["attempts"], 3);
    assert!(
        view["delivery"]["lastError"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{view}"
    );
    assert!(
        !view["delivery"]["lastError"]
            .as_str()
            .unwrap()
            .contains("Mutiso")
    );

    // The EMR is well again; staff retry.
    emr.fail_next_transactions(503, 0).await;
    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.clinician.0,
            &json!({"action": "retry"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "completed");
    assert_eq!(decided["intake"]["status"], "accepted");
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state: Value = c
            .app
            .admin()
            .await
            .get(c.app.url(&format!("/api/intakes/{intake}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state["status"] == "delivered" {
            break state;
        }
        assert!(Instant::now() < deadline, "never delivered: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let patients =
        common::http::search(&c.app.client, &emr.base_url(), "Patient?family=mutiso").await;
    assert_eq!(patients.len(), 1);
    assert_eq!(
        state["patient"],
        format!("Patient/{}", patients[0]["id"].as_str().unwrap()).as_str()
    );
    assert!(c.queued(&intake).await.is_none());
    // Retrying again: the item is decided.
    let (status, _) = c
        .decide(
            &task,
            Some("2"),
            &c.clinician.0,
            &json!({"action": "retry"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_link_to_a_remote_emr_goes_through_the_outbox() {
    let emr = MedplumPeer::start(&PeerOptions::default());
    let url = emr.base_url();
    let c = Clinic::start_with(|config| {
        config.emr.emr_url = Some(url);
        config.emr.emr_timeout_ms = Some(2_000);
        config.delivery.delivery_retry_ms = Some(20);
        config.delivery.delivery_retry_max_ms = Some(50);
    })
    .await;
    let (chart, intake, item) = c.doubtful().await;
    let (task, version) = task_of(&item);
    let view = c.item(&task, &c.clinician.0).await;
    assert_eq!(
        format!(
            "Patient/{}",
            view["candidates"][0]["patient"]["id"].as_str().unwrap()
        ),
        chart
    );
    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.clinician.0,
            &json!({"action": "link", "patient": chart, "password": c.clinician.1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["intake"]["patient"], chart.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = common::http::search(
            &c.app.client,
            &emr.base_url(),
            &format!("QuestionnaireResponse?subject={chart}"),
        )
        .await;
        if found.len() == 2 {
            assert!(
                found
                    .iter()
                    .any(|r| r["identifier"]["value"] == intake.as_str())
            );
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many Tasks in the store name the intake.
async fn tasks_for(c: &Clinic, intake: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM resource r, json_each(r.body, '$.identifier') t
         WHERE r.resource_type = 'Task' AND json_extract(t.value, '$.value') = ?",
    )
    .bind(intake)
    .fetch_one(&c.app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_intake_dead_lettered_without_a_task_is_queued_when_the_server_starts() {
    let c = Clinic::start().await;
    let answer = c
        .submit(
            "old-dead",
            &registration::response("Baraka", "Njoroge", "1979-02-14", None),
        )
        .await;
    let intake = answer["intake"].as_str().unwrap().to_owned();
    // As a version from before dead-letters made Tasks left it.
    for sql in [
        "UPDATE intake SET status = 'dead' WHERE id = ?",
        "UPDATE outbox SET state = 'dead' WHERE intake_id = ?",
    ] {
        sqlx::query(sql)
            .bind(&intake)
            .execute(&c.app.db)
            .await
            .unwrap();
    }
    assert!(c.queued(&intake).await.is_none());
    assert_eq!(tasks_for(&c, &intake).await, 0);

    let restart = |c: Clinic| async move {
        Clinic {
            app: c.app.restart().await,
            ..c
        }
    };
    let c = restart(c).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let item = loop {
        if let Some(item) = c.queued(&intake).await {
            break item;
        }
        assert!(Instant::now() < deadline, "never queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(item["kind"], "delivery");
    // Started again: still one Task.
    let c = restart(c).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tasks_for(&c, &intake).await, 1);
    assert!(c.queued(&intake).await.is_some());
}

#[tokio::test]
async fn a_reviewed_intakes_emergency_contact_and_observation_are_delivered_at_the_decision() {
    let c = Clinic::start().await;
    registration::import_extras(&c.app.admin().await, &c.app.base).await;
    let first = c
        .submit(
            "first",
            &registration::response("Amani", "Otieno", "1995-07-15", Some("+254 700 000 001")),
        )
        .await;
    assert_eq!(first["outcome"], "created", "{first}");
    let chart = first["patient"].as_str().unwrap().to_owned();
    let second = c
        .submit(
            "second",
            &registration::response_with_extras(
                "Zawadi",
                "Otieno",
                "1995-07-15",
                Some("+254 700 000 001"),
                "Baraka Otieno",
            ),
        )
        .await;
    assert_eq!(second["outcome"], "review", "{second}");
    let intake = second["intake"].as_str().unwrap().to_owned();
    // Nothing of it is delivered while it waits.
    assert!(
        c.search(&format!(
            "RelatedPerson?identifier=urn:intake:extracted|{intake}/1"
        ))
        .await
        .is_empty()
    );
    assert!(
        c.search(&format!("Observation?subject={chart}"))
            .await
            .is_empty()
    );
    let item = c.queued(&intake).await.expect("the review item is queued");
    let (task, version) = task_of(&item);
    let (status, decided) = c
        .decide(
            &task,
            Some(&version),
            &c.clinician.0,
            &json!({"action": "link", "patient": chart, "password": c.clinician.1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let contacts = c.search(&format!("RelatedPerson?patient={chart}")).await;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["name"][0]["text"], "Baraka Otieno");
    let weights = c.search(&format!("Observation?subject={chart}")).await;
    assert_eq!(weights.len(), 1, "{weights:?}");
    for (r, n) in [(&contacts[0], 1), (&weights[0], 2)] {
        assert!(
            r["identifier"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["system"] == "urn:intake:extracted"
                    && i["value"] == format!("{intake}/{n}")),
            "{r}"
        );
    }
    // The Provenance of the decided delivery names them.
    let response = c
        .search(&format!(
            "QuestionnaireResponse?identifier=urn:intake:submission|{intake}"
        ))
        .await;
    let provenance = c
        .search(&format!(
            "Provenance?target=QuestionnaireResponse/{}",
            response[0]["id"].as_str().unwrap()
        ))
        .await;
    let targets = provenance[0]["target"].to_string();
    for r in [&contacts[0], &weights[0]] {
        let reference = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        assert!(targets.contains(&reference), "{targets}");
    }
    common::fhir_validator::assert_valid(
        "decided extras",
        &[contacts[0].clone(), weights[0].clone()],
    );
}
