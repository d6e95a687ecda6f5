//! A Questionnaire's texts in other languages: `translation` extensions on its
//! strings and a contained ValueSet's designations.

use std::collections::BTreeMap;

use fhirbolt::model::r4::resources::{QuestionnaireItem, ValueSetComposeIncludeConceptDesignation};
use fhirbolt::model::r4::types::Extension;
use shared::form::ItemText;

use super::url;
use super::values::{codes, string, text_value};

/// One string's texts in other languages: (language tag, text), as found.
pub(crate) type Translations = Vec<(String, String)>;

/// The `translation` extensions among `extensions` (those on a string element).
/// One without a language or a text is skipped: there is nothing to show.
pub(crate) fn translations(extensions: &[Extension]) -> Translations {
    extensions
        .iter()
        .filter(|e| e.url == url::TRANSLATION)
        .filter_map(|e| {
            let part = |name: &str| {
                e.extension
                    .iter()
                    .find(|p| p.url == name)
                    .and_then(|p| text_value(p.value.as_ref()))
                    .filter(|t| !t.trim().is_empty())
            };
            Some((part("lang")?.trim().to_owned(), part("content")?))
        })
        .collect()
}

/// The translations of a string element, if it is there.
pub(crate) fn string_translations(
    value: Option<&fhirbolt::model::r4::types::String>,
) -> Translations {
    value
        .map(|v| translations(&v.extension))
        .unwrap_or_default()
}

/// A value set concept's display in other languages: its `translation`
/// extensions, then its designations that have a language and are displays (no
/// `use`, or designation-usage `display`; a synonym is not a translation).
pub(crate) fn display_translations(
    display: Option<&fhirbolt::model::r4::types::String>,
    designations: &[ValueSetComposeIncludeConceptDesignation],
) -> Translations {
    let mut found = string_translations(display);
    found.extend(designations.iter().filter_map(|d| {
        let is_display = d.r#use.as_ref().is_none_or(|u| {
            u.system.as_ref().and_then(|s| s.value.as_deref()) == Some(url::DESIGNATION_USAGE)
                && u.code.as_ref().and_then(|c| c.value.as_deref()) == Some("display")
        });
        let language = d.language.as_ref()?.value.as_deref()?.trim();
        let text = string(Some(&d.value))?;
        (is_display && !language.is_empty()).then(|| (language.to_owned(), text))
    }));
    found
}

/// Which of an item's own texts a translation is of.
#[derive(Clone, Copy)]
pub(crate) enum TextField {
    Text,
    Prefix,
    Help,
    EntryFormat,
}

/// An item's translations by language, from each text's and each option's
/// (`options[i]` is option i's). Where one text has two for one language, the
/// first wins.
pub(crate) fn item_texts(
    fields: [(TextField, Translations); 4],
    options: Vec<Translations>,
) -> BTreeMap<String, ItemText> {
    let mut by_language: BTreeMap<String, ItemText> = BTreeMap::new();
    for (field, found) in fields {
        for (language, text) in found {
            let texts = by_language.entry(language).or_default();
            let slot = match field {
                TextField::Text => &mut texts.text,
                TextField::Prefix => &mut texts.prefix,
                TextField::Help => &mut texts.help,
                TextField::EntryFormat => &mut texts.entry_format,
            };
            slot.get_or_insert(text);
        }
    }
    for (index, found) in options.into_iter().enumerate() {
        for (language, text) in found {
            let texts = by_language.entry(language).or_default();
            if texts.options.len() <= index {
                texts.options.resize(index + 1, None);
            }
            texts.options[index].get_or_insert(text);
        }
    }
    by_language
}

pub(crate) fn is_help(item: &QuestionnaireItem) -> bool {
    item.extension
        .iter()
        .filter(|e| e.url == url::ITEM_CONTROL)
        .flat_map(|e| codes(e.value.as_ref()))
        .any(|code| code == "help" || code == "flyover")
}
