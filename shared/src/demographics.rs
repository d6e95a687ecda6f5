//! The demographics a patient gives about themself, and the rules they must meet.
//!
//! Two stages, as with any input: [`Demographics`] is what arrives (from the form or
//! as JSON named the way FHIR names things), and [`Demographics::parse`] turns it into
//! [`ValidDemographics`], whose fields can only hold valid values, or into the list of
//! every [`FieldIssue`] found.

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidateArgs, ValidationErrors};

use crate::date::Date;
use crate::rules;

/// Demographics as entered, before validation. JSON field names follow FHIR's Patient.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
#[serde(default, rename_all = "camelCase")]
#[validate(context = ValidationContext)]
pub struct Demographics {
    /// Family name (surname).
    #[validate(custom(function = "rules::family_name"))]
    pub family: String,
    /// Given names, first name first.
    #[validate(
        length(max = 5, code = "too_many"),
        custom(function = "rules::given_names")
    )]
    pub given: Vec<String>,
    /// Birth date as `YYYY-MM-DD`.
    #[validate(custom(function = "rules::birth_date", use_context))]
    pub birth_date: String,
    /// Administrative gender code: `female`, `male`, `other` or `unknown`.
    #[validate(custom(function = "rules::gender"))]
    pub gender: String,
    /// Phone number, as typed. Optional.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[validate(custom(function = "rules::phone"))]
    pub phone: String,
    /// Email address. Optional.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[validate(custom(function = "rules::email"))]
    pub email: String,
}

/// What validation needs to know about the world. The caller supplies it, so the
/// rules stay pure and testable.
#[derive(Clone, Copy, Debug)]
pub struct ValidationContext {
    /// Today's date where the person is. Birth dates after it are refused.
    pub today: Date,
}

/// FHIR AdministrativeGender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gender {
    /// female
    Female,
    /// male
    Male,
    /// other
    Other,
    /// unknown (also: the person would rather not say)
    Unknown,
}

impl Gender {
    /// Every code, in the order the form offers them.
    pub const ALL: [Gender; 4] = [Gender::Female, Gender::Male, Gender::Other, Gender::Unknown];

    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }

    /// The gender for a FHIR code, if it is one.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.code() == code)
    }
}

/// Demographics that passed every rule, normalised (names trimmed, phone digits only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidDemographics {
    /// Family name, trimmed, inner whitespace collapsed.
    pub family: String,
    /// Given names, each trimmed; at least one.
    pub given: Vec<String>,
    /// Birth date, between 1900-01-01 and today.
    pub birth_date: Date,
    /// Administrative gender.
    pub gender: Gender,
    /// Phone as `+` and digits (if typed with a country code) or digits only.
    pub phone: Option<String>,
    /// Email address, trimmed.
    pub email: Option<String>,
}

impl ValidDemographics {
    /// Back to the wire form, FHIR-named.
    pub fn to_demographics(&self) -> Demographics {
        Demographics {
            family: self.family.clone(),
            given: self.given.clone(),
            birth_date: self.birth_date.to_string(),
            gender: self.gender.code().to_owned(),
            phone: self.phone.clone().unwrap_or_default(),
            email: self.email.clone().unwrap_or_default(),
        }
    }
}

/// A field of [`Demographics`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    /// family
    Family,
    /// given
    Given,
    /// birthDate
    BirthDate,
    /// gender
    Gender,
    /// phone
    Phone,
    /// email
    Email,
}

impl Field {
    /// Every field, in form order.
    pub const ALL: [Field; 6] = [
        Field::Family,
        Field::Given,
        Field::BirthDate,
        Field::Gender,
        Field::Phone,
        Field::Email,
    ];

    /// The JSON (FHIR) name of the field, used in `OperationOutcome.issue.expression`.
    pub fn json_name(self) -> &'static str {
        match self {
            Field::Family => "family",
            Field::Given => "given",
            Field::BirthDate => "birthDate",
            Field::Gender => "gender",
            Field::Phone => "phone",
            Field::Email => "email",
        }
    }

    /// The Rust name, as `validator` reports it.
    fn rust_name(self) -> &'static str {
        match self {
            Field::BirthDate => "birth_date",
            other => other.json_name(),
        }
    }
}

/// What is wrong with a field. A closed set: each has a message in [`crate::i18n`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Nothing was entered where something is needed.
    Required,
    /// Longer than the longest accepted value.
    TooLong,
    /// More values than accepted (given names).
    TooMany,
    /// Characters that do not belong in a name.
    NameCharacters,
    /// Not a date, or a day that does not exist.
    NotADate,
    /// A birth date after today.
    DateInFuture,
    /// A birth date before 1900.
    DateTooEarly,
    /// Not one of the offered choices.
    NotAChoice,
    /// Not a plausible phone number.
    PhoneImplausible,
    /// Not an email address.
    EmailInvalid,
}

impl Problem {
    /// The code that the rules in this crate give `validator`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Problem::Required => "required",
            Problem::TooLong => "too_long",
            Problem::TooMany => "too_many",
            Problem::NameCharacters => "name_characters",
            Problem::NotADate => "not_a_date",
            Problem::DateInFuture => "date_in_future",
            Problem::DateTooEarly => "date_too_early",
            Problem::NotAChoice => "not_a_choice",
            Problem::PhoneImplausible => "phone_implausible",
            Problem::EmailInvalid => "email_invalid",
        }
    }

    const ALL: [Problem; 10] = [
        Problem::Required,
        Problem::TooLong,
        Problem::TooMany,
        Problem::NameCharacters,
        Problem::NotADate,
        Problem::DateInFuture,
        Problem::DateTooEarly,
        Problem::NotAChoice,
        Problem::PhoneImplausible,
        Problem::EmailInvalid,
    ];

    fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// One problem with one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldIssue {
    /// The field.
    pub field: Field,
    /// What is wrong with it.
    pub problem: Problem,
}

impl Demographics {
    /// Checks every rule and, if all pass, returns the normalised value. Otherwise
    /// returns every issue, at most one per field, in form order.
    pub fn parse(&self, context: &ValidationContext) -> Result<ValidDemographics, Vec<FieldIssue>> {
        if let Err(errors) = self.validate_with_args(context) {
            return Err(issues_from(&errors));
        }
        // Every rule passed, so each conversion below succeeds; the fallbacks are
        // unreachable, but a wrong default would be worse than an issue.
        let birth_date = Date::parse(&self.birth_date).map_err(|_| {
            vec![FieldIssue {
                field: Field::BirthDate,
                problem: Problem::NotADate,
            }]
        })?;
        let gender = Gender::from_code(&self.gender).ok_or_else(|| {
            vec![FieldIssue {
                field: Field::Gender,
                problem: Problem::NotAChoice,
            }]
        })?;
        let non_empty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(ValidDemographics {
            family: rules::collapse_whitespace(&self.family),
            given: self
                .given
                .iter()
                .map(|g| rules::collapse_whitespace(g))
                .filter(|g| !g.is_empty())
                .collect(),
            birth_date,
            gender,
            phone: non_empty(&self.phone).map(|p| rules::normalize_phone(&p)),
            email: non_empty(&self.email),
        })
    }

    /// The issues for every field, at most one per field (the first rule broken).
    pub fn issues(&self, context: &ValidationContext) -> Vec<FieldIssue> {
        match self.validate_with_args(context) {
            Ok(()) => Vec::new(),
            Err(errors) => issues_from(&errors),
        }
    }
}

fn issues_from(errors: &ValidationErrors) -> Vec<FieldIssue> {
    let by_field = errors.field_errors();
    Field::ALL
        .into_iter()
        .filter_map(|field| {
            let first = by_field.get(field.rust_name())?.first()?;
            // A code this crate did not give would be a bug in the rules; report it
            // as the field's most general problem rather than hide it.
            let problem = Problem::from_code(&first.code).unwrap_or(Problem::NotAChoice);
            Some(FieldIssue { field, problem })
        })
        .collect()
}

/// The English message for a problem with a field: says what to do, names the
/// field. (`POST /api/demographics/validate` puts it in its `OperationOutcome`.)
pub fn message(field: Field, problem: Problem) -> &'static str {
    use Field as F;
    use Problem as P;
    match (field, problem) {
        (F::Family, P::Required) => "Enter your family name",
        (F::Given, P::Required) => "Enter your first name",
        (F::BirthDate, P::Required) => "Enter your date of birth",
        (F::Gender, P::Required) => "Choose one of the options",
        (F::Family | F::Given, P::TooLong) => "Names can be at most 100 letters long",
        (F::Given, P::TooMany) => "Enter at most 5 given names",
        (F::Family | F::Given, P::NameCharacters) => {
            "Names can only have letters, spaces, hyphens, apostrophes and full stops"
        }
        (F::BirthDate, P::NotADate) => "Enter a real date, for example 3 27 1980",
        (F::BirthDate, P::DateInFuture) => "Date of birth must be today or in the past",
        (F::BirthDate, P::DateTooEarly) => "Date of birth must be in 1900 or later",
        (F::Phone, P::PhoneImplausible) => {
            "Enter a phone number with 7 to 15 digits, like (617) 555-0100"
        }
        (F::Email, P::EmailInvalid) => "Enter an email address like name@example.com",
        (_, P::NotAChoice) => "Choose one of the options",
        (_, _) => "Check this answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> ValidationContext {
        ValidationContext {
            today: Date::parse("2026-11-29").unwrap(),
        }
    }

    fn jane() -> Demographics {
        Demographics {
            family: "Doe".into(),
            given: vec!["Jane".into()],
            birth_date: "1980-02-29".into(),
            gender: "female".into(),
            phone: "+1 617 555 0100".into(),
            email: "jane@example.org".into(),
        }
    }

    #[test]
    fn the_example_from_the_issue_is_valid_and_normalised() {
        let valid = jane().parse(&today()).unwrap();
        assert_eq!(valid.family, "Doe");
        assert_eq!(valid.given, ["Jane"]);
        assert_eq!(valid.birth_date.to_string(), "1980-02-29");
        assert_eq!(valid.gender, Gender::Female);
        assert_eq!(valid.phone.as_deref(), Some("+16175550100"));
        assert_eq!(valid.email.as_deref(), Some("jane@example.org"));
    }

    #[test]
    fn each_broken_rule_is_reported_on_its_field() {
        type Edit = fn(&mut Demographics);
        let cases: &[(&str, Edit, Field, Problem)] = &[
            (
                "empty family",
                |d| d.family = "  ".into(),
                Field::Family,
                Problem::Required,
            ),
            (
                "digits in family",
                |d| d.family = "D0e".into(),
                Field::Family,
                Problem::NameCharacters,
            ),
            (
                "long family",
                |d| d.family = "a".repeat(101),
                Field::Family,
                Problem::TooLong,
            ),
            (
                "no given",
                |d| d.given.clear(),
                Field::Given,
                Problem::Required,
            ),
            (
                "blank given",
                |d| d.given = vec![" ".into()],
                Field::Given,
                Problem::Required,
            ),
            (
                "six given",
                |d| d.given = vec!["A".into(); 6],
                Field::Given,
                Problem::TooMany,
            ),
            (
                "symbol in given",
                |d| d.given = vec!["J@ne".into()],
                Field::Given,
                Problem::NameCharacters,
            ),
            (
                "no birth date",
                |d| d.birth_date.clear(),
                Field::BirthDate,
                Problem::Required,
            ),
            (
                "US order",
                |d| d.birth_date = "02/29/1980".into(),
                Field::BirthDate,
                Problem::NotADate,
            ),
            (
                "no such day",
                |d| d.birth_date = "1981-02-29".into(),
                Field::BirthDate,
                Problem::NotADate,
            ),
            (
                "tomorrow",
                |d| d.birth_date = "2026-11-30".into(),
                Field::BirthDate,
                Problem::DateInFuture,
            ),
            (
                "far future",
                |d| d.birth_date = "2099-01-01".into(),
                Field::BirthDate,
                Problem::DateInFuture,
            ),
            (
                "before 1900",
                |d| d.birth_date = "1899-12-31".into(),
                Field::BirthDate,
                Problem::DateTooEarly,
            ),
            (
                "no gender",
                |d| d.gender.clear(),
                Field::Gender,
                Problem::Required,
            ),
            (
                "unknown code",
                |d| d.gender = "F".into(),
                Field::Gender,
                Problem::NotAChoice,
            ),
            (
                "short phone",
                |d| d.phone = "555 01".into(),
                Field::Phone,
                Problem::PhoneImplausible,
            ),
            (
                "letters in phone",
                |d| d.phone = "call me".into(),
                Field::Phone,
                Problem::PhoneImplausible,
            ),
            (
                "bad email",
                |d| d.email = "jane.example.org".into(),
                Field::Email,
                Problem::EmailInvalid,
            ),
        ];
        for (name, edit, field, problem) in cases {
            let mut d = jane();
            edit(&mut d);
            assert_eq!(
                d.issues(&today()),
                vec![FieldIssue {
                    field: *field,
                    problem: *problem
                }],
                "case {name}"
            );
            assert!(d.parse(&today()).is_err(), "case {name} must not parse");
        }
    }

    #[test]
    fn boundary_birth_dates_are_accepted() {
        for date in ["1900-01-01", "2026-11-29"] {
            let d = Demographics {
                birth_date: date.into(),
                ..jane()
            };
            assert_eq!(d.issues(&today()), vec![], "{date}");
        }
    }

    #[test]
    fn phone_and_email_are_optional() {
        let d = Demographics {
            phone: String::new(),
            email: " ".into(),
            ..jane()
        };
        let valid = d.parse(&today()).unwrap();
        assert_eq!((valid.phone, valid.email), (None, None));
    }

    #[test]
    fn an_empty_form_reports_every_required_field_in_order() {
        let issues = Demographics::default().issues(&today());
        let fields: Vec<Field> = issues.iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            [Field::Family, Field::Given, Field::BirthDate, Field::Gender]
        );
        assert!(issues.iter().all(|i| i.problem == Problem::Required));
    }

    #[test]
    fn json_uses_fhir_names_and_round_trips() {
        let json = serde_json::to_value(jane()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"family": "Doe", "given": ["Jane"], "birthDate": "1980-02-29",
                "gender": "female", "phone": "+1 617 555 0100", "email": "jane@example.org"})
        );
        let back: Demographics = serde_json::from_value(json).unwrap();
        assert_eq!(back, jane());
    }

    #[test]
    fn missing_json_fields_become_required_issues_not_decode_errors() {
        let d: Demographics = serde_json::from_str(r#"{"family": "Doe"}"#).unwrap();
        let fields: Vec<Field> = d.issues(&today()).iter().map(|i| i.field).collect();
        assert_eq!(fields, [Field::Given, Field::BirthDate, Field::Gender]);
    }

    #[test]
    fn every_problem_code_maps_back_to_its_problem() {
        for p in Problem::ALL {
            assert_eq!(Problem::from_code(p.code()), Some(p));
        }
    }
    /// The combinations the rules can produce must each have a specific message.
    #[test]
    fn every_reachable_problem_has_its_own_english_message() {
        let reachable = [
            (Field::Family, Problem::Required),
            (Field::Family, Problem::TooLong),
            (Field::Family, Problem::NameCharacters),
            (Field::Given, Problem::Required),
            (Field::Given, Problem::TooMany),
            (Field::Given, Problem::NameCharacters),
            (Field::BirthDate, Problem::Required),
            (Field::BirthDate, Problem::NotADate),
            (Field::BirthDate, Problem::DateInFuture),
            (Field::BirthDate, Problem::DateTooEarly),
            (Field::Gender, Problem::Required),
            (Field::Gender, Problem::NotAChoice),
            (Field::Phone, Problem::PhoneImplausible),
            (Field::Email, Problem::EmailInvalid),
        ];
        for (field, problem) in reachable {
            let message = message(field, problem);
            assert_ne!(message, "Check this answer", "{field:?} {problem:?}");
        }
    }
}
