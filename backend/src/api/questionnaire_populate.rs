//! SDC `$populate`: a stored Questionnaire's QuestionnaireResponse, in progress,
//! prefilled from the patient's chart (the `patient` launch context, read from the
//! EMR: the embedded store or the remote one) through the form's `initial` values,
//! `initialExpression`s, `x-fhir-query` variables and `itemPopulationContext`s.
//! The invitation's prefill is this same function, from the Patient alone.
//!
//! A query is a search of the EMR (the embedded store, or the remote one when
//! configured) made as the caller: a type their role may not search is 403, and
//! every resource found is on the record before the answer goes. What this server
//! cannot evaluate is refused, not skipped: `sourceQueries`, an `x-fhir-query`
//! outside a variable or a population context, a query naming another server or a
//! parameter the EMR does not know is 422, naming where.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::answers::{instance_prefix, item_path};
use shared::draft::Draft;
use shared::fhirpath::{Env, Node};
use shared::form::{Form, Item, Variable};
use shared::json::Json;

use super::extract::Actor;
use crate::api::error::ApiError;
use crate::api::extract::Json as JsonBody;
use crate::audit::{self, Interaction};
use crate::emr::EmrError;
use crate::fhir::outcome::{Issue, IssueType};
use crate::questionnaires::CachedForm;
use crate::state::AppState;

/// `POST /fhir/Questionnaire/{id}/$populate` with a `Parameters`: `subject` (a
/// Patient reference) and/or `context` (`name` = `patient`, `content` a
/// reference or the Patient itself). 200 with a `Parameters` whose `response` is
/// the QuestionnaireResponse.
#[tracing::instrument(skip_all)]
pub(super) async fn by_id(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let form = app
        .forms
        .form(&app.db, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    populate_answer(&app, &actor, &form, &body).await
}

/// `POST /fhir/Questionnaire/$populate`: the same, the form named by the
/// `canonical` (or `identifier`-less `url`) parameter.
#[tracing::instrument(skip_all)]
pub(super) async fn by_canonical(
    State(app): State<AppState>,
    actor: Actor,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let canonical = parameter(&body, "canonical")
        .and_then(|p| {
            p.get("valueCanonical")
                .or_else(|| p.get("valueUri"))
                .and_then(Value::as_str)
        })
        .ok_or_else(|| {
            ApiError::Unprocessable(vec![
                Issue::error(
                    IssueType::Required,
                    "Name the form with the 'canonical' parameter, or POST to Questionnaire/{id}/$populate",
                )
                .at("Parameters.parameter"),
            ])
        })?;
    let url = canonical.split('|').next().unwrap_or(canonical);
    let not_here = || {
        ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotFound,
                "No Questionnaire with that canonical URL is on this server",
            )
            .at("Parameters.parameter.where(name='canonical')"),
        ])
    };
    let id = app
        .forms
        .id_by_url(&app.db, url)
        .await?
        .ok_or_else(not_here)?;
    let form = app.forms.form(&app.db, &id).await?.ok_or_else(not_here)?;
    populate_answer(&app, &actor, &form, &body).await
}

fn parameter<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get("parameter")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

async fn populate_answer(
    app: &AppState,
    actor: &Actor,
    form: &CachedForm,
    body: &Value,
) -> Result<Response, ApiError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(IssueType::Invalid, "Send a Parameters resource").at("resourceType"),
        ]));
    }
    let unsupported = unsupported_population(&form.questionnaire);
    if !unsupported.is_empty() {
        return Err(ApiError::Unprocessable(unsupported));
    }
    let plan = Plan::of(&form.questionnaire)?;
    let patient = launch_patient(app, actor, body).await?;
    let subject = patient
        .as_ref()
        .and_then(|p| p.get("id").and_then(Value::as_str))
        .map(|id| format!("Patient/{id}"));
    let mut launch = launch_of(patient.as_ref());
    let queried = match run_queries(app, actor, &plan, &mut launch).await {
        Ok(queried) => queried,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let (_, response, issues) = populate_planned(
        &form.compiled.form,
        &form.questionnaire,
        &format!("Questionnaire/{}", form.id),
        &launch,
        &plan,
        &queried,
        subject.as_deref(),
    )?;
    tracing::info!(
        prefilled = patient.is_some(),
        queries = plan.queries(),
        "questionnaire populated"
    );
    let mut parameters = vec![json!({"name": "response", "resource": response})];
    if !issues.is_empty() {
        parameters.push(json!({"name": "issues", "resource": outcome_json(&issues)}));
    }
    Ok(super::fhir::fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Parameters", "parameter": parameters}),
    ))
}

/// The launch list: `patient`, when there is one.
fn launch_of(patient: Option<&Value>) -> Vec<(String, Json)> {
    patient
        .and_then(|p| Json::parse(&p.to_string()))
        .into_iter()
        .map(|p| ("patient".to_owned(), p))
        .collect()
}

fn outcome_json(issues: &[Issue]) -> Value {
    serde_json::from_slice(&crate::fhir::outcome::to_json(issues)).unwrap_or(Value::Null)
}

/// Why a query was not run: an answer of its status with an OperationOutcome of
/// its issues, or the API's own error.
enum Refusal {
    Outcome(StatusCode, Vec<Issue>),
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Outcome(status, issues) => {
                super::fhir::fhir_json(status, &outcome_json(&issues))
            }
            Refusal::Api(e) => e.into_response(),
        }
    }
}

fn refusal(status: StatusCode, issues: &[Issue]) -> Refusal {
    Refusal::Outcome(status, issues.to_vec())
}

/// The Patient of the launch context: `context` named `patient` (a reference or
/// the resource), else `subject`. Read from the EMR, its reading on the record.
async fn launch_patient(
    app: &AppState,
    actor: &Actor,
    body: &Value,
) -> Result<Option<Value>, ApiError> {
    let context = body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some("context"))
        .find(|p| {
            p.get("part")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|part| {
                    part.get("name").and_then(Value::as_str) == Some("name")
                        && part.get("valueString").and_then(Value::as_str) == Some("patient")
                })
        });
    let content = context.and_then(|c| {
        c.get("part")?
            .as_array()?
            .iter()
            .find(|part| part.get("name").and_then(Value::as_str) == Some("content"))
    });
    if let Some(resource) = content.and_then(|c| c.get("resource")) {
        if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
            return Err(ApiError::Unprocessable(vec![
                Issue::error(IssueType::Invalid, "The patient context must be a Patient")
                    .at("Parameters.parameter.where(name='context').part.where(name='content')"),
            ]));
        }
        return Ok(Some(resource.clone()));
    }
    let reference = content
        .and_then(|c| c.pointer("/valueReference/reference"))
        .or_else(|| parameter(body, "subject")?.pointer("/valueReference/reference"))
        .and_then(Value::as_str);
    let Some(reference) = reference else {
        return Ok(None);
    };
    let Some(id) = reference.strip_prefix("Patient/") else {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotSupported,
                "The subject must be a Patient reference, Patient/{id}",
            )
            .at("Parameters.parameter.where(name='subject')"),
        ]));
    };
    let patient = app.emr.read_patient(id).await.map_err(|e| {
        tracing::error!(error = %e, "the patient's chart could not be read");
        ApiError::Unavailable
    })?;
    let patient = patient.ok_or_else(|| {
        ApiError::Unprocessable(vec![
            Issue::error(IssueType::NotFound, "No such Patient")
                .at("Parameters.parameter.where(name='subject')"),
        ])
    })?;
    actor
        .record(app, Interaction::Read, audit::touched(&patient))
        .await?;
    Ok(Some(patient))
}

/// The form's QuestionnaireResponse, in progress: its `initial` values, then its
/// `initialExpression`s with `%patient` bound to `patient` (when known). The one
/// prefill of the server: `$populate` and a patient's invitation both use it (the
/// invitation without queries: a patient's own form is prefilled from their
/// Patient alone).
pub(crate) fn populate(
    form: &Form,
    questionnaire: &str,
    patient: Option<&Value>,
    subject: Option<&str>,
) -> Result<(Draft, Value), ApiError> {
    let (draft, response, _) = populate_planned(
        form,
        &Value::Null,
        questionnaire,
        &launch_of(patient),
        &Plan::default(),
        &Queried::default(),
        subject,
    )?;
    Ok((draft, response))
}

const VARIABLE: &str = "http://hl7.org/fhir/StructureDefinition/variable";
const POPULATION_CONTEXT: &str =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-itemPopulationContext";
const FHIR_QUERY: &str = "application/x-fhir-query";
const FHIRPATH: &str = "text/fhirpath";
/// The most searches one `$populate` runs (each up to [`crate::emr::SEARCH_LIMIT`]
/// resources): a form is not a way to read the whole chart store.
const MAX_QUERIES: usize = 32;

/// One SDC `Expression`: its name, language and text, and where it is (a
/// FHIRPath into the Questionnaire, for issues).
#[derive(Clone, Debug, Default)]
struct Expression {
    name: String,
    language: String,
    text: String,
    at: String,
}

impl Expression {
    fn of(extension: &Value, at: String) -> Self {
        let x = &extension["valueExpression"];
        let text = |k: &str| {
            x.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            name: text("name"),
            language: text("language"),
            text: text("expression"),
            at,
        }
    }
}

/// What a Questionnaire asks `$populate` to read besides the launch context:
/// its `x-fhir-query` variables (the form's, then each item's, in document
/// order) and its groups' `itemPopulationContext`s, by linkId.
#[derive(Debug, Default)]
struct Plan {
    variables: Vec<Expression>,
    contexts: Vec<(String, Expression)>,
}

/// The extensions of `node` with `url`, with their index.
fn extensions<'a>(node: &'a Value, url: &'a str) -> impl Iterator<Item = (usize, &'a Value)> {
    node["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(move |(_, e)| e["url"] == url)
}

impl Plan {
    fn of(questionnaire: &Value) -> Result<Self, ApiError> {
        let mut plan = Plan::default();
        let mut issues = Vec::new();
        for (n, e) in extensions(questionnaire, VARIABLE) {
            let x = Expression::of(e, format!("Questionnaire.extension[{n}]"));
            if x.language == FHIR_QUERY {
                plan.variables.push(x);
            }
        }
        for (n, _) in extensions(questionnaire, POPULATION_CONTEXT) {
            issues.push(
                Issue::error(
                    IssueType::NotSupported,
                    "An itemPopulationContext on the Questionnaire itself is not populated: put it on a group",
                )
                .at(format!("Questionnaire.extension[{n}]")),
            );
        }
        plan.walk(&questionnaire["item"], "Questionnaire", &mut issues);
        for x in &plan.variables {
            if x.name.is_empty() {
                issues.push(
                    Issue::error(IssueType::Required, "A variable needs a name").at(x.at.clone()),
                );
            }
        }
        if plan.queries() > MAX_QUERIES {
            issues.push(
                Issue::error(
                    IssueType::TooCostly,
                    format!(
                        "A form may run at most {MAX_QUERIES} x-fhir-query searches to populate"
                    ),
                )
                .at("Questionnaire"),
            );
        }
        if issues.is_empty() {
            Ok(plan)
        } else {
            Err(ApiError::Unprocessable(issues))
        }
    }

    fn walk(&mut self, items: &Value, at: &str, issues: &mut Vec<Issue>) {
        for (i, item) in items.as_array().into_iter().flatten().enumerate() {
            let here = format!("{at}.item[{i}]");
            for (n, e) in extensions(item, VARIABLE) {
                let x = Expression::of(e, format!("{here}.extension[{n}]"));
                if x.language == FHIR_QUERY {
                    self.variables.push(x);
                }
            }
            for (n, e) in extensions(item, POPULATION_CONTEXT) {
                let x = Expression::of(e, format!("{here}.extension[{n}]"));
                let link = item["linkId"].as_str().unwrap_or_default().to_owned();
                let problem = if item["type"] != "group" {
                    Some((
                        IssueType::NotSupported,
                        "An itemPopulationContext is populated on a group item only",
                    ))
                } else if x.name.is_empty() {
                    Some((
                        IssueType::Required,
                        "An itemPopulationContext needs a name, for its items' expressions",
                    ))
                } else if x.language != FHIRPATH && x.language != FHIR_QUERY {
                    Some((
                        IssueType::NotSupported,
                        "An itemPopulationContext is populated from text/fhirpath or application/x-fhir-query only",
                    ))
                } else {
                    None
                };
                match problem {
                    Some((code, why)) => issues.push(Issue::error(code, why).at(x.at)),
                    None => self.contexts.push((link, x)),
                }
            }
            self.walk(&item["item"], &here, issues);
        }
    }

    fn queries(&self) -> usize {
        self.variables.len()
            + self
                .contexts
                .iter()
                .filter(|(_, x)| x.language == FHIR_QUERY)
                .count()
    }

    fn context(&self, link_id: &str) -> Option<&Expression> {
        self.contexts
            .iter()
            .find(|(l, _)| l == link_id)
            .map(|(_, x)| x)
    }
}

/// What the queries found for each `itemPopulationContext` given by a query:
/// its resources, by linkId. (The variables' Bundles are in the launch list.)
#[derive(Debug, Default)]
struct Queried {
    contexts: Vec<(String, Vec<Json>)>,
}

/// Runs the plan's queries in document order: each variable's Bundle is bound
/// under its name (later queries may use it), each context query's resources
/// kept. Every resource read is on the record before anything is answered.
async fn run_queries(
    app: &AppState,
    actor: &Actor,
    plan: &Plan,
    launch: &mut Vec<(String, Json)>,
) -> Result<Queried, Refusal> {
    let mut touched = Vec::new();
    let mut queried = Queried::default();
    for x in &plan.variables {
        let resources = query(app, actor, x, launch).await?;
        touched.extend(resources.iter().flat_map(audit::touched));
        let bundle = json!({"resourceType": "Bundle", "type": "searchset",
            "total": resources.len(),
            "entry": resources.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()});
        let bundle = Json::parse(&bundle.to_string()).ok_or_else(unavailable)?;
        launch.push((x.name.clone(), bundle));
    }
    for (link, x) in &plan.contexts {
        if x.language != FHIR_QUERY {
            continue;
        }
        let resources = query(app, actor, x, launch).await?;
        touched.extend(resources.iter().flat_map(audit::touched));
        let resources = resources
            .iter()
            .map(|r| Json::parse(&r.to_string()).ok_or_else(unavailable))
            .collect::<Result<Vec<_>, _>>()?;
        queried.contexts.push((link.clone(), resources));
    }
    if !touched.is_empty() {
        touched.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        touched.dedup_by(|a, b| a.as_str() == b.as_str());
        actor.record(app, Interaction::Search, touched).await?;
    }
    Ok(queried)
}

fn unavailable() -> Refusal {
    Refusal::Api(ApiError::Unavailable)
}

/// Runs the search of `x` (an `x-fhir-query`, its `{{…}}` FHIRPath substituted
/// first) against the EMR, as the caller: a type their role may not search is
/// 403, a query this server cannot run 422, each naming where it is.
async fn query(
    app: &AppState,
    actor: &Actor,
    x: &Expression,
    launch: &[(String, Json)],
) -> Result<Vec<Value>, Refusal> {
    let what = if x.name.is_empty() {
        "The query".to_owned()
    } else {
        format!("The query of %{}", x.name)
    };
    let unprocessable = |code: IssueType, why: &str| {
        refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            &[Issue::error(code, format!("{what} {why}")).at(x.at.clone())],
        )
    };
    let text = substitute(&x.text, launch).map_err(|why| unprocessable(IssueType::Invalid, why))?;
    let text = text.trim();
    if text.contains("://") || text.starts_with('/') {
        return Err(unprocessable(
            IssueType::NotSupported,
            "names a server by its URL: only searches relative to this server's EMR (Type?parameters) are run",
        ));
    }
    let (resource_type, search) = text.split_once('?').unwrap_or((text, ""));
    let is_type = resource_type.starts_with(|c: char| c.is_ascii_uppercase())
        && resource_type.bytes().all(|b| b.is_ascii_alphanumeric());
    if !is_type {
        return Err(unprocessable(
            IssueType::NotSupported,
            "is not a search (Type?parameters): reads and operations are not run",
        ));
    }
    let role = actor.principal.role;
    if !crate::auth::policy::allowed(role, &Method::GET, "/fhir/{type}", Some(resource_type)) {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            &[Issue::error(
                IssueType::Forbidden,
                format!("{what} searches {resource_type}, which your role may not read"),
            )
            .at(x.at.clone())],
        ));
    }
    app.emr
        .search(resource_type, search)
        .await
        .map_err(|e| match e {
            EmrError::Rejected { issues, .. } => {
                let issues: Vec<Issue> = issues
                    .into_iter()
                    .map(|i| Issue {
                        diagnostics: format!("{what} cannot be run: {}", i.diagnostics),
                        expression: Some(x.at.clone()),
                        ..i
                    })
                    .collect();
                refusal(StatusCode::UNPROCESSABLE_ENTITY, &issues)
            }
            e => {
                tracing::error!(error = %e, "a $populate query could not be run");
                unavailable()
            }
        })
}

/// An environment over the launch list (its first entry as `%resource`), each
/// entry bound by name.
fn evaluate<'a>(
    expr: &shared::fhirpath::Expr,
    bound: &[(&'a str, &'a Json)],
    empty: &'a Json,
) -> Result<Vec<Node<'a>>, shared::fhirpath::EvalError> {
    let root = bound.first().map_or(empty, |(_, r)| *r);
    let mut env = Env::json(root, None);
    for (name, value) in bound {
        env.vars.push((name, Ok(vec![Node::Json(value)])));
    }
    env.eval(expr, &[Node::Json(root)])
}

/// `text` with each `{{expression}}` replaced by what the FHIRPath gives over
/// the launch context and the variables so far: primitives, comma-separated,
/// each percent-encoded (empty gives nothing). A resource or another complex
/// value cannot be a search value: an error, as one that does not parse.
fn substitute(text: &str, launch: &[(String, Json)]) -> Result<String, &'static str> {
    let bound: Vec<(&str, &Json)> = launch.iter().map(|(n, j)| (n.as_str(), j)).collect();
    let empty = Json::Object(Vec::new());
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("has a {{ without its }}")?;
        let expr = shared::fhirpath::parse_full(after[..end].trim())
            .map_err(|_| "embeds an expression that does not parse")?;
        let nodes = evaluate(&expr, &bound, &empty)
            .map_err(|_| "embeds an expression that cannot be evaluated")?;
        let mut values = Vec::new();
        for node in &nodes {
            let value = shared::fhirpath::display(node).ok_or(
                "embeds an expression that gives a resource or another complex value, not a search value",
            )?;
            values.push(encode(&value));
        }
        out.push_str(&values.join(","));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Percent-encodes all but the unreserved characters, so a value cannot end
/// or add a parameter.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// [`populate`] with what the queries found: the launch list (the patient and
/// each query variable's Bundle), then each group with an `itemPopulationContext`
/// filled once per resource of its context (one instance each, for a repeating
/// group), its items' `initialExpression`s evaluated with the context's name bound
/// to that resource. Warnings (a context of several resources on a group that does
/// not repeat) come back beside the response.
fn populate_planned(
    form: &Form,
    questionnaire_json: &Value,
    questionnaire: &str,
    launch: &[(String, Json)],
    plan: &Plan,
    queried: &Queried,
    subject: Option<&str>,
) -> Result<(Draft, Value, Vec<Issue>), ApiError> {
    // The query variables are bound in the launch list, not run as FHIRPath.
    let names: Vec<(&str, &str)> = plan
        .variables
        .iter()
        .map(|x| (x.name.as_str(), x.text.as_str()))
        .collect();
    let form = &without_variables(form, &names);
    let bound: Vec<(&str, &Json)> = launch.iter().map(|(n, j)| (n.as_str(), j)).collect();
    let mut draft = Draft::initial_in(form, None, &bound);
    let mut issues = Vec::new();
    if !plan.contexts.is_empty() {
        let filler = Filler {
            form,
            plan,
            queried,
        };
        filler.fill(
            &form.items,
            &questionnaire_json["item"],
            "",
            &bound,
            &mut draft,
            &mut issues,
        )?;
    }
    let response = draft.response(form, questionnaire.to_owned());
    let mut response = serde_json::to_value(&response).map_err(|_| ApiError::Unavailable)?;
    response["status"] = json!("in-progress");
    if let Some(subject) = subject {
        response["subject"] = json!({"reference": subject});
    }
    Ok((draft, response, issues))
}

/// `form` without the variables in `names` (name and expression text).
fn without_variables(form: &Form, names: &[(&str, &str)]) -> Form {
    fn keep(v: &Variable, names: &[(&str, &str)]) -> bool {
        !names.contains(&(v.name.as_str(), v.expression.as_str()))
    }
    fn strip(items: &mut [Item], names: &[(&str, &str)]) {
        for item in items {
            item.variables.retain(|v| keep(v, names));
            strip(&mut item.items, names);
        }
    }
    let mut form = form.clone();
    if !names.is_empty() {
        form.variables.retain(|v| keep(v, names));
        strip(&mut form.items, names);
    }
    form
}

struct Filler<'a> {
    form: &'a Form,
    plan: &'a Plan,
    queried: &'a Queried,
}

impl Filler<'_> {
    /// Fills the groups with a population context among `items` (the compiled
    /// ones beside the Questionnaire's JSON `json`), their answers under `prefix`.
    fn fill(
        &self,
        items: &[Item],
        json: &Value,
        prefix: &str,
        bound: &[(&str, &Json)],
        draft: &mut Draft,
        issues: &mut Vec<Issue>,
    ) -> Result<(), ApiError> {
        for q in json.as_array().into_iter().flatten() {
            let Some(link) = q["linkId"].as_str() else {
                continue;
            };
            let Some(item) = items.iter().find(|i| i.link_id == link) else {
                continue;
            };
            let Some(x) = self.plan.context(link) else {
                let inner = instance_prefix(prefix, link, 0);
                self.fill(&item.items, &q["item"], &inner, bound, draft, issues)?;
                continue;
            };
            let computed;
            let resources: &[Json] = if x.language == FHIR_QUERY {
                self.queried
                    .contexts
                    .iter()
                    .find(|(l, _)| l == link)
                    .map_or(&[][..], |(_, r)| r.as_slice())
            } else {
                computed = context_resources(x, bound)?;
                &computed
            };
            let count = if item.repeats {
                resources.len()
            } else {
                if resources.len() > 1 {
                    issues.push(
                        Issue::warning(
                            IssueType::Informational,
                            format!(
                                "The population context %{} gives {} resources but its group does not repeat: the first fills it",
                                x.name,
                                resources.len()
                            ),
                        )
                        .at(x.at.clone()),
                    );
                }
                resources.len().min(1)
            };
            // What the first pass gave this group, without its context, goes.
            let path = item_path(prefix, link);
            let inside = format!("{path}[");
            draft.answers.retain(|k, _| !k.starts_with(&inside));
            draft.instances.retain(|k, _| !k.starts_with(&inside));
            draft.instances.insert(path, count.max(1));
            let sub_form = Form {
                items: item.items.clone(),
                ..self.form.clone()
            };
            for (n, resource) in resources.iter().take(count).enumerate() {
                let mut inner = bound.to_vec();
                inner.push((x.name.as_str(), resource));
                let mut sub = Draft::initial_in(&sub_form, None, &inner);
                self.fill(&item.items, &q["item"], "", &inner, &mut sub, issues)?;
                let at = instance_prefix(prefix, link, n);
                for (k, v) in sub.answers {
                    draft.answers.insert(format!("{at}{k}"), v);
                }
                for (k, v) in sub.instances {
                    draft.instances.insert(format!("{at}{k}"), v);
                }
            }
        }
        Ok(())
    }
}

/// The resources (or elements) a FHIRPath population context gives over the
/// launch list (`%bundle.entry.resource`, `%patient.contact`…).
fn context_resources(x: &Expression, bound: &[(&str, &Json)]) -> Result<Vec<Json>, ApiError> {
    let invalid = |why: &str| {
        ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::Invalid,
                format!("The population context %{} {why}", x.name),
            )
            .at(x.at.clone()),
        ])
    };
    let expr = shared::fhirpath::parse_full(&x.text).map_err(|_| invalid("does not parse"))?;
    let empty = Json::Object(Vec::new());
    let nodes = evaluate(&expr, bound, &empty).map_err(|_| invalid("cannot be evaluated"))?;
    nodes
        .iter()
        .map(|n| match n {
            Node::Json(j @ Json::Object(_)) => Ok((*j).clone()),
            _ => Err(invalid(
                "gives a value that is not a resource or an element",
            )),
        })
        .collect()
}

/// Where a Questionnaire asks for population this server does not do:
/// `sourceQueries`, and `x-fhir-query` anywhere but a variable or an
/// `itemPopulationContext` (an `initialExpression` is FHIRPath).
fn unsupported_population(questionnaire: &Value) -> Vec<Issue> {
    fn walk(value: &Value, path: &str, out: &mut Vec<Issue>) {
        match value {
            Value::Object(map) => {
                let url = map.get("url").and_then(Value::as_str).unwrap_or_default();
                if url == VARIABLE || url == POPULATION_CONTEXT {
                    return;
                }
                let language = map
                    .get("language")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if url.ends_with("sdc-questionnaire-sourceQueries") || language == FHIR_QUERY {
                    out.push(
                        Issue::error(
                            IssueType::NotSupported,
                            "This server populates from x-fhir-query variables and itemPopulationContext, not from sourceQueries or an x-fhir-query elsewhere",
                        )
                        .at(path.to_owned()),
                    );
                    return;
                }
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(questionnaire, "Questionnaire", &mut out);
    out
}
