//! Answers kept on the patient's own phone while a form is being filled in, so a
//! patient who leaves (a call, a dead battery) is offered them back on return.
//!
//! Only where the page asks for it (a patient's phone, never the kiosk, which is
//! shared). Kept in the browser's local storage under the form's id and version,
//! dropped when the form is sent and accepted, and ignored (and deleted) after
//! [`KEEP_FOR_MS`].

use gloo_storage::{LocalStorage, Storage as _};
use shared::draft::Draft;
use shared::form::{Form, Value};
use shared::json::{FromJson as _, Json, ToJson as _};

/// How long a draft is offered back: long enough for a visit later in the week,
/// short enough that answers do not linger on a phone.
const KEEP_FOR_MS: f64 = 3.0 * 24.0 * 60.0 * 60.0 * 1000.0;

/// Kept as `{"saved": <ms since the epoch>, "draft": <the draft>}`, the JSON that
/// serde gave it before `shared::json` (so drafts kept then still read).
fn kept(text: &str) -> Option<(f64, Draft)> {
    let kept = Json::parse(text)?;
    Some((
        f64::from_json(kept.get("saved")?)?,
        Draft::from_json(kept.get("draft")?)?,
    ))
}

/// The storage key of `form`'s draft: a new version of the form starts afresh.
pub(crate) fn key(form: &Form) -> String {
    format!(
        "intake.draft.{}.{}",
        form.id,
        form.version.as_deref().unwrap_or_default()
    )
}

/// The draft kept under `key`, if there is a recent one.
pub(crate) fn load(key: &str) -> Option<Draft> {
    let (saved, draft) = kept(&LocalStorage::raw().get_item(key).ok()??)?;
    if js_sys::Date::now() - saved > KEEP_FOR_MS {
        forget(key);
        return None;
    }
    Some(draft)
}

/// Keeps `draft` under `key`, without its files. A draft the storage will not
/// take is not kept, and neither is the older one: offering that back would lose
/// every answer given since.
pub(crate) fn save(key: &str, draft: &Draft) {
    let mut draft = draft.clone();
    // Photos and files are not kept (a few MB each, against a storage of about
    // five): a patient who comes back attaches them again.
    for values in draft.answers.values_mut() {
        values.retain(|v| !matches!(v, Value::Attachment(_)));
    }
    draft.answers.retain(|_, values| !values.is_empty());
    let mut kept = String::from("{\"saved\":");
    js_sys::Date::now().write_json(&mut kept);
    kept.push_str(",\"draft\":");
    draft.write_json(&mut kept);
    kept.push('}');
    if LocalStorage::raw().set_item(key, &kept).is_err() {
        forget(key);
    }
}

/// Drops the draft kept under `key`.
pub(crate) fn forget(key: &str) {
    LocalStorage::delete(key);
}
