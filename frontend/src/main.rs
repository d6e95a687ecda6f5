//! The patient app's binary (Trunk: `frontend/index.html`).

fn main() {
    frontend::start_patient_app();
}
