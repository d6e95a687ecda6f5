//! The intake pipeline: a checked QuestionnaireResponse and the Patient extracted
//! from it are matched against the EMR, decided (linked, review or created) and
//! accepted in one local transaction with the outbox message that will deliver
//! them; the [`outbox`] then delivers, retrying until the EMR confirms.
//!
//! Decisions are made one at a time by a single writer task, so two submissions
//! of the same new patient can never both decide "new": the second finds the
//! first (held as a pending candidate until it reaches the EMR). The writer
//! commits whatever is queued together (group commit), which is what lets one
//! SQLite file take hundreds of intakes a second with every commit synced.
//!
//! - `types.rs`: what goes in and comes out (`Submission`, `Proof`, `Extras`,
//!   `Accepted`, `IntakeError`).
//! - `writer.rs`: `Intakes`, the requests' side and the writer task that decides.
//! - `record.rs`: what a decided batch writes (rows, outbox, audit, inline delivery).
//! - `bundle.rs`: the delivery Bundle. `tasks.rs`: the Tasks left for staff.
//! - `changes.rs`: what a linked intake changes in the chart. `outbox.rs`: delivery.

mod bundle;
pub(crate) mod changes;
mod job;
pub mod outbox;
mod record;
mod tasks;
mod types;
mod writer;

pub(crate) use bundle::{Author, Subject, delivery_bundle, inline_requests};
pub(crate) use job::Context;
pub(crate) use tasks::{SCORE_EXTENSION, TASK_SYSTEM, dead_delivery_task, refused_delivery_task};
pub use types::{
    Accepted, Decision, EXTRACTED_SYSTEM, Extras, IntakeError, Invited, PROOF_SYSTEM, Proof,
    SUBMISSION_SYSTEM, Submission, UNVERIFIED_REASON,
};
pub(crate) use types::{patient_in, pending_key};
pub use writer::Intakes;
pub(crate) use writer::{Waiters, settle};

pub use crate::config::Unverified;
