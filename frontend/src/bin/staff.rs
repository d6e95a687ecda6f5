//! The staff app's binary (Trunk: `frontend/staff.html`, served at `/staff`).

fn main() {
    frontend::start_staff_app();
}
