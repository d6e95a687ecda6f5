//! The strings of the language in use. All text lives in `shared::i18n`.

use shared::i18n::{EN, Strings};

/// The strings for the current language (English until Spanish is added).
pub(crate) fn t() -> &'static Strings {
    &EN
}
