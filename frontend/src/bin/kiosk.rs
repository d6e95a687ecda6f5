//! The kiosk app's binary (Trunk: `frontend/kiosk.html`, served at `/kiosk`).

fn main() {
    frontend::start_kiosk_app();
}
