//! What the intake pipeline takes and gives: a [`Submission`] with its [`Proof`]
//! of identity (or [`Invited`]), the [`Extras`] a form extracts besides the Patient,
//! and what becomes of it ([`Accepted`], [`Decision`], [`IntakeError`]).

use serde_json::{Value, json};

/// The identifier system of what an intake writes: the Patient it creates, its
/// QuestionnaireResponse (`identifier`) and Provenance (`meta.tag`); the rest of
/// what its form extracts is under [`EXTRACTED_SYSTEM`].
/// A retried or replayed delivery finds them by it instead of writing twice.
pub const SUBMISSION_SYSTEM: &str = "urn:intake:submission";

/// The identifier system of the other resources an intake's form extracts
/// (RelatedPerson, Observation…): each has the value `{intake id}/{n}`, `n` its
/// place among them (from 1). Not [`SUBMISSION_SYSTEM`]: there a value is an
/// intake's id and names one resource per type (its Patient, its response), while
/// a form may extract several resources of one type, and a condition on a shared
/// value would make the second find the first and never be written.
pub const EXTRACTED_SYSTEM: &str = "urn:intake:extracted";

/// What a form extracts besides the Patient (an emergency contact's
/// RelatedPerson, Observations…), delivered with it in the same transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// The extracted Patient's `fullUrl`, by which these refer to it.
    pub patient_url: Option<String>,
    /// The other entries of the extraction, `{fullUrl, resource}`, in its order
    /// (which numbers their identifiers, so it must not change between attempts).
    pub entries: Vec<Value>,
}

impl Extras {
    /// The entries of an extraction's Bundle that are not its Patient.
    pub fn of(extraction: &Value) -> Self {
        let mut out = Self::default();
        for e in extraction["entry"].as_array().into_iter().flatten() {
            let Some(resource) = e.get("resource").filter(|r| r.is_object()) else {
                continue;
            };
            let full_url = e.get("fullUrl").cloned();
            if resource["resourceType"] == "Patient" && out.patient_url.is_none() {
                out.patient_url = full_url.and_then(|u| u.as_str().map(str::to_owned));
                continue;
            }
            let mut entry = json!({"resource": resource});
            if let Some(u) = full_url {
                entry["fullUrl"] = u;
            }
            out.entries.push(entry);
        }
        out
    }

    /// Leaves out the resources of a type not in `allowed` (what the embedded
    /// store keeps); how many were left out.
    pub fn retain_types(&mut self, allowed: &[&str]) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| {
            e.pointer("/resource/resourceType")
                .and_then(Value::as_str)
                .is_some_and(|t| allowed.contains(&t))
        });
        before - self.entries.len()
    }

    /// What an intake waiting for a decision keeps (`intake.extracted`): the
    /// Patient alone when nothing else was extracted (as before these were
    /// delivered), else a `collection` Bundle of the Patient and the rest.
    pub(crate) fn keep(&self, patient: &Value) -> String {
        if self.entries.is_empty() {
            return patient.to_string();
        }
        let mut first = json!({"resource": patient});
        if let Some(u) = &self.patient_url {
            first["fullUrl"] = Value::String(u.clone());
        }
        let mut entries = vec![first];
        entries.extend(self.entries.iter().cloned());
        json!({"resourceType": "Bundle", "type": "collection", "entry": entries}).to_string()
    }

    /// The Patient and the rest, from what [`Extras::keep`] kept (or a Patient
    /// alone, as older versions kept it).
    pub(crate) fn kept(text: &str) -> Option<(Value, Self)> {
        let value: Value = serde_json::from_str(text).ok()?;
        if value["resourceType"] == "Bundle" {
            let patient = patient_in(&value)?;
            return Some((patient, Self::of(&value)));
        }
        value.is_object().then(|| (value, Self::default()))
    }
}

/// Where a pending (accepted, not yet delivered) new patient sits in the index.
pub(crate) fn pending_key(intake: &str) -> String {
    format!("intake-{intake}")
}

/// What was decided for an intake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An existing patient, matched `certain`.
    Linked,
    /// Candidates a person must decide between.
    Review,
    /// Nobody like this patient: a new chart.
    Created,
}

impl Decision {
    /// As in the API and the database.
    pub fn code(self) -> &'static str {
        match self {
            Decision::Linked => "linked",
            Decision::Review => "review",
            Decision::Created => "created",
        }
    }

    pub(crate) fn parse(code: &str) -> Self {
        match code {
            "linked" => Decision::Linked,
            "created" => Decision::Created,
            _ => Decision::Review,
        }
    }
}

/// An intake as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub intake: String,
    /// What was decided.
    pub outcome: Decision,
    /// `Patient/{id}` once known.
    pub patient: Option<String>,
    /// `accepted`, `delivered`, `review` or `dead`.
    pub status: String,
    /// Whether this answer repeats an earlier one (same Idempotency-Key).
    pub repeated: bool,
}

/// A checked submission, ready to decide.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The client's Idempotency-Key.
    pub key: String,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// The Questionnaire answered (canonical or `Questionnaire/{id}`).
    pub questionnaire: String,
    /// The QuestionnaireResponse (FHIR JSON), as checked.
    pub response: Value,
    /// The Patient extracted from it.
    pub patient: Value,
    /// Whatever else was extracted from it.
    pub extras: Extras,
    /// Who sent it, for Provenance (`Intake patient app`, a kiosk's name, …).
    pub device: String,
    /// Who to name in the audit trail when it is accepted (a kiosk), if anyone.
    pub agent: Option<crate::audit::Agent>,
    /// The invitation it was sent under, when the patient came by one.
    pub invited: Option<Invited>,
    /// What proved who the patient is (stamped on `response` already).
    pub proof: Proof,
    /// Whether a `certain` match may be filed without a person: the intake
    /// has proof, or the clinic links unverified intakes too.
    pub may_link: bool,
}

/// What proved who the patient of an intake is (issue 21). An intake without
/// proof that matches a chart is not filed there on the strength of the typed
/// name and birth date alone (anyone who knows a neighbour's details could put
/// a false allergy in her chart): it waits as a proposed link staff confirm,
/// unless the clinic set `INTAKE_UNVERIFIED_INTAKES=link`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// An invitation: its single-use token plus the birth date.
    Invitation,
    /// A kiosk enrolled by staff, in the clinic.
    Kiosk,
    /// A signed-in staff member entered it.
    Staff,
    /// A system client whose token is allowed to link (`--may-link`).
    System,
    /// None: the public page, or a system client acting for nobody.
    None,
}

/// The system of the `meta.tag` on an intake's QuestionnaireResponse and
/// Provenance that says which [`Proof`] the intake carried.
pub const PROOF_SYSTEM: &str = "urn:intake:identity-proof";

impl Proof {
    /// As in the `meta.tag`.
    pub fn code(self) -> &'static str {
        match self {
            Proof::Invitation => "invitation",
            Proof::Kiosk => "kiosk",
            Proof::Staff => "staff",
            Proof::System => "system",
            Proof::None => "unverified",
        }
    }

    /// What a clinician reading the chart is told.
    pub(crate) fn display(self) -> &'static str {
        match self {
            Proof::Invitation => "Patient-reported; identity verified by invitation",
            Proof::Kiosk => "Patient-reported at a clinic kiosk",
            Proof::Staff => "Entered by staff",
            Proof::System => "Sent by a trusted system",
            Proof::None => "Patient-reported; identity not verified",
        }
    }

    /// Whether the intake proves who the patient is.
    pub fn is_verified(self) -> bool {
        self != Proof::None
    }

    /// The `meta.tag` saying so.
    pub fn tag(self) -> Value {
        json!({"system": PROOF_SYSTEM, "code": self.code(), "display": self.display()})
    }

    /// `resource` with this proof as its only tag of [`PROOF_SYSTEM`]: a tag
    /// the sender wrote there is dropped, so nobody can claim a proof.
    pub fn stamp(self, resource: &mut Value) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let mut tags: Vec<Value> = meta
            .get("tag")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        tags.retain(|t| t.get("system").and_then(Value::as_str) != Some(PROOF_SYSTEM));
        tags.push(self.tag());
        meta["tag"] = Value::Array(tags);
    }

    /// The proof a stored response was stamped with (none: unverified).
    pub fn of(resource: &Value) -> Self {
        let code = resource
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| t.get("system").and_then(Value::as_str) == Some(PROOF_SYSTEM))
            .and_then(|t| t.get("code"))
            .and_then(Value::as_str);
        match code {
            Some("invitation") => Proof::Invitation,
            Some("kiosk") => Proof::Kiosk,
            Some("staff") => Proof::Staff,
            Some("system") => Proof::System,
            _ => Proof::None,
        }
    }
}

/// The reason code of a review Task that proposes a link an intake without
/// proof could not make itself.
pub const UNVERIFIED_REASON: &str = "unverified-identity";

/// An intake sent under a confirmed invitation (see [`crate::invitation`]).
#[derive(Clone, Debug)]
pub struct Invited {
    /// The invitation's id: named by the Provenance, marked used with the accept.
    pub invitation: String,
    /// The invited patient's id, for an invitation to a known patient: the
    /// intake is linked to them without a match (they proved who they are), and
    /// what they changed becomes a demographics Task.
    pub patient: Option<String>,
    /// That patient's chart as the EMR has it, to compare the answers with.
    pub chart: Option<Value>,
}

/// Why an intake was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The key was used before for a different body.
    #[error("idempotency key reused for other content")]
    KeyReused,
    /// The EMR could not be asked for candidates; nothing was accepted.
    #[error("the EMR could not be searched: {0}")]
    Emr(String),
    /// The local database failed; nothing was accepted.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The pipeline has stopped (shutting down).
    #[error("the intake pipeline has stopped")]
    Stopped,
    /// The invitation was used (or cancelled, or locked) before this intake
    /// was decided; nothing was accepted.
    #[error("the invitation can no longer be used")]
    InvitationSpent,
}

/// The new Patient in a delivery bundle, if it creates one.
pub(crate) fn patient_in(bundle: &Value) -> Option<Value> {
    bundle["entry"]
        .as_array()?
        .iter()
        .find(|e| e.pointer("/resource/resourceType") == Some(&json!("Patient")))
        .and_then(|e| e.get("resource").cloned())
}
