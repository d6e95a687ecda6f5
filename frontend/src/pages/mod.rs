//! One file per page.

pub(crate) mod intake;
pub(crate) mod invite;
pub(crate) mod kiosk;
pub(crate) mod landing;
pub(crate) mod not_found;
pub(crate) mod preview;
