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
    pub start_over: &'static str,
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
    pub staff_title: &'static str,
    pub staff_intro: &'static str,
    pub status_title: &'static str,
    pub status_version: &'static str,
    pub status_database: &'static str,
    pub status_ok: &'static str,
    pub status_unavailable: &'static str,
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
    kiosk_intro: "Welcome. Please enter your details; when you are done, the screen is cleared for the next person.",
    sent_title: "Thank you",
    sent_phone: "The clinic has your details. You will not be asked for them again at the front desk.",
    sent_kiosk: "The clinic has your details. Please press \"Start over\" for the next person.",
    start_over: "Start over",
    invite_title: "Your invitation",
    invite_intro: "First, confirm your date of birth.",
    invite_birth_date: "Date of birth",
    invite_continue: "Continue",
    invite_wrong: "That date does not match. Tries left:",
    invite_locked: "Too many tries: this link is locked. Ask the clinic for a new one.",
    invite_invalid: "This link cannot be used (already used, or expired). Ask the clinic for a new one.",
    invite_form_intro: "Filled in from your chart: check it and change what is out of date.",
    staff_title: "Clinic staff",
    staff_intro: "Sign-in, the match review queue and invitations are on their way. For now this page shows whether the system is working.",
    status_title: "System status",
    status_version: "Version",
    status_database: "Database",
    status_ok: "Working",
    status_unavailable: "Not available",
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
    kiosk_intro: "Bienvenido. Escriba sus datos; al terminar, la pantalla se borra para la siguiente persona.",
    sent_title: "Gracias",
    sent_phone: "La clínica ya tiene sus datos. No se los volverán a pedir en la recepción.",
    sent_kiosk: "La clínica ya tiene sus datos. Pulse \"Empezar de nuevo\" para la siguiente persona.",
    start_over: "Empezar de nuevo",
    invite_title: "Su invitación",
    invite_intro: "Primero, confirme su fecha de nacimiento.",
    invite_birth_date: "Fecha de nacimiento",
    invite_continue: "Continuar",
    invite_wrong: "Esa fecha no coincide. Intentos restantes:",
    invite_locked: "Demasiados intentos: este enlace quedó bloqueado. Pida uno nuevo a la clínica.",
    invite_invalid: "Este enlace no se puede usar (ya se usó, o venció). Pida uno nuevo a la clínica.",
    invite_form_intro: "Completado con su expediente: revíselo y cambie lo que no esté al día.",
    staff_title: "Personal de la clínica",
    staff_intro: "El inicio de sesión, la revisión de coincidencias y las invitaciones llegarán pronto. Por ahora esta página muestra si el sistema funciona.",
    status_title: "Estado del sistema",
    status_version: "Versión",
    status_database: "Base de datos",
    status_ok: "Funciona",
    status_unavailable: "No disponible",
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
        P::BelowMinimum => "La respuesta es menor que el valor mínimo permitido".into(),
        P::AboveMaximum => "La respuesta es mayor que el valor máximo permitido".into(),
        P::FileTooLarge(max) => format!("El archivo pesa más de {max} bytes"),
        P::FileType => "Aquí no se acepta este tipo de archivo".into(),
        P::NotEnabled => "Esta pregunta no aplica según sus otras respuestas; déjela vacía".into(),
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
        P::BelowMinimum => "The answer is below the lowest value allowed".into(),
        P::AboveMaximum => "The answer is above the highest value allowed".into(),
        P::FileTooLarge(max) => format!("The file is larger than {max} bytes"),
        P::FileType => "This type of file is not accepted here".into(),
        P::NotEnabled => {
            "This question does not apply, given the other answers, so it must be left empty".into()
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
