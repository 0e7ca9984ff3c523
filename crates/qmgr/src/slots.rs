//! Delivery slots per destination, shared by every message in flight
//! (Postfix `qmgr_queue.c`: a destination's concurrency window): at most
//! `<transport>_destination_concurrency_limit` deliveries to one
//! destination at once, across messages.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The busy counts per destination key.
#[derive(Debug)]
pub(crate) struct Slots<K> {
    inner: Mutex<Inner<K>>,
    /// How many slots were ever freed (changed under the lock), so that a
    /// waiter sees a release that came between its look and its wait.
    released: AtomicU64,
}

#[derive(Debug)]
struct Inner<K> {
    busy: HashMap<K, usize>,
    /// Who waits for which destinations, oldest first. A freed slot wakes
    /// the first waiter for its destination only: with one condition for
    /// all, every release woke every waiting worker (twenty threads
    /// waiting for one mailbox's two slots: twenty wakeups a delivery).
    waiters: Vec<(Arc<Waiter>, Vec<K>)>,
}

#[derive(Debug, Default)]
struct Waiter {
    woken: Mutex<bool>,
    cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            inner: Mutex::new(Inner {
                busy: HashMap::new(),
                waiters: Vec::new(),
            }),
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
        let mut inner = lock(&self.inner);
        let n = inner.busy.entry(key.clone()).or_insert(0);
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

    /// Waits until a slot of one of `keys` is freed for this caller after
    /// `seen` (at once if any slot was freed since), or `timeout`.
    pub(crate) fn wait(&self, keys: &[K], seen: u64, timeout: Duration) {
        let me = Arc::new(Waiter::default());
        {
            let mut inner = lock(&self.inner);
            if self.released.load(Ordering::SeqCst) != seen {
                return;
            }
            inner.waiters.push((Arc::clone(&me), keys.to_vec()));
        }
        let deadline = Instant::now() + timeout;
        let mut woken = lock(&me.woken);
        while !*woken {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            woken = me
                .cv
                .wait_timeout(woken, left)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        drop(woken);
        // Gone already when a release chose this waiter.
        lock(&self.inner)
            .waiters
            .retain(|(w, _)| !Arc::ptr_eq(w, &me));
    }

    #[cfg(test)]
    pub(crate) fn busy(&self, key: &K) -> usize {
        lock(&self.inner).busy.get(key).copied().unwrap_or(0)
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        let mut inner = lock(&self.slots.inner);
        if let Some(n) = inner.busy.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.busy.remove(&self.key);
            }
        }
        self.slots.released.fetch_add(1, Ordering::SeqCst);
        let first = inner
            .waiters
            .iter()
            .position(|(_, keys)| keys.contains(&self.key));
        if let Some(pos) = first {
            let (w, _) = inner.waiters.remove(pos);
            *lock(&w.woken) = true;
            w.cv.notify_one();
        }
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
        s.wait(&["d"], seen, Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    /// A release wakes the oldest waiter for its destination, and only
    /// that one; a waiter for another destination sleeps on.
    #[test]
    fn a_release_wakes_one_waiter_of_its_destination() {
        use std::sync::atomic::AtomicUsize;
        let s: Slots<&str> = Slots::default();
        let a = s.try_take(&"a", 1).unwrap();
        let b = s.try_take(&"b", 1).unwrap();
        let woke = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for key in ["a", "a", "b"] {
                let (s, woke) = (&s, &woke);
                scope.spawn(move || {
                    let seen = s.seen();
                    if s.try_take(&key, 1).is_none() {
                        s.wait(&[key], seen, Duration::from_secs(3));
                    }
                    woke.fetch_add(1, Ordering::SeqCst);
                });
            }
            // All three wait.
            while lock(&s.inner).waiters.len() < 3 {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(a);
            while woke.load(Ordering::SeqCst) < 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(woke.load(Ordering::SeqCst), 1, "one wakeup for one release");
            let waiting: Vec<&str> = lock(&s.inner).waiters.iter().map(|(_, k)| k[0]).collect();
            assert_eq!(waiting, ["a", "b"]);
            drop(b);
        });
        assert_eq!(woke.load(Ordering::SeqCst), 3);
    }
}
