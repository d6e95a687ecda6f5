//! FHIRPath: the subset SDC forms use for scores and conditions, evaluated over
//! the QuestionnaireResponse being filled in and the compiled form.
//!
//! Our own small evaluator rather than a general FHIRPath crate: the browser
//! bundle cannot carry a full FHIR model. It knows the response (`item`,
//! `answer`, `value`, `linkId`…), the compiled form as `%questionnaire` (items,
//! answer options and their ordinal values), variables, literals, every operator
//! and the functions listed in `parse.rs`. What it cannot run fails in [`check`],
//! which the import calls to list it. Evaluation never panics: an error (several
//! values where one is needed, say) makes the result empty, as does a name the
//! form does not define (`%patient` without a launch context).
//!
//! [`sdc`] applies the expressions of a form: variables, `enableWhenExpression`,
//! `calculatedExpression` and `initialExpression`.

use std::borrow::Cow;

#[cfg(feature = "launch-context")]
mod codec;
mod datetime;
mod eval;
mod parse;
pub mod sdc;

pub use eval::{Env, EvalError, MAX_STEPS, display, number_of};
#[cfg(feature = "launch-context")]
pub use parse::parse_full;
pub use parse::{ParseError, parse};

use crate::form::{AnswerOption, Attachment, Coding, Form, Item};
use crate::response::{QuestionnaireResponse, ResponseAnswer, ResponseItem};

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `{}`.
    Empty,
    /// A literal value.
    Lit(Node<'static>),
    /// `%name`.
    Var(String),
    /// `$this`.
    This,
    /// `$total` (in `aggregate()`).
    Total,
    /// `$index`.
    IndexVar,
    /// `name` on the target (or on the input when there is none).
    Member(Option<Box<Expr>>, String),
    /// `target.name(args)`; the name is one of the functions we evaluate.
    Call(Option<Box<Expr>>, Func, Vec<Expr>),
    /// `target[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operator (for `is` and `as`, the right side is the type name).
    Bin(Op, Box<Expr>, Box<Expr>),
}

/// A function the engine evaluates (its name is in `parse.rs`'s tables):
/// matched as a small integer, not by comparing names at each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Func {
    Empty,
    Exists,
    Count,
    Sum,
    Min,
    Max,
    Avg,
    First,
    Last,
    Tail,
    Skip,
    Take,
    Single,
    Aggregate,
    Where,
    Select,
    Repeat,
    All,
    AllTrue,
    AnyTrue,
    AllFalse,
    AnyFalse,
    Distinct,
    IsDistinct,
    Union,
    Combine,
    Intersect,
    Exclude,
    Iif,
    Not,
    HasValue,
    ToString,
    ToInteger,
    ToDecimal,
    ToBoolean,
    Length,
    Substring,
    StartsWith,
    EndsWith,
    Contains,
    IndexOf,
    Upper,
    Lower,
    Trim,
    Replace,
    Matches,
    ToChars,
    Split,
    Join,
    Round,
    Abs,
    Sqrt,
    Power,
    Ln,
    Exp,
    Log,
    Floor,
    Ceiling,
    Truncate,
    OfType,
    Is,
    As,
    Extension,
    Ordinal,
    Weight,
    Today,
    Now,
    Trace,
    ToQuantity,
    ToDate,
    ToDateTime,
    ToTime,
    ConvertsToString,
    ConvertsToInteger,
    ConvertsToDecimal,
    ConvertsToBoolean,
    ConvertsToQuantity,
    ConvertsToDate,
    ConvertsToDateTime,
    ConvertsToTime,
    Precision,
    LowBoundary,
    HighBoundary,
    SubsetOf,
    SupersetOf,
    Sort,
    Children,
    Descendants,
    MatchesFull,
    ReplaceMatches,
    Encode,
    Decode,
    Escape,
    Unescape,
}

impl Func {
    /// The function's name as written.
    pub fn name(self) -> &'static str {
        let all = parse::FUNCTIONS.iter();
        #[cfg(feature = "launch-context")]
        let all = all.chain(parse::SERVER_FUNCTIONS);
        all.clone().find(|f| f.1 == self).map_or("", |f| f.0)
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Implies,
    Or,
    Xor,
    And,
    In,
    Contains,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    Lt,
    Gt,
    Le,
    Ge,
    Union,
    Is,
    As,
    Add,
    Sub,
    Concat,
    Mul,
    Divide,
    Div,
    Mod,
}

/// One item of a FHIRPath collection: a value, or a node of the response or form.
#[derive(Clone, Debug, PartialEq)]
pub enum Node<'a> {
    Bool(bool),
    Int(i64),
    Dec(f64),
    Str(Cow<'a, str>),
    Date(Cow<'a, str>),
    DateTime(Cow<'a, str>),
    Time(Cow<'a, str>),
    /// A quantity: value and unit (its code where it has one).
    Qty(f64, Cow<'a, str>),
    /// A coding, with the linkId of the item it answers (for `ordinal()`).
    Coding(&'a Coding, Option<&'a str>),
    Attachment(&'a Attachment),
    /// `%resource`.
    Response(&'a QuestionnaireResponse),
    ResponseItem(&'a ResponseItem),
    /// An answer, with its item's linkId.
    Answer(&'a ResponseAnswer, &'a str),
    /// `%questionnaire`.
    Form(&'a Form),
    FormItem(&'a Item),
    Option(&'a AnswerOption),
    /// The `ordinalValue` extension of an answer option.
    Ordinal(f64),
    #[cfg(feature = "launch-context")]
    /// A launch-context resource (SDC `launchContext`, `%patient`) or an element
    /// of one, as JSON: the server binds it to prefill a form, the browser never
    /// has one.
    Json(&'a crate::json::Json),
}

/// Member names `%questionnaire` paths may use: the compiled form keeps items,
/// their options and ordinal values, not the whole Questionnaire.
const QUESTIONNAIRE_MEMBERS: &[&str] = &[
    "item",
    "linkId",
    "text",
    "prefix",
    "type",
    "required",
    "repeats",
    "readOnly",
    "answerOption",
    "code",
    "definition",
    "value",
    "valueCoding",
    "valueString",
    "valueInteger",
    "valueDecimal",
    "valueDate",
    "valueTime",
    "initialSelected",
    "extension",
    "url",
    "system",
    "display",
    "id",
    "version",
    "title",
    "resourceType",
];

/// Parses `text` and checks what parsing alone cannot: that its `matches()`
/// patterns compile here and its `%questionnaire` paths name what the compiled
/// form keeps. The error says what is not supported.
pub fn check(text: &str) -> Result<Expr, ParseError> {
    check_with(text, parse)
}

#[cfg(feature = "launch-context")]
/// [`check`] for an expression the server evaluates over FHIR JSON
/// (extraction): every function the engine has ([`parse_full`]).
pub fn check_full(text: &str) -> Result<Expr, ParseError> {
    check_with(text, parse_full)
}

fn check_with(text: &str, parse: fn(&str) -> Result<Expr, ParseError>) -> Result<Expr, ParseError> {
    fn from_questionnaire(e: &Expr) -> bool {
        match e {
            Expr::Var(name) => name == "questionnaire",
            Expr::Member(Some(t), _) | Expr::Call(Some(t), _, _) | Expr::Index(t, _) => {
                from_questionnaire(t)
            }
            _ => false,
        }
    }
    fn walk(e: &Expr) -> Result<(), ParseError> {
        match e {
            Expr::Member(Some(t), name) => {
                walk(t)?;
                if from_questionnaire(t) && !QUESTIONNAIRE_MEMBERS.contains(&name.as_str()) {
                    return Err(ParseError(format!(
                        "%questionnaire.…{name} is not available: the compiled form keeps items, options and ordinal values"
                    )));
                }
                Ok(())
            }
            Expr::Call(t, name, args) => {
                if *name == Func::Matches
                    && let Some(Expr::Lit(Node::Str(p))) = args.first()
                    && crate::regex::Regex::new(p).is_err()
                {
                    return Err(ParseError(
                        "the matches() pattern uses regex syntax we do not support".into(),
                    ));
                }
                t.as_deref().map_or(Ok(()), walk)?;
                args.iter().try_for_each(walk)
            }
            Expr::Index(a, b) | Expr::Bin(_, a, b) => walk(a).and_then(|()| walk(b)),
            Expr::Neg(a) => walk(a),
            _ => Ok(()),
        }
    }
    let e = parse(text)?;
    walk(&e)?;
    Ok(e)
}

#[cfg(test)]
mod tests;
