//! A small cache of recent answers, each kept for a fixed time.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Answers kept for `ttl`, at most `max` of them (the cache starts over
/// beyond: the callers ask for a handful of keys again and again, so no
/// eviction order is worth its cost).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    map: HashMap<K, (V, Instant)>,
    ttl: Duration,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new(ttl: Duration, max: usize) -> TtlCache<K, V> {
        TtlCache {
            map: HashMap::new(),
            ttl,
            max,
        }
    }

    /// The answer for `key`, if it is younger than the cache's time.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    /// Forgets the answer for `key`.
    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.remove(key);
    }

    /// Keeps `value` as the answer for `key`, from now.
    pub fn put(&mut self, key: K, value: V) {
        if self.map.len() >= self.max {
            self.map.clear();
        }
        self.map.insert(key, (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_the_cache_starts_over_when_full() {
        let mut c = TtlCache::new(Duration::from_millis(50), 2);
        c.put("a".to_string(), 1);
        c.put("b".to_string(), 2);
        assert_eq!(c.get("a"), Some(1));
        c.put("c".to_string(), 3);
        assert_eq!(c.get("a"), None, "full: started over");
        assert_eq!(c.get("c"), Some(3));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("c"), None, "expired");
    }
}
