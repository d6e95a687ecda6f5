//! Nicknames (William = Bill), from the curated list shipped in `data/`.

use std::collections::HashMap;
use std::sync::OnceLock;

const CSV: &str = include_str!("../data/nicknames.csv");

/// For each folded name, the ids of the groups it belongs to. A group is named by a
/// formal name and holds it and its nicknames. The list links both ways and
/// through nicknames (`bill` lists both `robert` and `william`), so a link joins the
/// shorter name to the longer one's group only: `bill` and `billy` share `william`,
/// but `william` and `robert` share nothing.
fn groups() -> &'static HashMap<&'static str, Vec<u16>> {
    static GROUPS: OnceLock<HashMap<&'static str, Vec<u16>>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut ids: HashMap<&'static str, u16> = HashMap::new();
        let mut groups: HashMap<&'static str, Vec<u16>> = HashMap::new();
        for line in CSV.lines().skip(1) {
            let mut cols = line.split(',');
            let (Some(a), Some("has_nickname"), Some(b)) = (cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let (a, b) = (a.trim(), b.trim());
            let (short, long) = if (a.len(), a) < (b.len(), b) {
                (a, b)
            } else {
                (b, a)
            };
            let next = u16::try_from(ids.len()).unwrap_or(u16::MAX);
            let id = *ids.entry(long).or_insert(next);
            for name in [long, short] {
                let list = groups.entry(name).or_default();
                if !list.contains(&id) {
                    list.push(id);
                }
            }
        }
        groups
    })
}

/// The shipped list as CSV (`name1,relationship,name2`).
pub fn csv() -> &'static str {
    CSV
}

/// The nickname groups of a folded given name (empty if it is in none).
pub fn groups_of(folded: &str) -> &'static [u16] {
    groups().get(folded).map_or(&[], Vec::as_slice)
}

/// Whether two folded given names are nicknames of one another (or of a third).
pub fn equivalent(a: &str, b: &str) -> bool {
    let (ga, gb) = (groups_of(a), groups_of(b));
    ga.iter().any(|g| gb.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_equivalent() {
        let cases = [
            ("william", "bill", true),
            ("bill", "william", true),
            ("robert", "bob", true),
            ("bill", "billy", true),
            ("elizabeth", "liz", true),
            ("margaret", "peggy", true),
            ("william", "robert", false),
            ("john", "mary", false),
            ("zzyzx", "zzyzx", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(equivalent(a, b), expected, "{a} {b}");
        }
    }
}
