//! The engine through its public API: grades, explanations, safety rules, and
//! properties of the score.

#![allow(clippy::unwrap_used)]

use matching::{Config, Field, Grade, Hold, Identifier, Index, Level, MatchOptions, PatientRecord};
use proptest::prelude::*;

fn patient(given: &str, family: &str, birth: &str) -> PatientRecord {
    PatientRecord {
        given: vec![given.into()],
        family: Some(family.into()),
        birth_date: Some(birth.into()),
        gender: Some("female".into()),
        address_lines: vec!["12 Main St".into()],
        city: Some("Springfield".into()),
        state: Some("IL".into()),
        postal_code: Some("62701".into()),
        phones: vec!["(217) 555-0134".into()],
        ..PatientRecord::default()
    }
}

/// A population of distinct people, so the prior is realistic.
fn population() -> Index {
    let mut index = Index::new(Config::default());
    let given = [
        "ann", "bob", "carl", "dora", "emil", "fay", "gus", "hana", "ivo", "jill",
    ];
    let family = [
        "adams", "brown", "clark", "davis", "evans", "frost", "green", "hill",
    ];
    let mut n = 0;
    for (i, g) in given.iter().enumerate() {
        for (j, f) in family.iter().enumerate() {
            let mut p = patient(g, f, &format!("19{:02}-0{}-1{}", 40 + i + j, 1 + j % 9, i));
            p.phones = vec![format!("217555{:04}", n)];
            p.address_lines = vec![format!("{} Elm St", 100 + n)];
            p.postal_code = Some(format!("6{:04}", n));
            index.upsert(&format!("p{n}"), &p);
            n += 1;
        }
    }
    index
}

#[test]
fn the_same_patient_with_a_nickname_and_a_typo_is_certain() {
    let mut index = population();
    let mut stored = patient("William", "Linacre", "1975-04-03");
    stored.identifiers = vec![Identifier {
        system: "urn:mrn".into(),
        value: "A-12345".into(),
    }];
    index.upsert("will", &stored);
    let mut query = patient("Bill", "Linacer", "1975-03-04");
    query.identifiers = vec![Identifier {
        system: "urn:mrn".into(),
        value: "a12345".into(),
    }];
    let found = index.find(&query, &MatchOptions::default());
    let top = &found.candidates[0];
    assert_eq!(top.id, "will");
    assert_eq!(top.grade, Grade::Certain);
    let level = |f: Field| top.explanation.fields[f as usize].level;
    assert_eq!(level(Field::Given), Level::Close);
    assert_eq!(level(Field::Family), Level::Close);
    assert_eq!(level(Field::BirthDate), Level::Close);
    assert_eq!(level(Field::Identifier), Level::Exact);
    assert!(top.score > 0.99 && top.score <= 1.0);
}

#[test]
fn a_stranger_is_not_returned() {
    let index = population();
    let mut q = patient("Zebulon", "Quartermaine", "2001-12-30");
    q.phones.clear();
    q.address_lines = vec!["9 Far Away Rd".into()];
    q.postal_code = Some("99999".into());
    q.city = Some("Elsewhere".into());
    let found = index.find(&q, &MatchOptions::default());
    assert!(found.candidates.is_empty(), "{:?}", found.candidates);
}

#[test]
fn placeholder_names_are_never_certain() {
    let mut index = population();
    let baby = patient("Baby Boy", "Linacre", "2024-01-02");
    index.upsert("baby", &baby);
    let found = index.find(&baby, &MatchOptions::default());
    let top = &found.candidates[0];
    assert_eq!(top.id, "baby");
    assert_eq!(top.grade, Grade::Probable);
    assert_eq!(top.explanation.held, [Hold::Placeholder]);
}

#[test]
fn likely_twins_are_never_certain() {
    let mut index = population();
    index.upsert("twin-a", &patient("Jessica", "Linacre", "2010-06-07"));
    let found = index.find(
        &patient("Jennifer", "Linacre", "2010-06-07"),
        &MatchOptions::default(),
    );
    for c in &found.candidates {
        assert_ne!(c.grade, Grade::Certain, "{c:?}");
    }
}

#[test]
fn twins_sharing_address_phone_and_postal_code_are_never_certain() {
    let mut index = population();
    // Everything but the given name agrees, and there is no identifier: a twin.
    index.upsert("jessica", &patient("Jessica", "Linacre", "2010-06-07"));
    let found = index.find(
        &patient("Rebecca", "Linacre", "2010-06-07"),
        &MatchOptions::default(),
    );
    let top = &found.candidates[0];
    assert_eq!(top.id, "jessica");
    assert_eq!(top.grade, Grade::Probable, "{top:?}");
    assert_eq!(top.explanation.held, [Hold::PossibleTwin]);
}

#[test]
fn a_boy_and_a_girl_twin_with_nearly_the_same_name_are_never_certain() {
    let mut index = population();
    let mut alexander = patient("Alexander", "Linacre", "2010-06-07");
    alexander.gender = Some("male".into());
    index.upsert("alexander", &alexander);
    let found = index.find(
        &patient("Alexandra", "Linacre", "2010-06-07"),
        &MatchOptions::default(),
    );
    let top = &found.candidates[0];
    assert_eq!(top.id, "alexander");
    assert_ne!(
        top.explanation.fields[Field::Given as usize].level,
        Level::Different
    );
    assert_ne!(top.grade, Grade::Certain, "{top:?}");
    assert!(top.explanation.held.contains(&Hold::PossibleTwin));
}

#[test]
fn a_boy_and_a_girl_with_unrelated_names_are_two_people() {
    let mut index = population();
    index.upsert("jessica", &patient("Jessica", "Linacre", "2010-06-07"));
    let mut thomas = patient("Thomas", "Linacre", "2010-06-07");
    thomas.gender = Some("male".into());
    let found = index.find(&thomas, &MatchOptions::default());
    // Not a twin hold, not a review: another person, so a new chart.
    assert!(
        found.candidates.iter().all(|c| c.id != "jessica"),
        "{found:?}"
    );
    // With the sex missing on one side, the same query is a possible twin.
    thomas.gender = None;
    let found = index.find(&thomas, &MatchOptions::default());
    let top = &found.candidates[0];
    assert_eq!(top.id, "jessica");
    assert_eq!(top.explanation.held, [Hold::PossibleTwin]);
}

#[test]
fn a_nickname_initial_typo_sound_alike_or_middle_name_is_not_a_twin_signal() {
    let mut index = population();
    let mut stored = patient("William", "Linacre", "2010-06-07");
    stored.given = vec!["William".into(), "Robert".into()];
    index.upsert("william", &stored);
    for given in ["Bill", "W", "Wiliam", "Willyam", "Robert", "Bob"] {
        let found = index.find(
            &patient(given, "Linacre", "2010-06-07"),
            &MatchOptions::default(),
        );
        let top = &found.candidates[0];
        assert_eq!(top.id, "william", "{given}");
        assert!(
            !top.explanation.held.contains(&Hold::PossibleTwin),
            "{given}: {top:?}"
        );
    }
    // An unrelated given name still is.
    let found = index.find(
        &patient("Thomas", "Linacre", "2010-06-07"),
        &MatchOptions::default(),
    );
    assert_eq!(found.candidates[0].explanation.held, [Hold::PossibleTwin]);
}

#[test]
fn household_members_are_kept_apart() {
    let mut index = population();
    // Same family name, address, phone and postal code; another given name and
    // birth date: a spouse, a child.
    index.upsert("mother", &patient("Jessica", "Linacre", "1982-06-07"));
    for (given, birth) in [("Thomas", "2012-01-30"), ("Peter", "1980-11-02")] {
        let found = index.find(&patient(given, "Linacre", birth), &MatchOptions::default());
        assert!(
            found.candidates.iter().all(|c| c.id != "mother"),
            "{given}: {found:?}"
        );
    }
    // The same person with a year slip and a nickname is still found.
    let found = index.find(
        &patient("Jess", "Linacre", "1983-06-07"),
        &MatchOptions::default(),
    );
    assert_eq!(found.candidates[0].id, "mother");
}

#[test]
fn a_middle_initial_at_intake_meets_the_emr_middle_name() {
    let mut index = population();
    let mut emr = patient("John", "Linacre", "1975-04-03");
    emr.given = vec!["John".into(), "Robert".into()];
    emr.address_lines.clear();
    emr.phones.clear();
    index.upsert("john", &emr);
    let mut other = emr.clone();
    other.given = vec!["John".into(), "Thomas".into()];
    other.birth_date = Some("1975-04-13".into());
    index.upsert("other", &other);
    let mut intake = patient("John", "Linacre", "1975-04-03");
    intake.given = vec!["John".into(), "R".into()];
    let found = index.find(&intake, &MatchOptions::default());
    let top = &found.candidates[0];
    assert_eq!(top.id, "john");
    assert_eq!(
        top.explanation.fields[Field::Middle as usize].level,
        Level::Close
    );
    let other = found.candidates.iter().find(|c| c.id == "other").unwrap();
    assert_eq!(
        other.explanation.fields[Field::Middle as usize].level,
        Level::Different
    );
    assert!(top.weight > other.weight);
}

#[test]
fn a_hyphenated_family_name_meets_one_part_and_names_swapped_meet() {
    let mut index = population();
    index.upsert("maria", &patient("Maria", "Garcia-Lopez", "1975-04-03"));
    for (given, family) in [
        ("Maria", "Garcia"),
        ("Maria", "Lopez"),
        ("Garcia-Lopez", "Maria"),
    ] {
        let found = index.find(
            &patient(given, family, "1975-04-03"),
            &MatchOptions::default(),
        );
        let top = &found.candidates[0];
        assert_eq!(top.id, "maria", "{given} {family}");
        assert_eq!(
            top.explanation.fields[Field::Family as usize].level,
            Level::Close,
            "{given} {family}"
        );
    }
}

#[test]
fn the_model_learns_m_from_the_queries() {
    let mut index = population();
    index.fit();
    let before = index.model().clone();
    assert_eq!(before.learned_from_queries, 0);
    // Intakes of returning patients whose family name is often misspelled.
    for n in 0..matching::QUERIES_TO_LEARN {
        let i = (n % 10) as usize;
        let j = (n % 8) as usize;
        let given = [
            "ann", "bob", "carl", "dora", "emil", "fay", "gus", "hana", "ivo", "jill",
        ][i];
        let family = [
            "adamz", "browm", "clarc", "davies", "evams", "frots", "grene", "hil",
        ][j];
        let birth = format!("19{:02}-0{}-1{}", 40 + i + j, 1 + j % 9, i);
        index.find(&patient(given, family, &birth), &MatchOptions::default());
    }
    assert_eq!(index.observed().queries, matching::QUERIES_TO_LEARN);
    // A lookup that is not an intake (learn off) teaches nothing.
    let mut config = index.config().clone();
    config.learn = false;
    index.set_config(config.clone());
    index.find(
        &patient("ann", "adams", "1940-01-10"),
        &MatchOptions::default(),
    );
    assert_eq!(index.observed().queries, matching::QUERIES_TO_LEARN);
    config.learn = true;
    index.set_config(config);
    index.fit();
    let after = index.model();
    assert_eq!(after.learned_from_queries, matching::QUERIES_TO_LEARN);
    // Every query was a returning patient: the prior learned says so.
    assert!(after.returning > 0.8, "{}", after.returning);
    assert_eq!(after.version, before.version + 1);
    let family = Field::Family as usize;
    // Close family names are now likelier among true matches than the default says.
    assert!(
        after.fields[family].m[Level::Close as usize]
            > before.fields[family].m[Level::Close as usize] + 0.1,
        "{:?} {:?}",
        before.fields[family],
        after.fields[family]
    );
}

#[test]
fn a_typo_in_the_given_name_with_everything_else_agreeing_is_certain() {
    let mut index = population();
    index.upsert("jessica", &patient("Jessica", "Linacre", "2010-06-07"));
    // No identifier: a typo-level given name is not a twin's.
    let found = index.find(
        &patient("Jesisca", "Linacre", "2010-06-07"),
        &MatchOptions::default(),
    );
    let top = &found.candidates[0];
    assert_eq!(top.id, "jessica");
    assert_eq!(
        top.explanation.fields[Field::Given as usize].level,
        Level::Close
    );
    assert!(top.explanation.held.is_empty(), "{top:?}");
    assert_eq!(top.grade, Grade::Certain);
}

#[test]
fn given_names_split_by_a_space_are_one_name() {
    let mut index = population();
    index.upsert("alexander", &patient("Alexander", "Linacre", "1990-06-07"));
    index.upsert("annmarie", &patient("Annmarie", "Quist", "1991-02-03"));
    for (query, id, level) in [
        ("Ale Xander", "alexander", Level::Exact),
        ("Ann Marie", "annmarie", Level::Exact),
        ("Br Inley", "alexander", Level::Different),
    ] {
        let family = if id == "annmarie" { "Quist" } else { "Linacre" };
        let birth = if id == "annmarie" {
            "1991-02-03"
        } else {
            "1990-06-07"
        };
        let found = index.find(&patient(query, family, birth), &MatchOptions::default());
        let top = &found.candidates[0];
        assert_eq!(top.id, id, "{query}");
        assert_eq!(
            top.explanation.fields[Field::Given as usize].level,
            level,
            "{query}"
        );
        if level == Level::Exact {
            assert_eq!(top.grade, Grade::Certain, "{query}: {top:?}");
        } else {
            assert_ne!(top.grade, Grade::Certain, "{query}: {top:?}");
        }
    }
}

#[test]
fn a_record_with_its_names_and_birth_date_all_wrong_is_found_by_its_house_and_street() {
    let mut index = population();
    let mut stored = patient("Madison", "Weller", "1934-10-24");
    stored.address_lines = vec!["11 Coplanddrive".into()];
    stored.city = Some("Birmingha M Gardens".into());
    stored.postal_code = Some("4350".into());
    stored.phones.clear();
    index.upsert("weller", &stored);
    let mut query = patient("Emmet", "Wellen", "1927-05-16");
    query.address_lines = vec!["11 Copland Drvie".into()];
    query.city = Some("Newcastle".into());
    query.postal_code = Some("4365".into());
    query.phones.clear();
    assert!(index.blocking_candidates(&query).contains(&"weller"));
}

#[test]
fn two_different_people_scoring_alike_are_never_certain() {
    let mut index = population();
    index.upsert("a", &patient("Maria", "Linacre", "1980-03-04"));
    let mut mario = patient("Mario", "Linacre", "1980-03-04");
    mario.gender = Some("male".into());
    mario.phones = vec!["(312) 555-0199".into()];
    mario.address_lines = vec!["77 Lake Shore Dr".into()];
    mario.city = Some("Chicago".into());
    mario.postal_code = Some("60611".into());
    index.upsert("b", &mario);
    // Only name and birth date: it could be either.
    let query = PatientRecord {
        given: vec!["Maria".into()],
        family: Some("Linacre".into()),
        birth_date: Some("1980-03-04".into()),
        ..PatientRecord::default()
    };
    let found = index.find(&query, &MatchOptions::default());
    assert!(found.candidates.len() >= 2, "{found:?}");
    assert!(
        found.candidates.iter().all(|c| c.grade != Grade::Certain),
        "{found:?}"
    );
}

#[test]
fn duplicate_charts_of_one_person_are_both_certain() {
    let mut index = population();
    index.upsert("a", &patient("Maria", "Linacre", "1980-03-04"));
    index.upsert("b", &patient("Maria", "Linacre", "1980-03-04"));
    let found = index.find(
        &patient("Maria", "Linacre", "1980-03-04"),
        &MatchOptions::default(),
    );
    let grades: Vec<_> = found.candidates.iter().map(|c| c.grade).collect();
    assert_eq!(grades, [Grade::Certain, Grade::Certain]);
}

#[test]
fn only_certain_and_count_are_honoured() {
    let mut index = population();
    index.upsert("a", &patient("Maria", "Linacre", "1980-03-04"));
    index.upsert("b", &patient("Maria", "Linacre", "1980-03-04"));
    let one = MatchOptions {
        only_certain: true,
        count: 1,
    };
    assert_eq!(
        index
            .find(&patient("Maria", "Linacre", "1980-03-04"), &one)
            .candidates
            .len(),
        1
    );
}

#[test]
fn a_rare_family_name_counts_for_more_than_a_common_one() {
    let mut index = Index::new(Config {
        auto_refit: false,
        ..Config::default()
    });
    for i in 0..200 {
        let mut p = patient(
            &format!("given{i}"),
            "Smith",
            &format!("19{:02}-01-01", i % 90 + 10),
        );
        p.phones.clear();
        index.upsert(&format!("s{i}"), &p);
    }
    let mut p = patient("Zed", "Linacre", "1950-01-01");
    p.phones.clear();
    index.upsert("l", &p);
    let weight_of = |family: &str, id: &str| {
        let mut q = patient("Nobody", family, "1950-01-01");
        q.phones.clear();
        let found = index.find_excluding(
            &q,
            &MatchOptions {
                only_certain: false,
                count: 500,
            },
            None,
        );
        let c = found.candidates.iter().find(|c| c.id == id);
        c.map(|c| c.explanation.fields[Field::Family as usize].weight)
    };
    let smith = weight_of("Smith", "s40").unwrap();
    let linacre = weight_of("Linacre", "l").unwrap();
    assert!(linacre > smith + 4.0, "{linacre} {smith}");
}

#[test]
fn an_index_of_a_few_candidates_from_a_larger_population_scores_with_its_prior() {
    // A remote EMR's search brings two candidates out of a million patients.
    let candidates = |population: Option<usize>| {
        let mut index = Index::new(Config {
            auto_refit: false,
            population,
            ..Config::default()
        });
        index.upsert("a", &patient("Maria", "Linacre", "1980-03-04"));
        index.upsert("b", &patient("Maria", "Linacre", "1981-03-04"));
        index.find(
            &patient("Maria", "Linacre", "1980-03-04"),
            &MatchOptions::default(),
        )
    };
    let sampled = candidates(Some(1_000_000));
    let alone = candidates(None);
    let top = &sampled.candidates[0];
    assert_eq!(top.id, "a");
    // The prior: one patient of the population, the query being a returning
    // patient (not learned yet: 1).
    assert!((top.explanation.prior - matching::log_odds(1.0 / 1e6)).abs() < 1e-9);
    assert!((alone.candidates[0].explanation.prior - matching::log_odds(0.5)).abs() < 1e-9);
    // Counts among two candidates say nothing of how common a name is: exact
    // agreement weighs the model's weight.
    let model = matching::Model::default();
    let family = &top.explanation.fields[Field::Family as usize];
    assert_eq!(family.level, Level::Exact);
    assert_eq!(
        family.weight,
        model.fields[Field::Family as usize].weight(Level::Exact)
    );
    assert!((top.log_odds - (top.weight + top.explanation.prior)).abs() < 1e-9);
}

#[test]
fn updates_and_removals_change_what_is_found() {
    let mut index = population();
    index.upsert("x", &patient("Maria", "Linacre", "1980-03-04"));
    index.upsert("x", &patient("Maria", "Okafor", "1980-03-04"));
    assert_eq!(index.len(), 81);
    let found = index.find(
        &patient("Maria", "Okafor", "1980-03-04"),
        &MatchOptions::default(),
    );
    assert_eq!(found.candidates[0].id, "x");
    index.remove("x");
    let found = index.find(
        &patient("Maria", "Okafor", "1980-03-04"),
        &MatchOptions::default(),
    );
    assert!(found.candidates.iter().all(|c| c.id != "x"));
    assert!(index.memory().bytes_per_patient > 0);
}

#[test]
fn fitting_is_deterministic() {
    let mut a = population();
    let mut b = population();
    a.fit();
    b.fit();
    assert_eq!(a.model(), b.model());
    let q = patient("Dora", "Clark", "1945-03-13");
    assert_eq!(
        a.find(&q, &MatchOptions::default()),
        b.find(&q, &MatchOptions::default())
    );
}

fn arb_patient() -> impl Strategy<Value = PatientRecord> {
    let name = prop::sample::select(vec![
        "ann", "anne", "bill", "william", "smith", "smyth", "jo", "linacre",
    ]);
    let date = prop::sample::select(vec!["1980-03-04", "1980-04-03", "1980-03-05", "1991-11-20"]);
    let opt = |s: &'static [&'static str]| prop::option::of(prop::sample::select(s.to_vec()));
    (
        name.clone(),
        name,
        date,
        opt(&["62701", "62702", "10001"]),
        opt(&["5551234567", "5551234568"]),
        opt(&["A1234", "A1235"]),
        opt(&["male", "female"]),
    )
        .prop_map(|(g, f, d, postal, phone, id, gender)| PatientRecord {
            given: vec![g.into()],
            family: Some(f.into()),
            birth_date: Some(d.into()),
            postal_code: postal.map(Into::into),
            phones: phone.map(|p| vec![p.into()]).unwrap_or_default(),
            identifiers: id
                .map(|v| {
                    vec![Identifier {
                        system: "urn:mrn".into(),
                        value: v.into(),
                    }]
                })
                .unwrap_or_default(),
            gender: gender.map(Into::into),
            ..PatientRecord::default()
        })
}

fn weight_between(a: &PatientRecord, b: &PatientRecord) -> Option<f64> {
    let mut index = population();
    index.upsert("zz-a", a);
    index.upsert("zz-b", b);
    let all = MatchOptions {
        only_certain: false,
        count: 1000,
    };
    let mut loose = index.config().clone();
    loose.thresholds.possible = f64::NEG_INFINITY;
    index.set_config(loose);
    let found = index.find_excluding(a, &all, Some("zz-a"));
    found
        .candidates
        .iter()
        .find(|c| c.id == "zz-b")
        .map(|c| c.weight)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_score_is_symmetric(a in arb_patient(), b in arb_patient()) {
        let ab = weight_between(&a, &b);
        let ba = weight_between(&b, &a);
        prop_assert_eq!(ab.is_some(), ba.is_some());
        if let (Some(x), Some(y)) = (ab, ba) {
            prop_assert!((x - y).abs() < 1e-9, "{} {}", x, y);
        }
    }

    #[test]
    fn an_agreeing_field_never_lowers_the_score(a in arb_patient(), b in arb_patient()) {
        let Some(before) = weight_between(&a, &b) else { return Ok(()) };
        // Add an e-mail address both share.
        let (mut a2, mut b2) = (a.clone(), b.clone());
        a2.emails = vec!["same@example.org".into()];
        b2.emails = vec!["SAME@example.org".into()];
        let after = weight_between(&a2, &b2).unwrap();
        prop_assert!(after >= before, "{} < {}", after, before);
        // And a city.
        let (mut a3, mut b3) = (a.clone(), b.clone());
        a3.city = Some("Springfield".into());
        b3.city = Some("springfield".into());
        let after = weight_between(&a3, &b3).unwrap();
        prop_assert!(after >= before, "{} < {}", after, before);
    }
}

#[test]
fn thresholds_are_configured_as_probabilities() {
    let t = matching::Thresholds::from_probabilities(0.999, 0.8, 0.06).unwrap();
    assert_eq!(t, matching::Thresholds::default());
    assert!((t.certain - (0.999f64 / 0.001).log2()).abs() < 1e-12);
    let [c, p, q] = t.probabilities();
    assert!((c - 0.999).abs() < 1e-12 && (p - 0.8).abs() < 1e-12 && (q - 0.06).abs() < 1e-12);
    for bad in [
        (1.0, 0.8, 0.06),
        (0.9, 0.95, 0.06),
        (0.9, 0.8, 0.0),
        (0.9, 0.8, 0.85),
    ] {
        assert!(
            matching::Thresholds::from_probabilities(bad.0, bad.1, bad.2).is_none(),
            "{bad:?}"
        );
    }
}

#[test]
fn staff_decisions_correct_m_and_the_next_similar_match_grades_by_them() {
    // Charts without address or phone; intakes with another family name (married),
    // the rest agreeing: the family name's disagreement weighs against them.
    let chart = |given: &str, family: &str, birth: &str| PatientRecord {
        given: vec![given.into()],
        family: Some(family.into()),
        birth_date: Some(birth.into()),
        gender: Some("female".into()),
        ..PatientRecord::default()
    };
    let mut index = population();
    let married = [
        ("Olga", "Petrova", "Smith", "1971-02-03"),
        ("Ines", "Moreau", "Jones", "1972-03-04"),
        ("Yuki", "Tanaka", "Brown", "1973-04-05"),
        ("Asha", "Mehta", "Wilson", "1974-05-06"),
    ];
    for (given, maiden, _, birth) in married {
        index.upsert(given, &chart(given, maiden, birth));
    }
    index.upsert("zora", &chart("Zora", "Kovac", "1975-06-07"));
    index.fit();
    let query = chart("Zora", "Taylor", "1975-06-07");
    let before = index.find(&query, &MatchOptions::default()).candidates[0].clone();
    assert_eq!(before.id, "zora");
    let m_before = index.model().fields[Field::Family as usize].m[Level::Different as usize];
    // `certain` just above it: before the decisions it is `probable`.
    let mut config = index.config().clone();
    config.thresholds.certain = before.log_odds + 1.0;
    config.thresholds.probable = before.log_odds - 1.0;
    index.set_config(config);
    assert_eq!(
        index.find(&query, &MatchOptions::default()).candidates[0].grade,
        Grade::Probable
    );
    // One decision moves m by a bounded step.
    let (given, _, married_name, birth) = married[0];
    assert!(index.teach(&chart(given, married_name, birth), given, true));
    index.fit();
    let m_one = index.model().fields[Field::Family as usize].m[Level::Different as usize];
    assert!(
        m_one > m_before && m_one - m_before <= 25.0 / 225.0 + 1e-9,
        "{m_before} {m_one}"
    );
    // Three more: the same person under a married name is common here.
    for (given, _, married_name, birth) in &married[1..] {
        assert!(index.teach(&chart(given, married_name, birth), given, true));
    }
    assert!(!index.teach(&query, "nobody", true));
    index.fit();
    let m_after = index.model().fields[Field::Family as usize].m[Level::Different as usize];
    assert!(m_after > m_one + 0.1, "{m_one} {m_after}");
    let after = index.find(&query, &MatchOptions::default()).candidates[0].clone();
    assert_eq!(after.id, "zora");
    assert!(
        after.log_odds > before.log_odds + 1.0,
        "{before:?} {after:?}"
    );
    assert_eq!(after.grade, Grade::Certain);
}
