//! What a kiosk's browser is told about itself (`GET /api/kiosk/me`, and the
//! answer to `POST /api/kiosk/enroll`).

use serde::{Deserialize, Serialize};

/// An enrolled kiosk: its name, how long it waits, and the forms it shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KioskMe {
    /// Its name (staff see it; patients do not).
    pub name: String,
    /// Seconds without input before it asks "Are you still there?".
    pub idle_seconds: u32,
    /// Seconds that question counts down before everything is wiped.
    pub warn_seconds: u32,
    /// The forms it shows, in order: one goes straight in, several are a choice.
    pub forms: Vec<KioskForm>,
}

/// A form a kiosk shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KioskForm {
    /// The Questionnaire's id.
    pub id: String,
    /// Its title, as the chooser shows it.
    pub title: String,
}
