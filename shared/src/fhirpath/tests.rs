use super::eval::decimal_text;
use super::*;
use crate::date::Date;
use crate::form::{ItemKind, Value};
use crate::test_forms::{answer, form, group};

fn code(code: &str) -> Coding {
    Coding {
        system: Some("http://loinc.org".into()),
        code: Some(code.into()),
        display: None,
    }
}

/// A mood choice with ordinals, a weight, a name and a repeating group "g" of "x".
fn sample() -> (Form, QuestionnaireResponse) {
    let mut mood = Item::new("mood", ItemKind::Choice);
    mood.options = [("a", 0.0), ("b", 2.0)]
        .into_iter()
        .map(|(c, ordinal)| AnswerOption {
            ordinal: Some(ordinal),
            ..AnswerOption::new(Value::Coding(code(c)))
        })
        .collect();
    let mut g = Item::new("g", ItemKind::Group);
    g.repeats = true;
    g.items = vec![Item::new("x", ItemKind::Integer)];
    let form = form(vec![
        mood,
        Item::new("weight", ItemKind::Decimal),
        Item::new("name", ItemKind::String),
        g,
    ]);
    let response = QuestionnaireResponse::new(
        None,
        "in-progress",
        vec![
            answer("mood", vec![Value::Coding(code("b"))]),
            answer("weight", vec![Value::Decimal(70.5)]),
            answer("name", vec![Value::String("Jane Doe".into())]),
            group("g", vec![answer("x", vec![Value::Integer(3)])]),
            group("g", vec![answer("x", vec![Value::Integer(4)])]),
        ],
    );
    (form, response)
}

fn show(n: &Node<'_>) -> String {
    match n {
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Dec(d) => decimal_text(*d),
        Node::Str(s) => format!("'{s}'"),
        Node::Date(s) | Node::DateTime(s) | Node::Time(s) => format!("@{s}"),
        Node::Qty(v, u) => format!("{} '{u}'", decimal_text(*v)),
        Node::Coding(c, _) => format!("coding {}", c.code.as_deref().unwrap_or("")),
        Node::Response(_) => "QuestionnaireResponse".into(),
        Node::ResponseItem(i) => format!("item {}", i.link_id),
        other => format!("{other:?}").chars().take(12).collect(),
    }
}

/// The result of `text` over the sample, as text ("error" when it fails).
fn run(text: &str) -> String {
    let (form, response) = sample();
    let mut env = Env::new(&form, &response, Date::new(2024, 3, 5).ok());
    env.vars.push(("ten", Ok(vec![Node::Int(10)])));
    let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    match env.eval(&expr, &[Node::Response(&response)]) {
        Ok(nodes) => nodes.iter().map(show).collect::<Vec<_>>().join(", "),
        Err(_) => "error".into(),
    }
}

#[test]
fn expressions_evaluate_as_fhirpath_says() {
    let cases = [
        // Arithmetic and strings.
        ("1 + 2", "3"),
        ("7 / 2", "3.5"),
        ("7 div 2", "3"),
        ("7 mod 2", "1"),
        ("2 * 3.5", "7"),
        ("-(1 + 2)", "-3"),
        ("1 / 0", ""),
        ("9223372036854775807 + 1", ""),
        ("'a' + 'b'", "'ab'"),
        ("'a' & {}", "'a'"),
        ("{} + 1", ""),
        ("1 'kg' + 2 'kg'", "3 'kg'"),
        ("4 days", "4 'day'"),
        // Comparison and equality.
        ("1 < 2", "true"),
        ("'b' > 'a'", "true"),
        ("@2024-01 < @2024-02-01", "true"),
        ("@2024-01 < @2024-01-05", ""),
        ("1 = 1.0", "true"),
        ("{} = 1", ""),
        ("(1 | 2) = (1 | 2)", "true"),
        ("1 != 2", "true"),
        ("'a' ~ ' A'", "true"),
        ("2 in (1 | 2)", "true"),
        ("(1 | 2) contains 3", "false"),
        // Three-valued logic.
        ("true and {}", ""),
        ("false and {}", "false"),
        ("true or {}", "true"),
        ("{} or false", ""),
        ("true xor false", "true"),
        ("false implies {}", "true"),
        ("{} implies true", "true"),
        ("(1 > 0).not()", "false"),
        // Collections.
        ("(1 | 2 | 2 | 3).count()", "3"),
        ("(1 | 2).combine(2).count()", "3"),
        ("(1 | 2 | 3).where($this > 1).sum()", "5"),
        ("{}.sum()", "0"),
        ("(1 | 2).select($this * 10)", "10, 20"),
        ("(1 | 2).all($this > 0)", "true"),
        ("{}.all(false)", "true"),
        ("(1 | 2).exists($this > 1)", "true"),
        ("{}.empty()", "true"),
        ("(1 | 2).first()", "1"),
        ("(1 | 2).last()", "2"),
        ("(1 | 2 | 3).tail()", "2, 3"),
        ("(1 | 2 | 3).skip(1).take(1)", "2"),
        ("(1 | 2).intersect(2 | 3)", "2"),
        ("(1 | 2).exclude(2)", "1"),
        ("(3 | 1 | 2).max()", "3"),
        ("(1 | 2).avg()", "1.5"),
        ("(1 | 2)[1]", "2"),
        ("(1 | 2)[5]", ""),
        ("(1 | 2).single()", "error"),
        ("(1 | 2) + 1", "error"),
        ("iif(true, 'y', 'n')", "'y'"),
        ("iif({}, 1)", ""),
        ("iif(false, 1, 2)", "2"),
        // Strings.
        ("'abc'.substring(1)", "'bc'"),
        ("'abc'.substring(1, 1)", "'b'"),
        ("'abc'.substring(5)", ""),
        ("'abc'.length()", "3"),
        ("'abc'.startsWith('ab')", "true"),
        ("'abc'.contains('bc')", "true"),
        ("'abc'.indexOf('c')", "2"),
        ("'a-b'.matches('^a.b$')", "true"),
        ("'ab'.toChars()", "'a', 'b'"),
        ("('a' | 'b').join(', ')", "'a, b'"),
        ("'1,2'.split(',').count()", "2"),
        ("'Hi'.upper() + 'Hi'.lower()", "'HIhi'"),
        ("' x '.trim()", "'x'"),
        ("'a.b'.replace('.', '-')", "'a-b'"),
        // Conversions and maths.
        ("'42'.toInteger() + 1", "43"),
        ("'2.5'.toDecimal()", "2.5"),
        ("'-2.5'.toDecimal()", "-2.5"),
        ("3.toString() + 2.5.toString()", "'32.5'"),
        ("(70 / 1.75 / 1.75).round(1)", "22.9"),
        ("2.power(10)", "1024"),
        ("2.5.power(2)", "6.25"),
        ("2.power(-1)", "0.5"),
        ("4.power(0.5)", "2"),
        ("(-8).power(0.5)", ""),
        ("0.power(-1)", ""),
        ("1.5.power(1.5).round(6)", "1.837117"),
        ("4.sqrt()", "2"),
        ("(-3).abs()", "3"),
        ("5.ln().exp().round(3)", "5"),
        ("2.7.floor() + 2.1.ceiling()", "5"),
        ("(-1).sqrt()", ""),
        ("1 is Integer", "true"),
        ("1.0 is System.Integer", "false"),
        ("'x'.ofType(String)", "'x'"),
        ("(1 as Decimal).exists()", "false"),
        // Dates, variables, context.
        ("today()", "@2024-03-05"),
        ("today().toString().substring(0, 4).toInteger()", "2024"),
        ("@2020-01-01T10:00:00Z", "@2020-01-01T10:00:00Z"),
        ("%ten * 2", "20"),
        ("%unknown.exists()", "false"),
        ("%unknown + 1", ""),
        ("$this", "QuestionnaireResponse"),
        ("%context.item.count()", "5"),
        ("QuestionnaireResponse.item.count()", "5"),
        // The response and the form.
        (
            "%resource.item.where(linkId = 'weight').answer.value",
            "70.5",
        ),
        (
            "item.where(linkId = 'name').answer.valueString",
            "'Jane Doe'",
        ),
        ("item.where(linkId = 'name').answer.valueInteger", ""),
        ("item.where(linkId = 'mood').answer.value.code", "'b'"),
        ("item.where(linkId = 'mood').answer.value.ordinal()", "2"),
        ("item.where(linkId = 'mood').answer.weight()", "2"),
        ("item.answer.value.ofType(Coding)", "coding b"),
        (
            "%resource.repeat(item).where(linkId = 'x').answer.value.sum()",
            "7",
        ),
        ("item.where(linkId = 'g')[1].item.answer.value", "4"),
        (
            "item.where(linkId = 'g').item.where(linkId = 'x').answer.value",
            "3, 4",
        ),
        (
            "%questionnaire.item.where(linkId = 'mood').answerOption.where(valueCoding.code = 'b')\
             .extension.where(url = 'http://hl7.org/fhir/StructureDefinition/ordinalValue').valueDecimal",
            "2",
        ),
        (
            "%questionnaire.item.where(linkId = 'mood').answerOption\
             .extension('http://hl7.org/fhir/StructureDefinition/itemWeight').value.sum()",
            "2",
        ),
        (
            "%questionnaire.item.where(type = 'group').item.linkId",
            "'x'",
        ),
        ("%questionnaire.repeat(item).count()", "5"),
        // aggregate(), $total and $index: the PHQ idiom.
        ("(1 | 2 | 3).aggregate($this + $total, 0)", "6"),
        (
            "(4 | 2 | 7).aggregate(iif($total.empty(), $this, iif($this < $total, $this, $total)))",
            "2",
        ),
        ("{}.aggregate($this + $total, 0)", "0"),
        ("(5 | 6).select($index)", "0, 1"),
        (
            "%resource.repeat(item).where(linkId = 'mood').answer.value.ordinal().aggregate($this + $total, 0)",
            "2",
        ),
        // Dates by precision and zone, date arithmetic.
        ("@2024-03-05T10:00:00+02:00 = @2024-03-05T08:00:00Z", "true"),
        ("@2024-03-05 = @2024-03-05T10:00:00", ""),
        ("1.8 - 1.2 = 0.6", "true"),
        // Date arithmetic with calendar durations, in forms (browser and server).
        ("today() - 18 years", "@2006-03-05"),
        ("today() - 18 'years'", "@2006-03-05"),
        ("@2024-02-29 + 1 year", "@2025-02-28"),
        ("@2024-01-31 + 1 month", "@2024-02-29"),
        ("@2024-03-31 - 1 month", "@2024-02-29"),
        ("@2023-12-15 + 3 months", "@2024-03-15"),
        ("@2024-03-05 + 2 weeks", "@2024-03-19"),
        ("@2024-03-05 - 5 days", "@2024-02-29"),
        ("@2024-03-05 + 10 'd'", "@2024-03-15"),
        ("@2024-03-05 + 25 hours", "@2024-03-06"),
        ("@2024-03 + 1 day", "@2024-03"),
        ("@2014 + 24 months", "@2016"),
        ("@2014 + 11 months", "@2014"),
        ("@2024-03-05T23:30:00Z + 1 hour", "@2024-03-06T00:30:00Z"),
        ("@2024-03-05T10:00 - 90 minutes", "@2024-03-05T08:30"),
        (
            "@2024-12-31T12:00:00.500+02:00 + 1 year",
            "@2025-12-31T12:00:00.500+02:00",
        ),
        ("@T23:00 + 2 hours", "@01:00"),
        ("@2024-03-05 + 1 'a'", "error"),
        ("@2024-03-05 + 1 'mo'", "error"),
        ("@2024-03-05 + 1 'kg'", "error"),
        ("@2024-03-05 - @2024-01-01", "error"),
        ("{} + 1 year", ""),
        ("(today() - 18 years) > @2006-03-04", "true"),
        (
            "iif(@2006-03-06 <= today() - 18 years, 'adult', 'minor')",
            "'minor'",
        ),
        // Decimals keep a point when written out; unit algebra is the server's.
        ("1.0.toString()", "'1.0'"),
        ("(1.5 * 2).toString() & ' kg'", "'3.0 kg'"),
        ("2.0 'cm' * 2.0 'm'", "error"),
        ("4 'g' / 2", "2 'g'"),
        // Units and decimal precision compare alike in the browser and on the server.
        ("1000 'g' = 1 'kg'", "true"),
        ("1 week = 7 days", "true"),
        ("150 'cm' < 2 'm'", "true"),
        ("1.0 ~ 1.04", "true"),
        ("1.0 = 1.04", "false"),
    ];
    let mut failures = vec![];
    for (text, expected) in cases {
        let got = run(text);
        if got != expected {
            failures.push(format!("{text}: got [{got}], expected [{expected}]"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn what_we_cannot_run_is_a_parse_error_that_says_why() {
    let long_chain = vec!["1"; 200].join(" + ");
    let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    let cases = [
        ("1 +", "the expression ends too early"),
        ("(1", "')' is missing"),
        ("'abc", "a string is not closed"),
        ("nosuch()", "function nosuch() is not supported"),
        ("iif(true)", "iif() takes 2 to 3 argument(s)"),
        ("1 ! 2", "an unexpected character"),
        ("$nosuch", "$nosuch is not supported"),
        ("@20x4", "a date or time literal is malformed"),
        ("1 2", "unexpected text after the expression"),
        ("%", "% is not followed by a name"),
        ("a.", "a name must follow '.'"),
        ("* 2", "an operator is missing its left side"),
        ("'\\u12'", "a \\u escape is not four hex digits"),
        (long_chain.as_str(), "the expression is nested too deeply"),
        (deep.as_str(), "the expression is nested too deeply"),
    ];
    for (text, message) in cases {
        assert_eq!(parse(text), Err(ParseError(message.into())), "{text}");
    }
    let checked = [
        (
            "%questionnaire.contained[0].expansion",
            "%questionnaire.…contained is not available: the compiled form keeps items, options and ordinal values",
        ),
        (
            "'a'.matches('^(?!x)a$')",
            "the matches() pattern uses regex syntax we do not support",
        ),
    ];
    for (text, message) in checked {
        assert!(parse(text).is_ok(), "{text}");
        assert_eq!(check(text), Err(ParseError(message.into())), "{text}");
    }
}

#[test]
fn odd_input_never_panics() {
    // Every prefix of real expressions, and pseudo-random token soup.
    let real = [
        "iif(%any, iif(%q1.exists(), %q1, 0) + 1, {})",
        "%resource.repeat(item).where(linkId='x').answer.all(value.matches('^[0-9]+$'))",
        "(%weight/((%height/100).power(2))).round(1)",
        "today().toString().substring(0,4).toInteger() - @2020-01-01.toString().substring(0,4).toInteger()",
        "'a\\'b' & `x y` & %'v' /* c */ // d",
    ];
    let (form, response) = sample();
    let env = Env::new(&form, &response, None);
    let root = [Node::Response(&response)];
    for text in real {
        for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
            if let Ok(e) = parse(&text[..end]) {
                let _ = env.eval(&e, &root);
            }
        }
    }
    let pieces = [
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ".",
        ",",
        "'s'",
        "1",
        "2.5",
        "-",
        "+",
        "*",
        "/",
        "|",
        "&",
        "=",
        "!=",
        "<",
        ">=",
        "~",
        "and",
        "or",
        "implies",
        "xor",
        "div",
        "mod",
        "in",
        "is",
        "contains",
        "item",
        "answer",
        "value",
        "where(",
        "select(",
        "repeat(",
        "iif(",
        "%resource",
        "%questionnaire",
        "$this",
        "today()",
        "sum()",
        "substring(",
        "power(",
        "combine(",
        "@2020",
        "0",
        "é",
        "\\",
        "'",
        "`",
        "%",
        "$",
        "@",
        "#",
        "ofType(",
        "Integer",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        let mut text = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for k in 0..(seed % 24) {
            let index = (seed.rotate_left(k as u32 * 5) % pieces.len() as u64) as usize;
            text.push_str(pieces[index]);
            text.push(' ');
        }
        if let Ok(e) = parse(&text) {
            let _ = env.eval(&e, &root);
        }
    }
    // Growth and recursion are bounded.
    let doubling = format!("1{}", ".select($this.combine($this))".repeat(20));
    let e = parse(&doubling).unwrap();
    assert_eq!(env.eval(&e, &root), Err(EvalError::Invalid));
    let e = parse("%resource.repeat($this)").unwrap();
    assert!(env.eval(&e, &root).is_ok());
}

/// Functions forms do not use, which the browser's bundle cannot afford: no
/// form expression may use them (so browser and server agree on every form),
/// the server evaluates them over FHIR JSON (extraction).
#[test]
fn server_only_functions_are_refused_in_forms() {
    for text in [
        "(3 | 1 | 2).sort()",
        "(1 | 2).subsetOf(1 | 2 | 3)",
        "'a'.encode('base64')",
    ] {
        let Err(ParseError(why)) = parse(text) else {
            panic!("{text} parses")
        };
        assert!(why.contains("is not supported"), "{text}: {why}");
        assert!(check(text).is_err(), "{text}");
    }
    #[cfg(feature = "launch-context")]
    {
        let empty = crate::json::Json::Object(vec![]);
        let env = Env::json(&empty, None);
        let run = |text: &str| {
            let e = parse_full(text).unwrap();
            env.eval(&e, &[Node::Json(&empty)])
                .unwrap()
                .iter()
                .map(show)
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(run("(3 | 1 | 2).sort()"), "1, 2, 3");
        assert_eq!(run("(1 | 2).subsetOf(1 | 2 | 3)"), "true");
        assert_eq!(run("'test'.encode('base64')"), "'dGVzdA=='");
        let mut env = Env::json(&empty, Date::new(2024, 3, 5).ok());
        env.now = Some("2024-03-05T10:00:00Z");
        for (text, expected) in [
            ("today() - 18 years", "@2006-03-05"),
            ("@2024-01-31 + 1 month", "@2024-02-29"),
            ("now() + 1 hour", "@2024-03-05T11:00:00Z"),
            ("'1 \\'kg\\''.toQuantity() = 1000 'g'", "true"),
        ] {
            let e = parse_full(text).unwrap();
            let got: Vec<String> = env
                .eval(&e, &[Node::Json(&empty)])
                .unwrap()
                .iter()
                .map(show)
                .collect();
            assert_eq!(got.join(", "), expected, "{text}");
        }
    }
}

/// An expression from an uploaded form cannot hang or exhaust the server:
/// nesting is bounded when parsed, work when evaluated (a clear error).
#[test]
fn hostile_expressions_stop_with_a_clear_error() {
    let (form, response) = sample();
    let env = Env::new(&form, &response, None);
    let root = [Node::Response(&response)];
    // Deep nesting: refused when parsed; the deepest accepted evaluates.
    let too_deep = format!("{}1{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(
        parse(&too_deep),
        Err(ParseError("the expression is nested too deeply".into()))
    );
    let deepest = (1..64)
        .find(|n| parse(&format!("{}1{}", "(".repeat(64 - n), ")".repeat(64 - n))).is_ok())
        .map(|n| format!("{}1{}", "(".repeat(64 - n), ")".repeat(64 - n)))
        .unwrap();
    assert_eq!(
        env.eval(&parse(&deepest).unwrap(), &root),
        Ok(vec![Node::Int(1)])
    );
    let chain = format!("1{}", ".select($this + 1)".repeat(30));
    assert_eq!(
        env.eval(&parse(&chain).unwrap(), &root),
        Ok(vec![Node::Int(31)])
    );
    // repeat() on a cycle: the same nodes again end it.
    for cycle in [
        "%resource.repeat($this)",
        "(1 | 2).repeat(1 | 2)",
        "%resource.repeat(item | %resource)",
    ] {
        assert!(env.eval(&parse(cycle).unwrap(), &root).is_ok(), "{cycle}");
    }
    // Huge work: a thousand values folded into a growing total, and a
    // product of collections, run out of budget.
    let ten = "(0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9)";
    let thousand = format!("{ten}.select({ten}.select({ten}.select($this)))");
    assert_eq!(
        env.eval(&parse(&format!("{thousand}.count()")).unwrap(), &root),
        Ok(vec![Node::Int(1000)])
    );
    let huge_aggregate = format!("{thousand}.aggregate($total.combine($this), {{}}).count()");
    assert_eq!(
        env.eval(&parse(&huge_aggregate).unwrap(), &root),
        Err(EvalError::TooMuchWork)
    );
    let product = format!("{thousand}.select({thousand}.where($this > 5)).count()");
    assert!(env.eval(&parse(&product).unwrap(), &root).is_err());
    let distinct = format!("{thousand}.select({ten}.select($this * 1000)).distinct().count()");
    assert!(env.eval(&parse(&distinct).unwrap(), &root).is_err());
    // A sum over a thousand values is well within budget.
    assert_eq!(
        env.eval(
            &parse(&format!("{thousand}.aggregate($this + $total, 0)")).unwrap(),
            &root
        ),
        Ok(vec![Node::Int(4500)])
    );
}

#[test]
fn decimals_print_without_float_formatting_noise() {
    for (x, text) in [
        (0.0, "0"),
        (22.9, "22.9"),
        (-0.5, "-0.5"),
        (1.0 / 3.0, "0.33333333"),
        (1e20, ""),
    ] {
        assert_eq!(decimal_text(x), text, "{x}");
    }
}

/// Expressions are parsed once per thread and text: evaluating a form again
/// (at every answer) gives the same results, and one that does not parse stays
/// uncomputed every time, never computed from an empty value.
#[test]
fn a_forms_expressions_evaluate_alike_each_time_they_are_parsed_once() {
    let mut total = Item::new("total", ItemKind::Integer);
    total.expressions.calculated = Some("%resource.item.answer.value.ofType(Integer).sum()".into());
    let mut broken = Item::new("broken", ItemKind::Integer);
    broken.expressions.calculated = Some("item.answer.value.sum(".into());
    let form = form(vec![Item::new("a", ItemKind::Integer), total, broken]);
    for n in 1..=3 {
        let response = QuestionnaireResponse::new(
            None,
            "in-progress",
            vec![answer("a", vec![Value::Integer(n)])],
        );
        let computed = sdc::compute(&form, &response, None, false);
        assert_eq!(
            computed.calculated.get("total"),
            Some(&vec![Value::Integer(n)]),
            "{n}"
        );
        assert_eq!(computed.uncomputed, ["broken"], "{n}");
    }
}
