//! A form's SDC expressions applied to a response: variables (form-level, then
//! each item's, in scope for the item and what it contains, per group instance),
//! `enableWhenExpression`, `calculatedExpression` and `initialExpression`.
//!
//! Paths are those of [`crate::answers::item_path`], so results line up with the
//! rules' view of each repeating-group instance. An expression that does not
//! parse is skipped here (the import lists it): its item keeps its `enableWhen`,
//! its value is not calculated.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use super::eval::{decimal_text, num, string_of, truth};
use super::{Env, EvalError, Expr, Node, parse};
use crate::answers::{instance_prefix, item_path};
use crate::date::Date;
use crate::form::{Form, Item, ItemKind, Quantity, Value, Variable};
#[cfg(feature = "launch-context")]
use crate::json::Json;
use crate::map::Map;
use crate::response::{QuestionnaireResponse, ResponseItem};

/// What a form's expressions say of one response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Computed {
    /// Items with an `enableWhenExpression`, by path: whether it is true.
    pub enabled: Map<bool>,
    /// Items with a `calculatedExpression`, by path: the answers it gives.
    pub calculated: Map<Vec<Value>>,
    /// Items whose `initialExpression` gives something, by path (when asked).
    pub initial: Map<Vec<Value>>,
    /// Items with a computed `maxValue` that gives one value, by path: the limit.
    pub max_value: Map<Value>,
    /// Paths of items whose `calculatedExpression` could not be evaluated (it,
    /// or a variable it reads, does not parse, fails, or does too much work):
    /// a value sent for one is kept as sent, with a warning, never refused.
    pub uncomputed: Vec<String>,
}

/// Whether the form has any expression to evaluate.
pub fn has_expressions(form: &Form) -> bool {
    !form.variables.is_empty()
        || form
            .all_items()
            .iter()
            .any(|i| !i.variables.is_empty() || i.expressions != Default::default())
}

/// Evaluates the form's expressions over `response`; `initial` also evaluates
/// the `initialExpression`s. `today` is what `today()` gives (none: empty).
pub fn compute(
    form: &Form,
    response: &QuestionnaireResponse,
    today: Option<Date>,
    initial: bool,
) -> Computed {
    compute_from(form, response, &Env::new(form, response, today), initial)
}

#[cfg(feature = "launch-context")]
/// [`compute`] with launch-context resources bound by name (`("patient",
/// the Patient)` is `%patient`), as SDC's `launchContext` names them.
pub fn compute_in<'a>(
    form: &'a Form,
    response: &'a QuestionnaireResponse,
    today: Option<Date>,
    initial: bool,
    launch: &[(&'a str, &'a Json)],
) -> Computed {
    let mut base = Env::new(form, response, today);
    for (name, resource) in launch {
        base.vars.push((name, Ok(vec![Node::Json(resource)])));
    }
    compute_from(form, response, &base, initial)
}

/// [`compute`] from the environment `base`.
fn compute_from<'a>(
    form: &'a Form,
    response: &'a QuestionnaireResponse,
    base: &Env<'a>,
    initial: bool,
) -> Computed {
    let mut walker = Walker {
        initial,
        out: Computed::default(),
    };
    if has_expressions(form) {
        let root = [Node::Response(response)];
        let env = scope(base, &form.variables, &root);
        walker.items(&form.items, &response.item, "", &env);
    }
    walker.out
}

/// Most parsed expressions kept per thread: more than a real form has (715
/// has 54), few enough that uploaded forms cannot grow it without bound (at
/// most 8 kB of text each).
const PARSED_MAX: usize = 512;

thread_local! {
    /// Expressions already parsed, by their text (none: it does not parse). A
    /// form's expressions are evaluated at every answer the patient gives, and
    /// parsing them again each time cost about as much as evaluating them.
    static PARSED: RefCell<Vec<(String, Option<Rc<Expr>>)>> = const { RefCell::new(Vec::new()) };
}

/// `text` parsed (as [`parse`]), from the cache when it was parsed before.
fn parsed(text: &str) -> Result<Rc<Expr>, EvalError> {
    PARSED.with(|cache| {
        let found = cache
            .borrow()
            .iter()
            .find(|(t, _)| t == text)
            .map(|(_, e)| e.clone());
        let expr = found.unwrap_or_else(|| {
            let expr = parse(text).ok().map(Rc::new);
            let mut cache = cache.borrow_mut();
            if cache.len() >= PARSED_MAX {
                cache.clear();
            }
            cache.push((text.to_owned(), expr.clone()));
            expr
        });
        expr.ok_or(EvalError::Invalid)
    })
}

/// `base` with `vars` evaluated in order (each sees those before it).
fn scope<'a>(base: &Env<'a>, vars: &'a [Variable], context: &[Node<'a>]) -> Env<'a> {
    let mut env = base.clone();
    for v in vars {
        // One that does not parse or evaluate stays an error: what reads it is
        // uncomputed, not computed from an empty value.
        let value = parsed(&v.expression).and_then(|e| env.eval(&e, context));
        env.vars.push((&v.name, value));
    }
    env
}

/// [`scope`], borrowing `base` as it is when there are no `vars`.
fn scoped<'e, 'a>(
    base: &'e Env<'a>,
    vars: &'a [Variable],
    context: &[Node<'a>],
) -> Cow<'e, Env<'a>> {
    if vars.is_empty() {
        Cow::Borrowed(base)
    } else {
        Cow::Owned(scope(base, vars, context))
    }
}

struct Walker {
    initial: bool,
    out: Computed,
}

impl Walker {
    fn items<'a>(
        &mut self,
        defs: &'a [Item],
        given: &'a [ResponseItem],
        prefix: &str,
        env: &Env<'a>,
    ) {
        for def in defs {
            let instances: Vec<&'a ResponseItem> =
                given.iter().filter(|g| g.link_id == def.link_id).collect();
            let path = item_path(prefix, &def.link_id);
            let first: Vec<Node<'a>> = instances
                .first()
                .map(|i| Node::ResponseItem(i))
                .into_iter()
                .collect();
            // The item's variables, over its first instance: computed once and
            // reused below for that instance's children; an item without
            // variables reads the enclosing scope as it is (no copy per item).
            let own = scoped(env, &def.variables, &first);
            // None: no expression; an error: it does not parse or evaluate.
            let attempt = |text: &Option<String>| {
                let expr = parsed(text.as_deref()?);
                Some(expr.and_then(|e| own.eval(&e, &first)))
            };
            let run = |text: &Option<String>| attempt(text)?.ok();
            let x = &def.expressions;
            // One that cannot be evaluated leaves the item to its `enableWhen`.
            if let Some(result) = run(&x.enable_when)
                && let Ok(on) = truth(&result)
            {
                self.out.enabled.insert(path.clone(), on == Some(true));
            }
            match attempt(&x.calculated) {
                Some(Ok(result)) => {
                    self.out
                        .calculated
                        .insert(path.clone(), to_values(def, &result));
                }
                Some(Err(_)) => self.out.uncomputed.push(path.clone()),
                None => {}
            }
            // No limit unless the expression gives exactly one (`today()` with
            // no date given is empty: nothing to check against).
            if let Some(result) = run(&x.max_value)
                && let [limit] = to_values(def, &result).as_slice()
            {
                self.out.max_value.insert(path.clone(), limit.clone());
            }
            if self.initial
                && let Some(result) = run(&x.initial)
            {
                let values = to_values(def, &result);
                if !values.is_empty() {
                    self.out.initial.insert(path, values);
                }
            }
            for (index, instance) in instances.iter().enumerate() {
                let other;
                let inner: &Env<'a> = if index == 0 {
                    &own
                } else {
                    other = scoped(env, &def.variables, &[Node::ResponseItem(instance)]);
                    &other
                };
                let prefix = instance_prefix(prefix, &def.link_id, index);
                self.items(&def.items, &instance.item, &prefix, inner);
                for answer in &instance.answer {
                    self.items(&def.items, &answer.item, &prefix, inner);
                }
            }
        }
    }
}

/// The answers `nodes` give to `item`, converted to its type (a decimal score
/// for an integer item is rounded; a text for a choice picks the option with
/// that code or display). Values that do not fit are left out.
pub fn to_values(item: &Item, nodes: &[Node<'_>]) -> Vec<Value> {
    let mut out: Vec<Value> = nodes.iter().filter_map(|n| to_value(item, n)).collect();
    if !item.repeats {
        out.truncate(1);
    }
    out
}

fn to_value(item: &Item, n: &Node<'_>) -> Option<Value> {
    let number = || match n {
        Node::Qty(v, _) => Some(*v),
        _ => num(n),
    };
    let date_text = || match n {
        Node::Date(s) | Node::DateTime(s) | Node::Str(s) => Some(s.to_string()),
        _ => None,
    };
    Some(match item.kind {
        ItemKind::Boolean => match n {
            Node::Bool(b) => Value::Boolean(*b),
            _ => return None,
        },
        ItemKind::Decimal => Value::Decimal(number()?),
        ItemKind::Integer => {
            let x = number()?.round();
            (x.abs() < 9e15).then_some(Value::Integer(x as i64))?
        }
        ItemKind::Date => {
            let s = date_text()?;
            Value::Date(s.get(..10).unwrap_or(&s).to_owned())
        }
        ItemKind::DateTime => Value::DateTime(date_text()?),
        ItemKind::Time => match n {
            Node::Time(s) | Node::Str(s) => Value::Time(s.to_string()),
            _ => return None,
        },
        ItemKind::String | ItemKind::Text => match n {
            Node::Coding(c, _) => Value::String(c.display.clone().or_else(|| c.code.clone())?),
            _ => Value::String(string_of(n)?),
        },
        ItemKind::Url => Value::Uri(string_of(n)?),
        ItemKind::Reference => Value::Reference(string_of(n)?),
        ItemKind::Choice | ItemKind::OpenChoice => {
            if let Node::Coding(c, _) = n {
                return Some(Value::Coding((*c).clone()));
            }
            // A number names an option's code as written (`1`, not `1.0`).
            let s = match n {
                Node::Dec(d) => decimal_text(*d),
                _ => string_of(n)?,
            };
            let option = item.options.iter().find(|o| match &o.value {
                Value::Coding(c) => {
                    c.code.as_deref() == Some(&s) || c.display.as_deref() == Some(&s)
                }
                Value::String(v) => *v == s,
                _ => false,
            });
            match option {
                Some(o) => o.value.clone(),
                None if item.kind == ItemKind::OpenChoice => Value::String(s),
                None => return None,
            }
        }
        ItemKind::Quantity => Value::Quantity(Quantity {
            value: Some(number()?),
            unit: match n {
                Node::Qty(_, u) if !u.is_empty() => Some(u.to_string()),
                _ => None,
            },
            ..Quantity::default()
        }),
        ItemKind::Attachment => match n {
            Node::Attachment(a) => Value::Attachment((*a).clone()),
            _ => return None,
        },
        ItemKind::Group | ItemKind::Display => return None,
    })
}
