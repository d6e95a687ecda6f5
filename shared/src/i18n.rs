//! Every string a person reads, in one place, so another language is one more table.
//!
//! The server uses the same messages in `OperationOutcome.issue.diagnostics`.

use crate::answers::AnswerProblem;

/// The UI text for one language.
#[derive(Debug)]
pub struct Strings {
    /// BCP 47 tag of the language.
    pub lang: &'static str,
    pub app_name: &'static str,
    /// The language offered by the switch in the header, as a BCP 47 tag…
    pub switch_to: &'static str,
    /// …and its name, in that language.
    pub switch_to_label: &'static str,
    pub skip_to_content: &'static str,
    pub nav_label: &'static str,
    pub nav_home: &'static str,
    pub nav_intake: &'static str,
    pub nav_kiosk: &'static str,
    pub nav_staff: &'static str,
    pub landing_title: &'static str,
    pub landing_intro: &'static str,
    pub landing_start: &'static str,
    pub landing_kiosk: &'static str,
    pub landing_staff: &'static str,
    pub intake_title: &'static str,
    pub intake_intro: &'static str,
    /// Read out before each error message by screen readers.
    pub error_prefix: &'static str,
    pub submitting: &'static str,
    pub server_refused: &'static str,
    pub server_unreachable: &'static str,
    pub kiosk_title: &'static str,
    pub kiosk_intro: &'static str,
    /// Once the clinic has a patient's answers.
    pub sent_title: &'static str,
    pub sent_phone: &'static str,
    pub sent_kiosk: &'static str,
    /// The kiosk before it is enrolled: staff type its one-time code.
    pub kiosk_code_label: &'static str,
    pub kiosk_enrol_button: &'static str,
    pub kiosk_enrol_refused: &'static str,
    /// The kiosk's idle warning: title, "… clears in" N "seconds", the button.
    pub idle_title: &'static str,
    pub idle_clears_in: &'static str,
    pub idle_seconds: &'static str,
    pub idle_still_here: &'static str,
    /// `/i`: a patient's invitation, opened from the link the clinic sent.
    pub invite_title: &'static str,
    pub invite_intro: &'static str,
    pub invite_birth_date: &'static str,
    pub invite_continue: &'static str,
    /// Followed by the number of tries left.
    pub invite_wrong: &'static str,
    pub invite_locked: &'static str,
    pub invite_invalid: &'static str,
    /// Above a form the clinic prefilled.
    pub invite_form_intro: &'static str,
    /// Above a new patient's form, prefilled with what the front desk typed.
    pub invite_form_intro_desk: &'static str,
    /// Continue with no (or no whole) birth date.
    pub invite_date_missing: &'static str,
    pub loading: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub preview_intro: &'static str,
    pub preview_warnings: &'static str,
    pub form_not_found: &'static str,
    pub required: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub choose: &'static str,
    pub other_answer: &'static str,
    pub free_text_fallback: &'static str,
    /// Beside a slider nobody has moved yet.
    pub slider_unset: &'static str,
    /// The label of the list of tabs in a tabbed form.
    pub tabs_label: &'static str,
    /// Offered when a patient comes back to a form they started on this phone.
    pub resume_offer: &'static str,
    pub resume_continue: &'static str,
    pub resume_start_again: &'static str,
    pub add_another: &'static str,
    pub remove: &'static str,
    pub attachment_hint: &'static str,
    pub attachment_chosen: &'static str,
    pub form_submit: &'static str,
    /// "Page" in "Page 2 of 5".
    pub page_label: &'static str,
    /// "of" in "Page 2 of 5".
    pub page_of: &'static str,
    pub next: &'static str,
    pub back: &'static str,
    pub form_has_problems: &'static str,
    pub form_server_valid: &'static str,
    /// Before an answer's expected format: "For example: name@example.com".
    pub for_example: &'static str,
    /// The message for a problem with an answer to a form's question.
    pub answer_problem: fn(&AnswerProblem) -> String,
}

/// English.
pub const EN: Strings = Strings {
    lang: "en",
    app_name: "Intake",
    switch_to: "es",
    switch_to_label: "Español",
    skip_to_content: "Skip to main content",
    nav_label: "Main",
    nav_home: "Home",
    nav_intake: "My details",
    nav_kiosk: "Kiosk",
    nav_staff: "Staff",
    landing_title: "Welcome",
    landing_intro: "Tell the clinic about yourself before your visit. It takes a few minutes, and you won't be asked the same things again at the front desk.",
    landing_start: "Start my intake",
    landing_kiosk: "Check in at the front desk (kiosk)",
    landing_staff: "Clinic staff",
    intake_title: "Your details",
    intake_intro: "We use these to find your chart. Answer in the same way as on your ID or insurance card.",
    error_prefix: "Error:",
    submitting: "Checking…",
    server_refused: "The clinic's server found a problem:",
    server_unreachable: "We could not reach the clinic's server. Your answers are still here; please try again.",
    kiosk_title: "Check in",
    kiosk_intro: "Welcome. Nothing you enter stays on this screen.",
    sent_title: "Thank you",
    sent_phone: "The clinic has your details. You will not be asked for them again at the front desk.",
    sent_kiosk: "The clinic has your details.",
    kiosk_code_label: "Enrolment code",
    kiosk_enrol_button: "Enrol",
    kiosk_enrol_refused: "That code did not work.",
    idle_title: "Are you still there?",
    idle_clears_in: "For your privacy, the screen clears in",
    idle_seconds: "seconds.",
    idle_still_here: "I'm still here",
    invite_title: "Your invitation",
    invite_intro: "First, confirm your date of birth.",
    invite_birth_date: "Date of birth",
    invite_continue: "Continue",
    invite_wrong: "That date does not match. Tries left:",
    invite_locked: "Too many tries: this link is locked. Ask the clinic for a new one.",
    invite_invalid: "This link cannot be used (already used, or expired). Ask the clinic for a new one.",
    invite_form_intro: "Filled in from your chart: check it and change what is out of date.",
    invite_form_intro_desk: "We filled in what the front desk entered: check it and answer the rest.",
    invite_date_missing: "Enter your whole date of birth: month, day and year.",
    loading: "Loading…",
    not_found_title: "Page not found",
    not_found_body: "Check the address, or go back to the start.",
    preview_intro: "This is how patients see this form. Answers given here are checked but not kept.",
    preview_warnings: "What the import could not use",
    form_not_found: "There is no such form on this server.",
    required: "(required)",
    yes: "Yes",
    no: "No",
    choose: "Choose…",
    other_answer: "Other (please say)",
    free_text_fallback: "Type your answer",
    slider_unset: "Not answered yet: move the slider",
    tabs_label: "Sections",
    resume_offer: "You started this form on this phone before. Your answers were kept here.",
    resume_continue: "Continue where I left off",
    resume_start_again: "Start again",
    add_another: "Add another",
    remove: "Remove",
    attachment_hint: "Take a photo or choose a file",
    attachment_chosen: "Chosen:",
    form_submit: "Check my answers",
    page_label: "Page",
    page_of: "of",
    next: "Next",
    back: "Back",
    form_has_problems: "Some answers need another look; they are marked below.",
    form_server_valid: "The clinic's server checked your answers: everything is in order.",
    for_example: "For example:",
    answer_problem: en_answer_problem,
};

/// Spanish (Latin American usage, as in US clinics).
pub const ES: Strings = Strings {
    lang: "es",
    app_name: "Intake",
    switch_to: "en",
    switch_to_label: "English",
    skip_to_content: "Ir al contenido principal",
    nav_label: "Principal",
    nav_home: "Inicio",
    nav_intake: "Mis datos",
    nav_kiosk: "Quiosco",
    nav_staff: "Personal",
    landing_title: "Bienvenido",
    landing_intro: "Cuéntele a la clínica sobre usted antes de su visita. Toma unos minutos, y no le volverán a preguntar lo mismo en la recepción.",
    landing_start: "Empezar mi registro",
    landing_kiosk: "Registrarse en la recepción (quiosco)",
    landing_staff: "Personal de la clínica",
    intake_title: "Sus datos",
    intake_intro: "Los usamos para encontrar su expediente. Responda igual que en su identificación o tarjeta del seguro.",
    error_prefix: "Error:",
    submitting: "Revisando…",
    server_refused: "El servidor de la clínica encontró un problema:",
    server_unreachable: "No pudimos comunicarnos con el servidor de la clínica. Sus respuestas siguen aquí; inténtelo de nuevo.",
    kiosk_title: "Registro",
    kiosk_intro: "Bienvenido. Nada de lo que escriba queda en esta pantalla.",
    sent_title: "Gracias",
    sent_phone: "La clínica ya tiene sus datos. No se los volverán a pedir en la recepción.",
    sent_kiosk: "La clínica ya tiene sus datos.",
    kiosk_code_label: "Código de registro",
    kiosk_enrol_button: "Registrar",
    kiosk_enrol_refused: "Ese código no funcionó.",
    idle_title: "¿Sigue ahí?",
    idle_clears_in: "Por su privacidad, la pantalla se borra en",
    idle_seconds: "segundos.",
    idle_still_here: "Sigo aquí",
    invite_title: "Su invitación",
    invite_intro: "Primero, confirme su fecha de nacimiento.",
    invite_birth_date: "Fecha de nacimiento",
    invite_continue: "Continuar",
    invite_wrong: "Esa fecha no coincide. Intentos restantes:",
    invite_locked: "Demasiados intentos: este enlace quedó bloqueado. Pida uno nuevo a la clínica.",
    invite_invalid: "Este enlace no se puede usar (ya se usó, o venció). Pida uno nuevo a la clínica.",
    invite_form_intro: "Completado con su expediente: revíselo y cambie lo que no esté al día.",
    invite_form_intro_desk: "Completamos lo que anotó la recepción: revíselo y responda el resto.",
    invite_date_missing: "Escriba su fecha de nacimiento completa: mes, día y año.",
    loading: "Cargando…",
    not_found_title: "Página no encontrada",
    not_found_body: "Revise la dirección o vuelva al inicio.",
    preview_intro: "Así ven este formulario los pacientes. Las respuestas se revisan pero no se guardan.",
    preview_warnings: "Lo que la importación no pudo usar",
    form_not_found: "Este formulario no existe en este servidor.",
    required: "(obligatorio)",
    yes: "Sí",
    no: "No",
    choose: "Elija…",
    other_answer: "Otro (especifique)",
    free_text_fallback: "Escriba su respuesta",
    slider_unset: "Sin responder: mueva el control",
    tabs_label: "Secciones",
    resume_offer: "Ya empezó este formulario en este teléfono. Sus respuestas se guardaron aquí.",
    resume_continue: "Seguir donde lo dejé",
    resume_start_again: "Empezar de nuevo",
    add_another: "Agregar otro",
    remove: "Quitar",
    attachment_hint: "Tome una foto o elija un archivo",
    attachment_chosen: "Elegido:",
    form_submit: "Revisar mis respuestas",
    page_label: "Página",
    page_of: "de",
    next: "Siguiente",
    back: "Atrás",
    form_has_problems: "Algunas respuestas necesitan revisión; están marcadas abajo.",
    form_server_valid: "El servidor de la clínica revisó sus respuestas: todo está en orden.",
    for_example: "Por ejemplo:",
    answer_problem: es_answer_problem,
};

/// The strings for a BCP 47 language tag (`es`, `es-MX`, `en-US`…); English
/// when we have no table for it.
pub fn for_language(tag: &str) -> &'static Strings {
    let primary = tag.split(['-', '_']).next().unwrap_or_default();
    if primary.eq_ignore_ascii_case("es") {
        &ES
    } else {
        &EN
    }
}

/// The staff app's text (`/staff`), apart from the patients' so that a patient's
/// phone does not download it: only the staff app's wasm refers to these tables.
#[derive(Debug)]
pub struct StaffStrings {
    pub app_name: &'static str,
    pub nav_label: &'static str,
    pub nav_queue: &'static str,
    pub nav_status: &'static str,
    /// "Signed in as" before the user's name.
    pub signed_in_as: &'static str,
    pub role_front_desk: &'static str,
    pub role_clinician: &'static str,
    pub role_admin: &'static str,
    pub sign_out: &'static str,
    pub signin_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub signing_in: &'static str,
    /// One message for every wrong name or password: never which one.
    pub signin_failed: &'static str,
    /// Too many attempts; the argument is the minutes to wait.
    pub signin_throttled: fn(u32) -> String,
    pub signed_out: &'static str,
    pub idle_signed_out: &'static str,
    pub session_ended: &'static str,
    pub idle_warning_title: &'static str,
    pub idle_warning: &'static str,
    pub stay_signed_in: &'static str,
    pub home_title: &'static str,
    pub home_intro: &'static str,
    pub status_title: &'static str,
    pub status_version: &'static str,
    pub status_database: &'static str,
    pub status_ok: &'static str,
    pub status_unavailable: &'static str,
    pub queue_title: &'static str,
    /// "3 intakes waiting for a decision".
    pub queue_count: fn(u64) -> String,
    pub queue_empty: &'static str,
    pub col_waiting: &'static str,
    pub col_kind: &'static str,
    pub col_patient: &'static str,
    pub col_score: &'static str,
    pub col_grade: &'static str,
    /// How long an item has waited, from seconds.
    pub age: fn(u64) -> String,
    pub kind_match: &'static str,
    /// A queue item that is a link proposed for an intake without proof of identity.
    pub kind_proposed_link: &'static str,
    pub kind_demographics: &'static str,
    pub kind_delivery: &'static str,
    pub grade_probable: &'static str,
    pub grade_possible: &'static str,
    pub no_score: &'static str,
    pub back_to_queue: &'static str,
    pub item_title_match: &'static str,
    pub item_title_proposed_link: &'static str,
    /// Why a proposed link waits, and what to check before confirming it.
    pub proposed_link_note: &'static str,
    /// The one action on a proposed link.
    pub confirm_link: &'static str,
    pub item_title_demographics: &'static str,
    pub item_title_delivery: &'static str,
    pub received: &'static str,
    pub compare_title: &'static str,
    pub col_field: &'static str,
    pub this_intake: &'static str,
    /// "Candidate 2".
    pub candidate: fn(usize) -> String,
    pub score: &'static str,
    /// Why a safety rule held a candidate below `certain`, whatever its probability.
    pub held_because: &'static str,
    pub hold_twin: &'static str,
    pub hold_ambiguous: &'static str,
    pub hold_placeholder: &'static str,
    /// The matching model's version that scored a candidate ("model 3").
    pub model_version: &'static str,
    pub weight: &'static str,
    pub history: &'static str,
    pub no_history: &'static str,
    pub decision: &'static str,
    pub field_given: &'static str,
    pub field_family: &'static str,
    pub field_birth_date: &'static str,
    pub field_gender: &'static str,
    pub field_phone: &'static str,
    pub field_email: &'static str,
    pub field_street_number: &'static str,
    pub field_street: &'static str,
    pub field_city: &'static str,
    pub field_postal_code: &'static str,
    pub field_state: &'static str,
    pub field_identifier: &'static str,
    pub level_exact: &'static str,
    pub level_close: &'static str,
    pub level_phonetic: &'static str,
    pub level_different: &'static str,
    pub level_missing: &'static str,
    pub link: &'static str,
    pub not_this: &'static str,
    pub create_new: &'static str,
    pub no_candidates: &'static str,
    pub proposed_title: &'static str,
    pub col_element: &'static str,
    pub on_chart: &'static str,
    pub from_intake: &'static str,
    pub accept: &'static str,
    pub refuse: &'static str,
    pub save_decisions: &'static str,
    pub delivery_title: &'static str,
    pub attempts: &'static str,
    pub last_error: &'static str,
    pub delivery_status: &'static str,
    pub retry: &'static str,
    pub answers_title: &'static str,
    pub reauth_title: &'static str,
    pub reauth_link: &'static str,
    pub reauth_create: &'static str,
    pub reauth_password: &'static str,
    pub confirm: &'static str,
    pub cancel: &'static str,
    pub reauth_failed: &'static str,
    /// The answer to a stale `If-Match` (412): the review API's own words.
    pub decided_elsewhere: &'static str,
    pub already_decided: &'static str,
    pub not_allowed: &'static str,
    pub item_not_found: &'static str,
    pub decision_saved: &'static str,
    pub candidate_removed: &'static str,
    pub sending: &'static str,
    pub refused: &'static str,
    pub unreachable: &'static str,
    pub loading: &'static str,
    pub not_found_title: &'static str,
    pub nav_invitations: &'static str,
    pub inv_title: &'static str,
    pub inv_intro: &'static str,
    pub inv_find_title: &'static str,
    pub inv_find: &'static str,
    pub inv_finding: &'static str,
    pub inv_whom: &'static str,
    pub inv_no_chart: &'static str,
    /// Inviting someone with no chart yet: their name and birth date as typed.
    pub inv_new_patient: fn(&str, &str) -> String,
    pub grade_certain: &'static str,
    pub inv_form: &'static str,
    pub inv_appointment: &'static str,
    pub optional: &'static str,
    pub inv_valid_for: &'static str,
    /// "3 days".
    pub days: fn(u32) -> String,
    pub inv_create: &'static str,
    pub inv_choose_first: &'static str,
    pub inv_bad_appointment: &'static str,
    pub inv_created_title: &'static str,
    /// Whom it is for, and when the link stops working.
    pub inv_created: fn(&str, &str) -> String,
    pub inv_link: &'static str,
    pub inv_copy: &'static str,
    pub inv_copied: &'static str,
    pub inv_qr_alt: &'static str,
    pub inv_qr_caption: &'static str,
    pub inv_another: &'static str,
    pub inv_recent_title: &'static str,
    pub inv_none: &'static str,
    pub inv_unnamed: &'static str,
    pub inv_col_appointment: &'static str,
    pub inv_col_status: &'static str,
    pub inv_col_created: &'static str,
    pub inv_col_expires: &'static str,
    pub inv_col_actions: &'static str,
    pub inv_cancel: &'static str,
    /// The cancel button's accessible name, with whom the invitation is for.
    pub inv_cancel_for: fn(&str) -> String,
    pub inv_cancelled: &'static str,
    /// Above the review queue, for the front desk.
    pub queue_front_desk_note: &'static str,
    pub inv_status_sent: &'static str,
    pub inv_status_opened: &'static str,
    pub inv_status_used: &'static str,
    pub inv_status_expired: &'static str,
    pub inv_status_locked: &'static str,
    pub inv_status_cancelled: &'static str,
    pub nav_admin: &'static str,
    pub role_system: &'static str,
    pub adm_title: &'static str,
    pub adm_intro: &'static str,
    pub adm_not_allowed: &'static str,
    pub adm_users_title: &'static str,
    pub adm_kiosks_title: &'static str,
    pub adm_tokens_title: &'static str,
    pub adm_none: &'static str,
    pub adm_name: &'static str,
    pub adm_role: &'static str,
    pub adm_state: &'static str,
    pub adm_forms: &'static str,
    pub adm_active: &'static str,
    pub adm_disabled: &'static str,
    pub adm_enrolled: &'static str,
    pub adm_waiting: &'static str,
    pub adm_live: &'static str,
    pub adm_revoked_state: &'static str,
    pub adm_add_user: &'static str,
    pub adm_add: &'static str,
    pub adm_disable: &'static str,
    pub adm_enable: &'static str,
    pub adm_reset: &'static str,
    pub adm_revoke: &'static str,
    /// A button's accessible name: "Disable fred". Each starts with the
    /// button's visible words (WCAG 2.5.3, label in name).
    pub adm_disable_for: fn(&str) -> String,
    pub adm_enable_for: fn(&str) -> String,
    pub adm_reset_for: fn(&str) -> String,
    pub adm_revoke_for: fn(&str) -> String,
    pub adm_user_added: fn(&str) -> String,
    pub adm_password_reset: fn(&str) -> String,
    pub adm_user_disabled: fn(&str) -> String,
    pub adm_user_enabled: fn(&str) -> String,
    pub adm_add_kiosk: &'static str,
    pub adm_kiosk_forms: &'static str,
    pub adm_choose_form: &'static str,
    /// The kiosk's name and when its code expires.
    pub adm_kiosk_added: fn(&str, &str) -> String,
    pub adm_code: &'static str,
    pub adm_create_token: &'static str,
    pub adm_create: &'static str,
    pub adm_token_created: fn(&str) -> String,
    pub adm_token: &'static str,
    pub adm_revoked: fn(&str) -> String,
    pub adm_copy: &'static str,
}

/// The staff app in English.
pub const STAFF_EN: StaffStrings = StaffStrings {
    app_name: "Intake staff",
    nav_label: "Staff",
    nav_queue: "Review queue",
    nav_status: "System status",
    signed_in_as: "Signed in as",
    role_front_desk: "front desk",
    role_clinician: "clinician",
    role_admin: "administrator",
    sign_out: "Sign out",
    signin_title: "Staff sign-in",
    username: "Username",
    password: "Password",
    sign_in: "Sign in",
    signing_in: "Signing in…",
    signin_failed: "The username or password is not right.",
    signin_throttled: en_throttled,
    signed_out: "You are signed out.",
    idle_signed_out: "You were signed out after 15 minutes without activity. Sign in again to continue.",
    session_ended: "Your session has ended. Sign in again to continue.",
    idle_warning_title: "Still there?",
    idle_warning: "You will be signed out in 2 minutes.",
    stay_signed_in: "Stay signed in",
    home_title: "Clinic staff",
    home_intro: "Decide which chart each intake belongs to, and see whether the system is working.",
    status_title: "System status",
    status_version: "Version",
    status_database: "Database",
    status_ok: "Working",
    status_unavailable: "Not available",
    queue_title: "Review queue",
    queue_count: en_queue_count,
    queue_empty: "Nothing is waiting for a decision.",
    col_waiting: "Waiting",
    col_kind: "What",
    col_patient: "Patient",
    col_score: "Top score",
    col_grade: "Grade",
    age: short_age,
    kind_match: "Which patient?",
    kind_proposed_link: "Confirm who this is",
    kind_demographics: "Updated details",
    kind_delivery: "Delivery failed",
    grade_probable: "Probable",
    grade_possible: "Possible",
    no_score: "none",
    back_to_queue: "Back to the queue",
    item_title_match: "Which patient is this?",
    item_title_proposed_link: "Confirm who sent this intake",
    proposed_link_note: "This intake came without proof of who sent it (the public form, not an invitation or the kiosk). Its details match the chart below. Check who the patient is, for example with photo ID at the desk, before you link it: until then nothing from it is in the chart.",
    confirm_link: "Identity checked: link to this patient",
    item_title_demographics: "Updated details for a chart",
    item_title_delivery: "A delivery to the EMR failed",
    received: "Received",
    compare_title: "The intake and each candidate, side by side",
    col_field: "Field",
    this_intake: "This intake",
    candidate: en_candidate,
    score: "Match probability",
    held_because: "Held for review",
    hold_twin: "same birth date and family name, another given name: possibly twins",
    hold_ambiguous: "two candidates too close to tell",
    hold_placeholder: "placeholder name",
    model_version: "model",
    weight: "weight",
    history: "Recent history",
    no_history: "No earlier events",
    decision: "Decision",
    field_given: "Given name",
    field_family: "Family name",
    field_birth_date: "Birth date",
    field_gender: "Gender",
    field_phone: "Phone",
    field_email: "E-mail",
    field_street_number: "House number",
    field_street: "Street",
    field_city: "City",
    field_postal_code: "Postal code",
    field_state: "State",
    field_identifier: "Identifier",
    level_exact: "Same",
    level_close: "Nearly the same",
    level_phonetic: "Sounds alike",
    level_different: "Different",
    level_missing: "Missing",
    link: "Link to this patient",
    not_this: "Not this patient",
    create_new: "Create a new patient",
    no_candidates: "No candidates are left: create a new patient from this intake.",
    proposed_title: "Changes the intake proposes",
    col_element: "Detail",
    on_chart: "On the chart",
    from_intake: "From the intake",
    accept: "Accept",
    refuse: "Refuse",
    save_decisions: "Save these decisions",
    delivery_title: "Delivery",
    attempts: "Attempts",
    last_error: "Last error",
    delivery_status: "Status",
    retry: "Retry the delivery",
    answers_title: "Answers",
    reauth_title: "Confirm it is you",
    reauth_link: "Enter your password again to link this intake to the chosen chart.",
    reauth_create: "Enter your password again to create a new patient from this intake.",
    reauth_password: "Your password",
    confirm: "Confirm",
    cancel: "Cancel",
    reauth_failed: "That password is not right. Nothing was decided.",
    decided_elsewhere: "Someone else has already decided this intake. Reload to see the current state.",
    already_decided: "This intake has already been decided.",
    not_allowed: "Your role cannot make this decision.",
    item_not_found: "There is no such item in the queue.",
    decision_saved: "Decision saved.",
    candidate_removed: "That candidate was removed from this intake.",
    sending: "Sending…",
    refused: "The server refused this:",
    unreachable: "We could not reach the server. Please try again.",
    loading: "Loading…",
    not_found_title: "Page not found",
    nav_invitations: "Invitations",
    inv_title: "Invite a patient",
    inv_intro: "Send a patient a link to fill in a form on their own phone before the visit. Find them first: a returning patient's form comes filled in from their chart.",
    inv_find_title: "Find the patient",
    inv_find: "Find",
    inv_finding: "Searching…",
    inv_whom: "Whom to invite",
    inv_no_chart: "No chart matches this name and birth date.",
    inv_new_patient: |name, birth| format!("New to the clinic: {name}, born {birth}"),
    grade_certain: "Certain",
    inv_form: "Form",
    inv_appointment: "Appointment",
    optional: " (optional)",
    inv_valid_for: "The link works for",
    days: |n| {
        if n == 1 {
            "1 day".to_owned()
        } else {
            format!("{n} days")
        }
    },
    inv_create: "Create invitation",
    inv_choose_first: "Choose whom to invite.",
    inv_bad_appointment: "Enter the appointment as a date and a time.",
    inv_created_title: "Invitation ready",
    inv_created: |name, expires| {
        format!(
            "The link for {name} works once, until {expires}. Send it by text message or e-mail, or let them scan the code."
        )
    },
    inv_link: "Link",
    inv_copy: "Copy link",
    inv_copied: "Copied.",
    inv_qr_alt: "QR code of the invitation link",
    inv_qr_caption: "Scan with the phone's camera.",
    inv_another: "Invite another patient",
    inv_recent_title: "Recent invitations",
    inv_none: "No invitations yet.",
    inv_unnamed: "(no name given)",
    inv_col_appointment: "Appointment",
    inv_col_status: "Status",
    inv_col_created: "Created",
    inv_col_expires: "Expires",
    inv_col_actions: "Actions",
    inv_cancel: "Cancel",
    inv_cancel_for: |name| format!("Cancel the invitation for {name}"),
    inv_cancelled: "Invitation cancelled: its link no longer works.",
    queue_front_desk_note: "Clinicians decide which chart a doubtful intake belongs to. You confirm the intakes marked \"Confirm who this is\" once you have checked who the patient is.",
    inv_status_sent: "Ready to send",
    inv_status_opened: "Opened",
    inv_status_used: "Answered",
    inv_status_expired: "Expired",
    inv_status_locked: "Locked (wrong birth dates)",
    inv_status_cancelled: "Cancelled",
    nav_admin: "Administration",
    role_system: "system",
    adm_title: "Administration",
    adm_intro: "Staff accounts, kiosks and system tokens. A new password, enrolment code or token is shown only once: copy it before you leave the page.",
    adm_not_allowed: "Only administrators can use this page.",
    adm_users_title: "Staff accounts",
    adm_kiosks_title: "Kiosks",
    adm_tokens_title: "System tokens",
    adm_none: "None yet.",
    adm_name: "Name",
    adm_role: "Role",
    adm_state: "State",
    adm_forms: "Forms",
    adm_active: "Active",
    adm_disabled: "Disabled",
    adm_enrolled: "Enrolled",
    adm_waiting: "Waiting for its code",
    adm_live: "Live",
    adm_revoked_state: "Revoked",
    adm_add_user: "Add an account",
    adm_add: "Add",
    adm_disable: "Disable",
    adm_enable: "Enable",
    adm_reset: "Reset password",
    adm_revoke: "Revoke",
    adm_disable_for: |name| format!("Disable {name}"),
    adm_enable_for: |name| format!("Enable {name}"),
    adm_reset_for: |name| format!("Reset password for {name}"),
    adm_revoke_for: |name| format!("Revoke {name}"),
    adm_user_added: |name| {
        format!("Account {name} added. Give them this password; it is shown only this once.")
    },
    adm_password_reset: |name| {
        format!("New password for {name}; they are signed out. It is shown only this once.")
    },
    adm_user_disabled: |name| format!("{name} is disabled and signed out."),
    adm_user_enabled: |name| format!("{name} can sign in again."),
    adm_add_kiosk: "Add a kiosk",
    adm_kiosk_forms: "Forms it shows",
    adm_choose_form: "Choose at least one form.",
    adm_kiosk_added: |name, expires| {
        format!(
            "Kiosk {name} added. Enter this code on the kiosk before {expires}; it is shown only this once."
        )
    },
    adm_code: "Enrolment code",
    adm_create_token: "Create a token",
    adm_create: "Create",
    adm_token_created: |name| {
        format!(
            "Token {name} created. Send it as Authorization: Bearer; it is shown only this once."
        )
    },
    adm_token: "Token",
    adm_revoked: |name| format!("{name} revoked: it no longer works."),
    adm_copy: "Copy",
};

/// The staff app in Spanish.
pub const STAFF_ES: StaffStrings = StaffStrings {
    app_name: "Intake personal",
    nav_label: "Personal",
    nav_queue: "Cola de revisión",
    nav_status: "Estado del sistema",
    signed_in_as: "Sesión de",
    role_front_desk: "recepción",
    role_clinician: "clínico",
    role_admin: "administrador",
    sign_out: "Cerrar sesión",
    signin_title: "Inicio de sesión del personal",
    username: "Usuario",
    password: "Contraseña",
    sign_in: "Iniciar sesión",
    signing_in: "Iniciando sesión…",
    signin_failed: "El usuario o la contraseña no son correctos.",
    signin_throttled: es_throttled,
    signed_out: "Cerró la sesión.",
    idle_signed_out: "Se cerró su sesión tras 15 minutos sin actividad. Inicie sesión de nuevo para seguir.",
    session_ended: "Su sesión terminó. Inicie sesión de nuevo para seguir.",
    idle_warning_title: "¿Sigue ahí?",
    idle_warning: "Su sesión se cerrará en 2 minutos.",
    stay_signed_in: "Mantener la sesión",
    home_title: "Personal de la clínica",
    home_intro: "Decida a qué expediente pertenece cada registro y vea si el sistema funciona.",
    status_title: "Estado del sistema",
    status_version: "Versión",
    status_database: "Base de datos",
    status_ok: "Funciona",
    status_unavailable: "No disponible",
    queue_title: "Cola de revisión",
    queue_count: es_queue_count,
    queue_empty: "Nada espera una decisión.",
    col_waiting: "Espera",
    col_kind: "Qué",
    col_patient: "Paciente",
    col_score: "Mejor puntaje",
    col_grade: "Grado",
    age: short_age,
    kind_match: "¿Qué paciente?",
    kind_proposed_link: "Confirmar quién es",
    kind_demographics: "Datos actualizados",
    kind_delivery: "Entrega fallida",
    grade_probable: "Probable",
    grade_possible: "Posible",
    no_score: "ninguno",
    back_to_queue: "Volver a la cola",
    item_title_match: "¿Qué paciente es?",
    item_title_proposed_link: "Confirme quién envió este registro",
    proposed_link_note: "Este registro llegó sin prueba de quién lo envió (el formulario público, no una invitación ni el quiosco). Sus datos coinciden con el expediente de abajo. Compruebe quién es el paciente, por ejemplo con un documento con foto en la recepción, antes de vincularlo: hasta entonces nada de él está en el expediente.",
    confirm_link: "Identidad comprobada: vincular a este paciente",
    item_title_demographics: "Datos actualizados de un expediente",
    item_title_delivery: "Falló una entrega al EMR",
    received: "Recibido",
    compare_title: "El registro y cada candidato, lado a lado",
    col_field: "Campo",
    this_intake: "Este registro",
    candidate: es_candidate,
    score: "Probabilidad de coincidencia",
    held_because: "Retenido para revisión",
    hold_twin: "misma fecha de nacimiento y apellido, otro nombre: posiblemente gemelos",
    hold_ambiguous: "dos candidatos demasiado parecidos para distinguirlos",
    hold_placeholder: "nombre provisional",
    model_version: "modelo",
    weight: "peso",
    history: "Historial reciente",
    no_history: "Sin eventos anteriores",
    decision: "Decisión",
    field_given: "Nombre",
    field_family: "Apellido",
    field_birth_date: "Fecha de nacimiento",
    field_gender: "Sexo",
    field_phone: "Teléfono",
    field_email: "Correo electrónico",
    field_street_number: "Número",
    field_street: "Calle",
    field_city: "Ciudad",
    field_postal_code: "Código postal",
    field_state: "Estado",
    field_identifier: "Identificador",
    level_exact: "Igual",
    level_close: "Casi igual",
    level_phonetic: "Suena parecido",
    level_different: "Distinto",
    level_missing: "Falta",
    link: "Vincular a este paciente",
    not_this: "No es este paciente",
    create_new: "Crear un paciente nuevo",
    no_candidates: "No quedan candidatos: cree un paciente nuevo con este registro.",
    proposed_title: "Cambios que propone el registro",
    col_element: "Dato",
    on_chart: "En el expediente",
    from_intake: "Del registro",
    accept: "Aceptar",
    refuse: "Rechazar",
    save_decisions: "Guardar estas decisiones",
    delivery_title: "Entrega",
    attempts: "Intentos",
    last_error: "Último error",
    delivery_status: "Estado",
    retry: "Reintentar la entrega",
    answers_title: "Respuestas",
    reauth_title: "Confirme que es usted",
    reauth_link: "Escriba de nuevo su contraseña para vincular este registro al expediente elegido.",
    reauth_create: "Escriba de nuevo su contraseña para crear un paciente nuevo con este registro.",
    reauth_password: "Su contraseña",
    confirm: "Confirmar",
    cancel: "Cancelar",
    reauth_failed: "Esa contraseña no es correcta. No se decidió nada.",
    decided_elsewhere: "Otra persona ya decidió este registro. Vuelva a cargar para ver el estado actual.",
    already_decided: "Este registro ya se decidió.",
    not_allowed: "Su función no puede tomar esta decisión.",
    item_not_found: "Ese elemento no está en la cola.",
    decision_saved: "Decisión guardada.",
    candidate_removed: "Se quitó ese candidato de este registro.",
    sending: "Enviando…",
    refused: "El servidor rechazó esto:",
    unreachable: "No pudimos comunicarnos con el servidor. Inténtelo de nuevo.",
    loading: "Cargando…",
    not_found_title: "Página no encontrada",
    nav_invitations: "Invitaciones",
    inv_title: "Invitar a un paciente",
    inv_intro: "Envíe al paciente un enlace para llenar un formulario en su propio teléfono antes de la consulta. Búsquelo primero: a un paciente conocido el formulario le llega lleno con los datos de su expediente.",
    inv_find_title: "Buscar al paciente",
    inv_find: "Buscar",
    inv_finding: "Buscando…",
    inv_whom: "A quién invitar",
    inv_no_chart: "Ningún expediente coincide con este nombre y fecha de nacimiento.",
    inv_new_patient: |name, birth| format!("Nuevo en la clínica: {name}, nacido el {birth}"),
    grade_certain: "Seguro",
    inv_form: "Formulario",
    inv_appointment: "Cita",
    optional: " (opcional)",
    inv_valid_for: "El enlace sirve durante",
    days: |n| {
        if n == 1 {
            "1 día".to_owned()
        } else {
            format!("{n} días")
        }
    },
    inv_create: "Crear invitación",
    inv_choose_first: "Elija a quién invitar.",
    inv_bad_appointment: "Escriba la cita como fecha y hora.",
    inv_created_title: "Invitación lista",
    inv_created: |name, expires| {
        format!(
            "El enlace para {name} sirve una vez, hasta {expires}. Envíelo por mensaje de texto o correo, o deje que escanee el código."
        )
    },
    inv_link: "Enlace",
    inv_copy: "Copiar enlace",
    inv_copied: "Copiado.",
    inv_qr_alt: "Código QR del enlace de la invitación",
    inv_qr_caption: "Escanéelo con la cámara del teléfono.",
    inv_another: "Invitar a otro paciente",
    inv_recent_title: "Invitaciones recientes",
    inv_none: "Todavía no hay invitaciones.",
    inv_unnamed: "(sin nombre)",
    inv_col_appointment: "Cita",
    inv_col_status: "Estado",
    inv_col_created: "Creada",
    inv_col_expires: "Vence",
    inv_col_actions: "Acciones",
    inv_cancel: "Cancelar",
    inv_cancel_for: |name| format!("Cancelar la invitación de {name}"),
    inv_cancelled: "Invitación cancelada: su enlace ya no sirve.",
    queue_front_desk_note: "El personal clínico decide a qué expediente pertenece un registro dudoso. Usted confirma los marcados \"Confirmar quién es\" cuando haya comprobado quién es el paciente.",
    inv_status_sent: "Lista para enviar",
    inv_status_opened: "Abierta",
    inv_status_used: "Respondida",
    inv_status_expired: "Vencida",
    inv_status_locked: "Bloqueada (fechas de nacimiento incorrectas)",
    inv_status_cancelled: "Cancelada",
    nav_admin: "Administración",
    role_system: "sistema",
    adm_title: "Administración",
    adm_intro: "Cuentas del personal, quioscos y tokens de sistema. Una contraseña, un código de registro o un token nuevos se muestran una sola vez: cópielos antes de salir de la página.",
    adm_not_allowed: "Solo los administradores pueden usar esta página.",
    adm_users_title: "Cuentas del personal",
    adm_kiosks_title: "Quioscos",
    adm_tokens_title: "Tokens de sistema",
    adm_none: "Ninguno todavía.",
    adm_name: "Nombre",
    adm_role: "Rol",
    adm_state: "Estado",
    adm_forms: "Formularios",
    adm_active: "Activa",
    adm_disabled: "Desactivada",
    adm_enrolled: "Registrado",
    adm_waiting: "Esperando su código",
    adm_live: "Vigente",
    adm_revoked_state: "Revocado",
    adm_add_user: "Añadir una cuenta",
    adm_add: "Añadir",
    adm_disable: "Desactivar",
    adm_enable: "Activar",
    adm_reset: "Restablecer contraseña",
    adm_revoke: "Revocar",
    adm_disable_for: |name| format!("Desactivar {name}"),
    adm_enable_for: |name| format!("Activar {name}"),
    adm_reset_for: |name| format!("Restablecer contraseña de {name}"),
    adm_revoke_for: |name| format!("Revocar {name}"),
    adm_user_added: |name| {
        format!("Cuenta {name} añadida. Entréguele esta contraseña; se muestra una sola vez.")
    },
    adm_password_reset: |name| {
        format!("Nueva contraseña para {name}; su sesión se cerró. Se muestra una sola vez.")
    },
    adm_user_disabled: |name| format!("{name} está desactivada y su sesión se cerró."),
    adm_user_enabled: |name| format!("{name} puede volver a iniciar sesión."),
    adm_add_kiosk: "Añadir un quiosco",
    adm_kiosk_forms: "Formularios que muestra",
    adm_choose_form: "Elija al menos un formulario.",
    adm_kiosk_added: |name, expires| {
        format!(
            "Quiosco {name} añadido. Escriba este código en el quiosco antes de {expires}; se muestra una sola vez."
        )
    },
    adm_code: "Código de registro",
    adm_create_token: "Crear un token",
    adm_create: "Crear",
    adm_token_created: |name| {
        format!("Token {name} creado. Envíelo como Authorization: Bearer; se muestra una sola vez.")
    },
    adm_token: "Token",
    adm_revoked: |name| format!("{name} revocado: ya no funciona."),
    adm_copy: "Copiar",
};

/// The staff app's strings for a language tag (as [`for_language`]).
pub fn staff_for_language(tag: &str) -> &'static StaffStrings {
    if for_language(tag).lang == "es" {
        &STAFF_ES
    } else {
        &STAFF_EN
    }
}

fn en_throttled(minutes: u32) -> String {
    match minutes {
        0 | 1 => "Too many attempts. Try again in a minute.".into(),
        n => format!("Too many attempts. Try again in {n} minutes."),
    }
}

fn es_throttled(minutes: u32) -> String {
    match minutes {
        0 | 1 => "Demasiados intentos. Inténtelo de nuevo en un minuto.".into(),
        n => format!("Demasiados intentos. Inténtelo de nuevo en {n} minutos."),
    }
}

fn en_queue_count(n: u64) -> String {
    match n {
        0 => "No intakes waiting for a decision".into(),
        1 => "1 intake waiting for a decision".into(),
        n => format!("{n} intakes waiting for a decision"),
    }
}

fn es_queue_count(n: u64) -> String {
    match n {
        0 => "Ningún registro espera una decisión".into(),
        1 => "1 registro espera una decisión".into(),
        n => format!("{n} registros esperan una decisión"),
    }
}

/// Seconds as the largest units that fit (`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`),
/// the same abbreviations in both languages.
fn short_age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn en_candidate(n: usize) -> String {
    format!("Candidate {n}")
}

fn es_candidate(n: usize) -> String {
    format!("Candidato {n}")
}

fn es_answer_problem(problem: &AnswerProblem) -> String {
    use AnswerProblem as P;
    match problem {
        P::UnknownItem => "Esta pregunta no está en el formulario".into(),
        P::Required => "Esta pregunta necesita una respuesta".into(),
        P::TooManyAnswers => "Aquí solo se permite una respuesta".into(),
        P::NotAQuestion => "Este elemento no lleva respuesta".into(),
        P::WrongType => "La respuesta no es del tipo que pide esta pregunta".into(),
        P::NotAnOption => "Elija una de las opciones".into(),
        P::NotADate => "Escriba una fecha u hora real".into(),
        P::TooLong(max) => format!("Use como máximo {max} caracteres"),
        P::TooShort(min) => format!("Use al menos {min} caracteres"),
        P::PatternMismatch => "La respuesta no tiene el formato esperado".into(),
        P::TooCostly => {
            "No se puede comprobar el formato de una respuesta tan larga; acórtela".into()
        }
        P::BelowMinimum => "La respuesta es menor que el valor mínimo permitido".into(),
        P::AboveMaximum => "La respuesta es mayor que el valor máximo permitido".into(),
        P::InFuture => "La fecha no puede ser posterior a hoy".into(),
        P::FileTooLarge(max) => format!("El archivo pesa más de {max} bytes"),
        P::FileType => "Aquí no se acepta este tipo de archivo".into(),
        P::NotEnabled => "Esta pregunta no aplica según sus otras respuestas; déjela vacía".into(),
        P::NotCalculated => {
            "Este valor se calcula a partir de sus otras respuestas y no coincide con ellas".into()
        }
    }
}

fn en_answer_problem(problem: &AnswerProblem) -> String {
    use AnswerProblem as P;
    match problem {
        P::UnknownItem => "This item is not in the form".into(),
        P::Required => "This question needs an answer".into(),
        P::TooManyAnswers => "Only one answer is allowed here".into(),
        P::NotAQuestion => "This item takes no answer".into(),
        P::WrongType => "The answer is not of the kind this question takes".into(),
        P::NotAnOption => "Choose one of the options".into(),
        P::NotADate => "Enter a real date or time".into(),
        P::TooLong(max) => format!("Use at most {max} characters"),
        P::TooShort(min) => format!("Use at least {min} characters"),
        P::PatternMismatch => "The answer is not in the expected format".into(),
        P::TooCostly => "The answer is too long to check against its format; shorten it".into(),
        P::BelowMinimum => "The answer is below the lowest value allowed".into(),
        P::AboveMaximum => "The answer is above the highest value allowed".into(),
        P::InFuture => "The date cannot be later than today".into(),
        P::FileTooLarge(max) => format!("The file is larger than {max} bytes"),
        P::FileType => "This type of file is not accepted here".into(),
        P::NotEnabled => {
            "This question does not apply, given the other answers, so it must be left empty".into()
        }
        P::NotCalculated => {
            "This value is calculated from the other answers, and does not match them".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_chosen_by_their_primary_tag() {
        for (tag, lang) in [
            ("es", "es"),
            ("es-MX", "es"),
            ("ES_us", "es"),
            ("en-US", "en"),
            ("fr", "en"),
            ("", "en"),
        ] {
            assert_eq!(for_language(tag).lang, lang, "{tag}");
        }
    }

    #[test]
    fn staff_tables_follow_the_language_and_count_in_words() {
        assert_eq!(staff_for_language("es-MX").sign_in, STAFF_ES.sign_in);
        assert_eq!(staff_for_language("en").sign_in, STAFF_EN.sign_in);
        assert_eq!((STAFF_EN.queue_count)(1), "1 intake waiting for a decision");
        assert_eq!(
            (STAFF_EN.queue_count)(3),
            "3 intakes waiting for a decision"
        );
        assert_eq!((STAFF_EN.age)(59), "59 s");
        assert_eq!((STAFF_EN.age)(3 * 3600 + 5 * 60), "3 h 5 min");
        assert_eq!((STAFF_EN.age)(2 * 86_400 + 3600), "2 d 1 h");
        assert_ne!(STAFF_ES.decided_elsewhere, STAFF_EN.decided_elsewhere);
    }

    /// Spanish says something different from English for every problem.
    #[test]
    fn spanish_translates_every_reachable_problem() {
        for problem in [
            AnswerProblem::Required,
            AnswerProblem::TooLong(3),
            AnswerProblem::NotEnabled,
        ] {
            assert_ne!((ES.answer_problem)(&problem), (EN.answer_problem)(&problem));
        }
    }
}
