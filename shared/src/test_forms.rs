//! Forms and responses the unit tests of several modules share.

use crate::form::{EnableWhen, Form, Item, ItemKind, Operator, Value};
use crate::response::{ResponseAnswer, ResponseItem};

/// A response item answering `link_id` with `values`.
pub(crate) fn answer(link_id: &str, values: Vec<Value>) -> ResponseItem {
    ResponseItem {
        link_id: link_id.into(),
        text: None,
        answer: values
            .into_iter()
            .map(|value| ResponseAnswer {
                value,
                item: vec![],
            })
            .collect(),
        item: vec![],
    }
}

/// A response item for the group (instance) `link_id`, holding `item`.
pub(crate) fn group(link_id: &str, item: Vec<ResponseItem>) -> ResponseItem {
    ResponseItem {
        link_id: link_id.into(),
        text: None,
        answer: vec![],
        item,
    }
}

/// A form holding `items`.
pub(crate) fn form(items: Vec<Item>) -> Form {
    Form {
        id: "t".into(),
        url: None,
        version: None,
        title: "T".into(),
        title_translations: crate::map::Map::new(),
        variables: vec![],
        items,
    }
}

/// A repeating "member" group: "affected" (boolean), and "condition" (text),
/// enabled only when that same member is affected.
pub(crate) fn family_member_group(condition_required: bool) -> Item {
    let mut condition = Item::new("condition", ItemKind::String);
    condition.required = condition_required;
    condition.enable_when = vec![EnableWhen {
        question: "affected".into(),
        operator: Operator::Equal,
        answer: Value::Boolean(true),
    }];
    let mut member = Item::new("member", ItemKind::Group);
    member.repeats = true;
    member.items = vec![Item::new("affected", ItemKind::Boolean), condition];
    member
}
