//! The audit trail: every security-relevant action as a FHIR R4 `AuditEvent`, in
//! the spirit of IHE BALP (who, what, when, from where, outcome), in an
//! append-only table whose rows are chained by SHA-256.
//!
//! An event names what it touched by reference only (`Patient/123`): never a name,
//! a birth date or anything else a person typed. Failed logins carry no agent name
//! at all (the name tried may be a mistyped password, or someone else's account).
//!
//! The chain: each row stores `prev_hash` (the previous row's `hash`, 64 zeros for
//! the first) and `hash`, an HMAC-SHA-256 over every stored column (`seq`,
//! `recorded`, `agent`, `patient`, every patient in `audit_event_patient`, the
//! event, `prev_hash`) with a key that is not in the database ([`load_key`]:
//! `audit.key` in the data folder, mode 0600, or `INTAKE_AUDIT_KEY`). Editing,
//! inserting or removing a row breaks the links, and without the key nobody can
//! recompute them ([`verify`]). Rows from before the key (`keyed = 0`) keep
//! their SHA-256 links. Removing rows from the end leaves a shorter chain that
//! holds: [`checkpoint`] appends the count and the head MAC, signed, to
//! `audit.checkpoints` outside the database every minute and at a clean
//! shutdown, and [`verify_all`] compares the database with the last one.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Row as _, SqliteConnection, SqlitePool};

use crate::clock::fhir_instant;
use crate::crypto::hex;
pub use crate::crypto::{KEY_ENV, KEY_FILE, load_key};

/// The file in the data folder that checkpoints are appended to.
pub const CHECKPOINT_FILE: &str = "audit.checkpoints";
/// The key as each connection holds it: in a TEMP table (memory only, private
/// to the connection, never in the database file), put there by `db::open`.
async fn key_of(conn: &mut SqliteConnection) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query_scalar("SELECT key FROM temp.audit_key")
        .fetch_one(&mut *conn)
        .await
}

/// One stored row, as its MAC covers it.
struct Row<'a> {
    seq: i64,
    recorded: &'a str,
    agent: Option<&'a str>,
    patient: Option<&'a str>,
    patients: &'a [&'a str],
    event: &'a str,
    prev: &'a str,
}

/// HMAC-SHA-256 (hex) of every column of `row`, each length-prefixed so no two
/// rows share an input.
fn row_mac(key: &[u8], row: &Row<'_>) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut context = ring::hmac::Context::with_key(&key);
    let mut field = |bytes: Option<&[u8]>| match bytes {
        Some(b) => {
            context.update(&[1]);
            context.update(&(b.len() as u64).to_be_bytes());
            context.update(b);
        }
        None => context.update(&[0]),
    };
    field(Some(b"intake-audit-v1"));
    field(Some(row.seq.to_string().as_bytes()));
    field(Some(row.recorded.as_bytes()));
    field(row.agent.map(str::as_bytes));
    field(row.patient.map(str::as_bytes));
    field(Some(row.patients.join("\n").as_bytes()));
    field(Some(row.event.as_bytes()));
    field(Some(row.prev.as_bytes()));
    hex(context.sign().as_ref())
}

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const REST: &str = "http://hl7.org/fhir/restful-interaction";
const ROLE_SYSTEM: &str = "urn:intake:role";

/// What happened: the event's `type` and `subtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A staff login (DCM 110114 User Authentication / 110122 Login).
    Login,
    /// A staff logout (DCM 110114 / 110123 Logout).
    Logout,
    /// An account locked after repeated failures (DCM 110113 Security Alert /
    /// 110137 User security Attributes Changed).
    Lockout,
    /// A request refused by the CSRF defences (DCM 110113 / 110132 Use of
    /// Restricted Function).
    CsrfRefused,
    /// A staff account or token created or revoked (DCM 110113 / 110136 Security
    /// Roles Changed).
    SecurityAdmin,
    /// A RESTful interaction on a resource (`rest` / read, search, create…).
    Rest(Interaction),
}

/// A FHIR RESTful interaction, the subtype of a [`Kind::Rest`] event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    /// `read` or `vread`.
    Read,
    /// `search-type`.
    Search,
    /// `create`.
    Create,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
}

impl Interaction {
    fn code(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Search => "search-type",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Delete => "delete",
        }
    }
}

impl Kind {
    fn type_and_subtype(self) -> (Value, Value) {
        let coding = |system: &str, code: &str, display: &str| json!({"system": system, "code": code, "display": display});
        match self {
            Kind::Login => (
                coding(DCM, "110114", "User Authentication"),
                coding(DCM, "110122", "Login"),
            ),
            Kind::Logout => (
                coding(DCM, "110114", "User Authentication"),
                coding(DCM, "110123", "Logout"),
            ),
            Kind::Lockout => (
                coding(DCM, "110113", "Security Alert"),
                coding(DCM, "110137", "User security Attributes Changed"),
            ),
            Kind::CsrfRefused => (
                coding(DCM, "110113", "Security Alert"),
                coding(DCM, "110132", "Use of Restricted Function"),
            ),
            Kind::SecurityAdmin => (
                coding(DCM, "110113", "Security Alert"),
                coding(DCM, "110136", "Security Roles Changed"),
            ),
            Kind::Rest(interaction) => (
                coding(EVENT_TYPE, "rest", "RESTful Operation"),
                json!({"system": REST, "code": interaction.code()}),
            ),
        }
    }
}

/// AuditEvent.action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create.
    C,
    /// Read, view, search.
    R,
    /// Update.
    U,
    /// Delete.
    D,
    /// Execute (login, logout, an operation).
    E,
}

impl Action {
    fn code(self) -> &'static str {
        match self {
            Action::C => "C",
            Action::R => "R",
            Action::U => "U",
            Action::D => "D",
            Action::E => "E",
        }
    }
}

/// AuditEvent.outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `0`: success.
    Success,
    /// `4`: the action failed (a wrong password, a refused request).
    MinorFailure,
    /// `8`: the action failed and something is likely wrong (a lockout, a forged request).
    SeriousFailure,
}

impl Outcome {
    fn code(self) -> &'static str {
        match self {
            Outcome::Success => "0",
            Outcome::MinorFailure => "4",
            Outcome::SeriousFailure => "8",
        }
    }
}

/// Who acted: a staff user or a system token, by name, with their role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// `urn:intake:staff-user` or `urn:intake:token`.
    pub system: &'static str,
    /// The username or the token's name.
    pub name: String,
    /// `front-desk`, `clinician`, `admin` or `system`.
    pub role: &'static str,
}

/// A resource reference (`Patient/123`): the only way an event names what it touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    /// `Type/id` with a FHIR type name and a FHIR id, else `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once('/')?;
        let kind_ok = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && kind.chars().all(|c| c.is_ascii_alphabetic());
        let id_ok = (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        (kind_ok && id_ok).then(|| Self(text.to_owned()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a stored resource touches, for an event about reading or writing it: the
/// resource itself, and every Patient it is about (a Patient is about itself; a
/// QuestionnaireResponse or Observation its `subject`, a Provenance its `target`s,
/// a Task its `for`, `focus` and candidate inputs, a RelatedPerson its `patient`).
pub fn touched(resource: &Value) -> Vec<Reference> {
    let mut out = Vec::new();
    let own = resource["resourceType"]
        .as_str()
        .zip(resource["id"].as_str())
        .and_then(|(t, id)| Reference::parse(&format!("{t}/{id}")));
    out.extend(own);
    let mut consider = |value: &Value| {
        if let Some(r) = value["reference"].as_str().and_then(Reference::parse)
            && r.as_str().starts_with("Patient/")
        {
            out.push(r);
        }
    };
    for key in ["subject", "patient", "for", "focus", "beneficiary"] {
        consider(&resource[key]);
    }
    for key in ["target", "input"] {
        for item in resource[key].as_array().into_iter().flatten() {
            consider(item);
            consider(&item["valueReference"]);
        }
    }
    out.dedup();
    out
}

/// One event, before it becomes FHIR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// C, R, U, D or E.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// Who, when known (a failed login has none).
    pub agent: Option<Agent>,
    /// The client's network address, when known.
    pub address: Option<IpAddr>,
    /// What was touched, by reference.
    pub entities: Vec<Reference>,
    /// The account or token acted on (a user created, an account locked), as
    /// (`urn:intake:staff-user` or `urn:intake:token`, name).
    pub account: Option<(&'static str, String)>,
    /// What changed on that account (`disable`, `enable`, `password`), if the
    /// action alone does not say.
    pub change: Option<&'static str>,
}

impl Event {
    /// An event with no agent, address or entity yet.
    pub fn new(kind: Kind, action: Action, outcome: Outcome) -> Self {
        Self {
            kind,
            action,
            outcome,
            agent: None,
            address: None,
            entities: Vec::new(),
            account: None,
            change: None,
        }
    }

    /// The same event, acting on the account or token `name` of `system`.
    #[must_use]
    pub fn about(mut self, system: &'static str, name: &str) -> Self {
        self.account = Some((system, name.to_owned()));
        self
    }

    /// The same event, saying what changed on the account it is [`about`](Self::about)
    /// (`disable`, `enable`, `password`): the entity's `detail`, so the trail tells
    /// a disabling from a password reset.
    #[must_use]
    pub fn change(mut self, what: &'static str) -> Self {
        self.change = Some(what);
        self
    }

    /// The same event, by `agent`.
    #[must_use]
    pub fn by(mut self, agent: Option<Agent>) -> Self {
        self.agent = agent;
        self
    }

    /// The same event, from `address`.
    #[must_use]
    pub fn from(mut self, address: Option<IpAddr>) -> Self {
        self.address = address;
        self
    }

    /// The same event, touching every one of `references` too.
    #[must_use]
    pub fn on_all(mut self, references: impl IntoIterator<Item = Reference>) -> Self {
        self.entities.extend(references);
        self
    }

    /// The same event, touching `reference` too.
    #[must_use]
    pub fn on(mut self, reference: Reference) -> Self {
        self.entities.push(reference);
        self
    }

    /// The event as a FHIR R4 `AuditEvent`, recorded at `recorded`.
    pub fn to_fhir(&self, recorded: SystemTime) -> Value {
        let (kind, subtype) = self.kind.type_and_subtype();
        let mut agent = json!({"requestor": true});
        match &self.agent {
            Some(who) => {
                agent["who"] = json!({"identifier": {"system": who.system, "value": who.name}});
                agent["role"] = json!([{"coding": [{"system": ROLE_SYSTEM, "code": who.role}]}]);
            }
            // R4 requires `who` or an identifier of some kind on no element, but a
            // reader must see that the agent is unknown, not missing by mistake.
            None => agent["name"] = json!("unknown"),
        }
        if let Some(address) = self.address {
            // 2: IP address.
            agent["network"] = json!({"address": address.to_string(), "type": "2"});
        }
        let mut event = json!({
            "resourceType": "AuditEvent",
            "type": kind,
            "subtype": [subtype],
            "action": self.action.code(),
            "recorded": fhir_instant(recorded),
            "outcome": self.outcome.code(),
            "agent": [agent],
            "source": {
                "observer": {"display": "Intake"},
                "type": [{
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server"
                }]
            }
        });
        let mut entities: Vec<Value> = self
            .entities
            .iter()
            .map(|r| json!({"what": {"reference": r.as_str()}}))
            .collect();
        if let Some((system, name)) = &self.account {
            let mut entity = json!({
                "what": {"identifier": {"system": system, "value": name}},
                // 2: System Object.
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2"
                }
            });
            if let Some(change) = self.change {
                entity["detail"] = json!([{"type": "change", "valueString": change}]);
            }
            entities.push(entity);
        }
        if !entities.is_empty() {
            event["entity"] = Value::Array(entities);
        }
        event
    }
}

/// JSON with every object's keys sorted and no whitespace: the same value always
/// gives the same bytes, whatever order serde_json keeps (fhirbolt turns on its
/// `preserve_order`).
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in ordered {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// SHA-256 (hex) of `prev_hash` followed by `canonical`.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex(&hasher.finalize())
}

/// Appends `event` to the chain on `conn`, returning its sequence number.
///
/// Call it inside the transaction of the write it records, so both commit or
/// neither does; that transaction should be a write one (`db::begin_write`), so
/// reading the last hash and appending cannot interleave with another writer. (If
/// it does, the UNIQUE `prev_hash` refuses the second append rather than fork.)
pub async fn record(
    conn: &mut SqliteConnection,
    recorded: SystemTime,
    event: &Event,
) -> Result<i64, sqlx::Error> {
    let key = key_of(conn).await?;
    let (seq, prev) = last(conn).await?;
    Ok(append(conn, &key, seq + 1, &prev, recorded, event).await?.0)
}

/// [`record`] for several events in order (a batch of intakes), reading the
/// chain's end once.
pub async fn record_all(
    conn: &mut SqliteConnection,
    recorded: SystemTime,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let key = key_of(conn).await?;
    let (mut seq, mut prev) = last(conn).await?;
    for event in events {
        (seq, prev) = append(conn, &key, seq + 1, &prev, recorded, event).await?;
    }
    Ok(())
}

/// The last row's `seq` and `hash` (0 and [`GENESIS`] when there is none).
async fn last(conn: &mut SqliteConnection) -> Result<(i64, String), sqlx::Error> {
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(last.unwrap_or_else(|| (0, GENESIS.to_owned())))
}

/// Appends `event` as row `seq` after the row whose MAC is `prev`: its `seq`
/// and MAC.
async fn append(
    conn: &mut SqliteConnection,
    key: &[u8],
    seq: i64,
    prev: &str,
    recorded: SystemTime,
    event: &Event,
) -> Result<(i64, String), sqlx::Error> {
    let fhir = event.to_fhir(recorded);
    let canonical = canonical_json(&fhir);
    let mut patients: Vec<&str> = event
        .entities
        .iter()
        .map(Reference::as_str)
        .filter(|r| r.starts_with("Patient/"))
        .collect();
    patients.sort_unstable();
    patients.dedup();
    let patient = patients.first().copied();
    let agent = event.agent.as_ref().map(|a| a.name.as_str());
    let at = fhir_instant(recorded);
    // Every patient is in `audit_event_patient` when there is more than one.
    let listed: &[&str] = if patients.len() > 1 { &patients } else { &[] };
    let hash = row_mac(
        key,
        &Row {
            seq,
            recorded: &at,
            agent,
            patient,
            patients: listed,
            event: &canonical,
            prev,
        },
    );
    sqlx::query(
        "INSERT INTO audit_event (seq, recorded, agent, patient, event, prev_hash, hash, keyed)
         VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
    )
    .bind(seq)
    .bind(&at)
    .bind(agent)
    .bind(patient)
    .bind(&canonical)
    .bind(prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    for chunk in listed.chunks(300) {
        let mut insert = sqlx::QueryBuilder::new("INSERT INTO audit_event_patient (seq, patient) ");
        insert.push_values(chunk, |mut row, patient| {
            row.push_bind(seq).push_bind(*patient);
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok((seq, hash))
}

/// [`record`] in a write transaction of its own.
pub async fn record_alone(
    db: &SqlitePool,
    recorded: SystemTime,
    event: &Event,
) -> Result<i64, sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    let seq = record(&mut tx, recorded, event).await?;
    tx.commit().await?;
    Ok(seq)
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Every link holds.
    Ok {
        /// How many events.
        events: u64,
    },
    /// The first event whose link does not hold.
    Broken {
        /// Its sequence number.
        seq: i64,
    },
}

/// Recomputes the chain from the first event: every keyed row's MAC with the
/// key, every older row's SHA-256 link, and no older row after a keyed one.
pub async fn verify(db: &SqlitePool) -> Result<Verified, sqlx::Error> {
    Ok(chain(db).await?.0)
}

/// [`verify`], and the last row's `seq` and MAC.
async fn chain(db: &SqlitePool) -> Result<(Verified, Option<(i64, String)>), sqlx::Error> {
    use futures_util::TryStreamExt as _;
    let mut conn = db.acquire().await?;
    let key = key_of(&mut conn).await?;
    // Every patient of the events that name more than one.
    let listed: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, patient FROM audit_event_patient ORDER BY seq, patient")
            .fetch_all(&mut *conn)
            .await?;
    let mut patients: std::collections::HashMap<i64, Vec<String>> = Default::default();
    for (seq, patient) in listed {
        patients.entry(seq).or_default().push(patient);
    }
    let mut rows = sqlx::query(
        "SELECT seq, recorded, agent, patient, event, prev_hash, hash, keyed
         FROM audit_event ORDER BY seq",
    )
    .fetch(&mut *conn);
    let mut expected_prev = GENESIS.to_owned();
    let mut expected_seq = 1_i64;
    let mut events = 0_u64;
    let mut keyed_seen = false;
    while let Some(row) = rows.try_next().await? {
        let seq: i64 = row.try_get("seq")?;
        let recorded: String = row.try_get("recorded")?;
        let agent: Option<String> = row.try_get("agent")?;
        let patient: Option<String> = row.try_get("patient")?;
        let event: String = row.try_get("event")?;
        let prev_hash: String = row.try_get("prev_hash")?;
        let hash: String = row.try_get("hash")?;
        let keyed: bool = row.try_get("keyed")?;
        let holds = if keyed {
            let listed: Vec<&str> = patients
                .get(&seq)
                .map(|p| p.iter().map(String::as_str).collect())
                .unwrap_or_default();
            row_mac(
                &key,
                &Row {
                    seq,
                    recorded: &recorded,
                    agent: agent.as_deref(),
                    patient: patient.as_deref(),
                    patients: &listed,
                    event: &event,
                    prev: &prev_hash,
                },
            ) == hash
        } else {
            // A row from before the key: its SHA-256 link, and never after one
            // with a key (a rewrite that drops the key).
            !keyed_seen
                && serde_json::from_str::<Value>(&event)
                    .map(|v| chain_hash(&prev_hash, &canonical_json(&v)))
                    .ok()
                    .as_ref()
                    == Some(&hash)
        };
        keyed_seen |= keyed;
        // A gap in the numbers is a removed row even if the links were rewritten.
        if seq != expected_seq || prev_hash != expected_prev || !holds {
            return Ok((Verified::Broken { seq }, None));
        }
        expected_prev = hash;
        expected_seq += 1;
        events += 1;
    }
    let head = (events > 0).then(|| (expected_seq - 1, expected_prev));
    Ok((Verified::Ok { events }, head))
}

/// One line of `audit.checkpoints`: the chain's length and head at a moment,
/// signed with the audit key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last event's `seq`.
    pub seq: i64,
    /// Its MAC.
    pub mac: String,
    /// When (FHIR instant).
    pub at: String,
}

impl Checkpoint {
    fn signature(&self, key: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        hex(ring::hmac::sign(
            &key,
            format!(
                "intake-audit-checkpoint-v1\n{}\n{}\n{}",
                self.seq, self.mac, self.at
            )
            .as_bytes(),
        )
        .as_ref())
    }

    fn line(&self, key: &[u8]) -> String {
        format!(
            "{} {} {} {}\n",
            self.seq,
            self.mac,
            self.at,
            self.signature(key)
        )
    }

    /// A line as [`Checkpoint::line`] wrote it, if its signature holds.
    fn parse(line: &str, key: &[u8]) -> Option<Self> {
        let mut parts = line.split_whitespace();
        let checkpoint = Checkpoint {
            seq: parts.next()?.parse().ok()?,
            mac: parts.next()?.to_owned(),
            at: parts.next()?.to_owned(),
        };
        let signature = parts.next()?;
        let expected = checkpoint.signature(key);
        crate::crypto::constant_time_eq(signature.as_bytes(), expected.as_bytes())
            .then_some(checkpoint)
    }
}

/// Appends the chain's head to `audit.checkpoints` in `data_dir` (append-only,
/// synced), unless it is the one `previous` names. The head written.
pub async fn checkpoint(
    db: &SqlitePool,
    data_dir: &std::path::Path,
    now: SystemTime,
    previous: Option<&Checkpoint>,
) -> anyhow::Result<Option<Checkpoint>> {
    let mut conn = db.acquire().await?;
    let key = key_of(&mut conn).await?;
    let (seq, mac) = last(&mut conn).await?;
    drop(conn);
    if seq == 0 || previous.is_some_and(|p| p.seq == seq && p.mac == mac) {
        return Ok(None);
    }
    let checkpoint = Checkpoint {
        seq,
        mac,
        at: fhir_instant(now),
    };
    let line = checkpoint.line(&key);
    let path = data_dir.join(CHECKPOINT_FILE);
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        std::io::Write::write_all(&mut file, line.as_bytes())?;
        file.sync_all()
    })
    .await??;
    Ok(Some(checkpoint))
}

/// What [`verify_all`] found: the chain, and the database against the last
/// checkpoint outside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The chain in the database.
    pub chain: Verified,
    /// The last checkpoint whose signature holds, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Lines of the checkpoint file whose signature does not hold.
    pub forged: u64,
    /// What the database says against that checkpoint.
    pub against: Against,
}

/// The database against the last checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Against {
    /// No checkpoint to compare with: `events` are not vouched for.
    NoCheckpoint {
        /// All of them.
        events: u64,
    },
    /// The checkpoint's event is there with its MAC; `after` events follow it,
    /// which no checkpoint vouches for yet.
    Holds {
        /// Events after the checkpoint.
        after: u64,
    },
    /// The database ends before the checkpoint's event: rows were cut.
    Truncated {
        /// The database's last `seq` (0: empty).
        last: i64,
        /// How many are missing, at least.
        missing: i64,
    },
    /// The checkpoint's event is there with another MAC: rewritten.
    Rewritten {
        /// The checkpoint's `seq`.
        seq: i64,
    },
}

impl Report {
    /// Whether the trail holds: its chain, and against the checkpoint.
    pub fn holds(&self) -> bool {
        matches!(self.chain, Verified::Ok { .. })
            && self.forged == 0
            && matches!(
                self.against,
                Against::Holds { .. } | Against::NoCheckpoint { .. }
            )
    }
}

/// [`verify`], then the database against the last checkpoint in `data_dir`.
pub async fn verify_all(db: &SqlitePool, data_dir: &std::path::Path) -> anyhow::Result<Report> {
    let (chain, head) = chain(db).await?;
    let key = {
        let mut conn = db.acquire().await?;
        key_of(&mut conn).await?
    };
    let text = match std::fs::read_to_string(data_dir.join(CHECKPOINT_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut forged = 0;
    let mut checkpoint = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match Checkpoint::parse(line, &key) {
            Some(c) => checkpoint = Some(c),
            None => forged += 1,
        }
    }
    let (last, events) = match &chain {
        Verified::Ok { events } => (head.as_ref().map_or(0, |h| h.0), *events),
        Verified::Broken { .. } => (0, 0),
    };
    let against = match &checkpoint {
        None => Against::NoCheckpoint { events },
        Some(c) if last < c.seq => Against::Truncated {
            last,
            missing: c.seq - last,
        },
        Some(c) => {
            let mac: Option<String> =
                sqlx::query_scalar("SELECT hash FROM audit_event WHERE seq = ?")
                    .bind(c.seq)
                    .fetch_optional(db)
                    .await?;
            if mac.as_deref() == Some(c.mac.as_str()) {
                Against::Holds {
                    after: u64::try_from(last - c.seq).unwrap_or(0),
                }
            } else {
                Against::Rewritten { seq: c.seq }
            }
        }
    };
    Ok(Report {
        chain,
        checkpoint,
        forged,
        against,
    })
}

/// A search of the trail, as `GET /fhir/AuditEvent` reads it: `patient`
/// (`Patient/123` or `123`), `agent` (a username or token name), `date` with
/// `ge`, `le` or no prefix (that day or instant), `_count` (newest first, at most
/// [`MAX_COUNT`]). Any other parameter is refused, never ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    patient: Option<String>,
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    count: u32,
}

/// The most events one search returns.
pub const MAX_COUNT: u32 = 1000;
const DEFAULT_COUNT: u32 = 100;

/// Why a search was refused: the parameter and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadParameter {
    /// The parameter's name.
    pub name: String,
    /// What is wrong, without echoing the value.
    pub problem: &'static str,
}

impl Search {
    /// Reads the query's parameters.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, BadParameter> {
        let bad = |name: &str, problem| BadParameter {
            name: name.to_owned(),
            problem,
        };
        let mut search = Search {
            count: DEFAULT_COUNT,
            ..Search::default()
        };
        for (name, value) in pairs {
            match name.as_str() {
                "patient" => {
                    let reference = if value.contains('/') {
                        value.clone()
                    } else {
                        format!("Patient/{value}")
                    };
                    match Reference::parse(&reference) {
                        Some(r) if reference.starts_with("Patient/") => {
                            search.patient = Some(r.as_str().to_owned());
                        }
                        _ => return Err(bad(name, "not a Patient reference or id")),
                    }
                }
                "agent" if !value.is_empty() && value.len() <= 64 => {
                    search.agent = Some(value.clone());
                }
                "agent" => return Err(bad(name, "not a user or token name")),
                "date" => {
                    let (prefix, date) = match value.get(..2) {
                        Some(p @ ("ge" | "le" | "eq")) => (p, &value[2..]),
                        Some(p) if p.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                            return Err(bad(name, "only the ge, le and eq prefixes are supported"));
                        }
                        _ => ("eq", value.as_str()),
                    };
                    let well_formed = date.len() >= 4
                        && date.len() <= 35
                        && date.bytes().take(4).all(|b| b.is_ascii_digit())
                        && date
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b"-T:.Z+".contains(&b));
                    if !well_formed {
                        return Err(bad(name, "not a FHIR date or instant"));
                    }
                    // `recorded` is UTC text (`2026-11-30T05:56:09.123Z`): a
                    // prefix of it is the whole day (or hour, or minute), and '~'
                    // sorts after every character a date holds.
                    if prefix != "le" {
                        search.from = Some(date.to_owned());
                    }
                    if prefix != "ge" {
                        search.to = Some(format!("{date}~"));
                    }
                }
                "_count" => {
                    search.count = value
                        .parse::<u32>()
                        .ok()
                        .filter(|c| (1..=MAX_COUNT).contains(c))
                        .ok_or_else(|| bad(name, "not a count from 1 to 1000"))?;
                }
                _ => return Err(bad(name, "not a supported search parameter")),
            }
        }
        Ok(search)
    }
}

/// The events that match, newest first, each with its sequence number as its id.
pub async fn search(db: &SqlitePool, search: &Search) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, event FROM audit_event
         WHERE (?1 IS NULL OR patient = ?1
                OR seq IN (SELECT seq FROM audit_event_patient WHERE patient = ?1))
           AND (?2 IS NULL OR agent = ?2 COLLATE NOCASE)
           AND (?3 IS NULL OR recorded >= ?3)
           AND (?4 IS NULL OR recorded <= ?4)
         ORDER BY seq DESC LIMIT ?5",
    )
    .bind(&search.patient)
    .bind(&search.agent)
    .bind(&search.from)
    .bind(&search.to)
    .bind(search.count)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, text)| {
            let mut event: Value = serde_json::from_str(&text).ok()?;
            event["id"] = Value::String(seq.to_string());
            Some(event)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn login_event() -> Event {
        Event::new(Kind::Login, Action::E, Outcome::Success)
            .by(Some(Agent {
                system: "urn:intake:staff-user",
                name: "alice".into(),
                role: "clinician",
            }))
            .from(Some("127.0.0.1".parse().unwrap()))
            .on(Reference::parse("Patient/123").unwrap())
            .about("urn:intake:staff-user", "bob")
    }

    #[test]
    fn events_are_valid_fhir_r4_audit_events() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_946_399);
        for event in [
            login_event(),
            Event::new(Kind::Login, Action::E, Outcome::MinorFailure),
            Event::new(Kind::Rest(Interaction::Read), Action::R, Outcome::Success),
        ] {
            let text = event.to_fhir(t).to_string();
            let parsed =
                fhirbolt::json::from_str::<fhirbolt::model::r4::resources::AuditEvent>(&text, None);
            assert!(parsed.is_ok(), "{text}: {parsed:?}");
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":2}],"c":3}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }

    fn pairs(query: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(query).unwrap()
    }

    #[test]
    fn searches_read_patient_agent_date_and_count() {
        let s = Search::parse(&pairs(
            "patient=123&agent=alice&date=ge2026-11-01&date=le2026-11-30&_count=5",
        ))
        .unwrap();
        assert_eq!(s.patient.as_deref(), Some("Patient/123"));
        assert_eq!(s.agent.as_deref(), Some("alice"));
        assert_eq!(s.from.as_deref(), Some("2026-11-01"));
        assert_eq!(s.to.as_deref(), Some("2026-11-30~"));
        assert_eq!(s.count, 5);
        let day = Search::parse(&pairs("date=2026-11-30")).unwrap();
        assert_eq!(day.from.as_deref(), Some("2026-11-30"));
        assert_eq!(day.to.as_deref(), Some("2026-11-30~"));
        for bad in [
            "name=x",
            "patient=Practitioner/1",
            "patient=a b",
            "date=gt2026",
            "date=yesterday",
            "_count=0",
            "_count=1001",
        ] {
            assert!(Search::parse(&pairs(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_are_type_slash_id_only() {
        assert!(Reference::parse("Patient/123").is_some());
        assert!(Reference::parse("Patient/Jane Doe").is_none());
        assert!(Reference::parse("patient/123").is_none());
        assert!(Reference::parse("Jane").is_none());
    }
}
