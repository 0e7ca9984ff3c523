//! Delivery slots per destination, shared by every message in flight
//! (Postfix `qmgr_queue.c`: a destination's concurrency window): at most
//! `<transport>_destination_concurrency_limit` deliveries to one
//! destination at once, across messages.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The busy counts per destination key.
#[derive(Debug)]
pub(crate) struct Slots<K> {
    busy: Mutex<HashMap<K, usize>>,
    freed: Condvar,
    /// How many slots were ever freed (changed under the lock), so that a
    /// waiter sees a release that came between its look and its wait.
    released: AtomicU64,
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            busy: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
            released: AtomicU64::new(0),
        }
    }
}

/// A taken slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot<'a, K: Eq + Hash + Clone> {
    slots: &'a Slots<K>,
    key: K,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    /// Takes a slot for `key` if fewer than `limit` are busy (0: no
    /// limit).
    pub(crate) fn try_take(&self, key: &K, limit: usize) -> Option<Slot<'_, K>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let n = busy.entry(key.clone()).or_insert(0);
        if limit != 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self,
            key: key.clone(),
        })
    }

    /// The release count to pass to [`Slots::wait`], read before the
    /// slots are looked at.
    pub(crate) fn seen(&self) -> u64 {
        self.released.load(Ordering::SeqCst)
    }

    /// Waits until a slot is freed after `seen` (at once if one was
    /// already), or `timeout`.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) {
        let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if self.released.load(Ordering::SeqCst) != seen {
            return;
        }
        let _ = self.freed.wait_timeout(busy, timeout);
    }

    #[cfg(test)]
    pub(crate) fn busy(&self, key: &K) -> usize {
        let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.get(key).copied().unwrap_or(0)
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = busy.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.key);
            }
        }
        self.slots.released.fetch_add(1, Ordering::SeqCst);
        drop(busy);
        self.slots.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_release() {
        let s: Slots<&str> = Slots::default();
        let a = s.try_take(&"a", 2).unwrap();
        let b = s.try_take(&"a", 2).unwrap();
        assert!(s.try_take(&"a", 2).is_none());
        assert!(s.try_take(&"b", 2).is_some());
        let many: Vec<_> = (0..50).map(|_| s.try_take(&"c", 0).unwrap()).collect();
        assert_eq!(s.busy(&"c"), 50);
        drop(many);
        drop(a);
        assert_eq!(s.busy(&"a"), 1);
        assert!(s.try_take(&"a", 2).is_some());
        drop(b);
        assert_eq!(s.busy(&"a"), 0);
        // A release since `seen` ends the wait at once.
        let seen = s.seen();
        drop(s.try_take(&"d", 1));
        let t = std::time::Instant::now();
        s.wait(seen, Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
