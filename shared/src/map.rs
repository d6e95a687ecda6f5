//! `Map`: a map from `String` keys kept as one sorted `Vec` of pairs.
//!
//! The maps the browser holds are small (a draft's answers, a form's translations),
//! and `BTreeMap`'s node code, compiled once per value type, was about 30 kB of the
//! wasm. `Map` keeps `BTreeMap`'s behaviour where it is used (iteration in key order,
//! the last insert of a key wins) with a binary search over a `Vec`, and serde reads
//! and writes it as the same JSON object.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map from `String` keys, iterated in key order.
#[derive(Clone, PartialEq, Eq)]
pub struct Map<V>(Vec<(String, V)>);

impl<V> Default for Map<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> Map<V> {
    /// An empty map.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|at| &self.0[at].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.find(key).ok().map(|at| &mut self.0[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    /// Sets `key` to `value` unless it is there already.
    pub fn insert_if_absent(&mut self, key: String, value: V) {
        if let Err(at) = self.find(&key) {
            self.0.insert(at, (key, value));
        }
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.find(key).ok().map(|at| self.0.remove(at).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &V)> + ExactSizeIterator {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.0.iter_mut().map(|(_, v)| v)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<V> FromIterator<(String, V)> for Map<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        map.extend(iter);
        map
    }
}

impl<V> Extend<(String, V)> for Map<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<V> From<BTreeMap<String, V>> for Map<V> {
    fn from(map: BTreeMap<String, V>) -> Self {
        // Already sorted, each key once.
        Self(map.into_iter().collect())
    }
}

impl<V, const N: usize> From<[(String, V); N]> for Map<V> {
    fn from(pairs: [(String, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<V> std::ops::Index<&str> for Map<V> {
    type Output = V;
    /// The value of `key`; panics if there is none, as `BTreeMap`'s index does.
    fn index(&self, key: &str) -> &V {
        self.get(key).expect("no entry found for key")
    }
}

impl<V> IntoIterator for Map<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a Map<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, V)>,
        fn(&'a (String, V)) -> (&'a String, &'a V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<V: fmt::Debug> fmt::Debug for Map<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for Map<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Map<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, V>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_behaves_as_a_btreemap_for_the_same_operations() {
        let mut map = Map::new();
        let mut std = BTreeMap::new();
        let keys = ["b", "a[1].x", "a", "c", "a[0]", "b", "", "a"];
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.insert(k.to_string(), i), std.insert(k.to_string(), i));
        }
        assert_eq!(map.remove("c"), std.remove("c"));
        assert_eq!(map.remove("zz"), std.remove("zz"));
        map.retain(|k, _| !k.starts_with("a["));
        std.retain(|k, _| !k.starts_with("a["));
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            std.iter().collect::<Vec<_>>()
        );
        assert_eq!(map.get("b"), std.get("b"));
        assert_eq!(map.len(), std.len());
        assert_eq!(Map::from(std.clone()), map);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            serde_json::to_string(&std).unwrap()
        );
        let back: Map<usize> = serde_json::from_str(r#"{"z":1,"a":2}"#).unwrap();
        assert_eq!(back.keys().collect::<Vec<_>>(), ["a", "z"]);
    }
}
