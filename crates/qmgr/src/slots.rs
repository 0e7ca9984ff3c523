//! Delivery slots per destination, shared by every message in flight
//! (Postfix `qmgr_queue.c`: a destination's concurrency window): at most
//! `<transport>_destination_concurrency_limit` deliveries to one
//! destination at once, across messages.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The busy counts per destination key. A release can hand a payload
/// `P` (qmgr: the delivery agent connection just used) to the waiter it
/// wakes.
#[derive(Debug)]
pub(crate) struct Slots<K, P = ()> {
    inner: Mutex<Inner<K, P>>,
    /// How many slots were ever freed (changed under the lock), so that a
    /// waiter sees a release that came between its look and its wait.
    released: AtomicU64,
}

#[derive(Debug)]
struct Inner<K, P> {
    busy: HashMap<K, usize>,
    /// Who waits for which destinations, oldest first. A freed slot wakes
    /// the first waiter for its destination only: with one condition for
    /// all, every release woke every waiting worker (twenty threads
    /// waiting for one mailbox's two slots: twenty wakeups a delivery).
    waiters: Vec<(Arc<Waiter<P>>, Vec<K>)>,
}

#[derive(Debug)]
struct Waiter<P> {
    /// Whether a release chose this waiter, and what it handed over.
    woken: Mutex<(bool, Option<P>)>,
    cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K, P> Default for Slots<K, P> {
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

/// A taken slot; dropping it (or [`Slot::release`]) frees the slot.
#[derive(Debug)]
pub(crate) struct Slot<'a, K: Eq + Hash + Clone, P = ()> {
    slots: &'a Slots<K, P>,
    key: K,
    released: bool,
}

impl<K: Eq + Hash + Clone, P> Slots<K, P> {
    /// Takes a slot for `key` if fewer than `limit` are busy (0: no
    /// limit).
    pub(crate) fn try_take(&self, key: &K, limit: usize) -> Option<Slot<'_, K, P>> {
        let mut inner = lock(&self.inner);
        let n = inner.busy.entry(key.clone()).or_insert(0);
        if limit != 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self,
            key: key.clone(),
            released: false,
        })
    }

    /// The release count to pass to [`Slots::wait`], read before the
    /// slots are looked at.
    pub(crate) fn seen(&self) -> u64 {
        self.released.load(Ordering::SeqCst)
    }

    /// Waits until a slot of one of `keys` is freed for this caller after
    /// `seen` (at once if any slot was freed since), or `timeout`; returns
    /// what the release handed over.
    pub(crate) fn wait(&self, keys: &[K], seen: u64, timeout: Duration) -> Option<P> {
        let me = Arc::new(Waiter {
            woken: Mutex::new((false, None)),
            cv: Condvar::new(),
        });
        {
            let mut inner = lock(&self.inner);
            if self.released.load(Ordering::SeqCst) != seen {
                return None;
            }
            inner.waiters.push((Arc::clone(&me), keys.to_vec()));
        }
        let deadline = Instant::now() + timeout;
        let mut woken = lock(&me.woken);
        while !woken.0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            woken = me
                .cv
                .wait_timeout(woken, left)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        let handed = woken.1.take();
        drop(woken);
        // Gone already when a release chose this waiter.
        lock(&self.inner)
            .waiters
            .retain(|(w, _)| !Arc::ptr_eq(w, &me));
        handed
    }

    #[cfg(test)]
    pub(crate) fn busy(&self, key: &K) -> usize {
        lock(&self.inner).busy.get(key).copied().unwrap_or(0)
    }
}

impl<K: Eq + Hash + Clone, P> Slot<'_, K, P> {
    /// Frees the slot and hands `payload` to the waiter it wakes; returns
    /// the payload when nobody waits for this destination.
    pub(crate) fn release(mut self, payload: Option<P>) -> Option<P> {
        self.free(payload)
    }

    fn free(&mut self, payload: Option<P>) -> Option<P> {
        if self.released {
            return payload;
        }
        self.released = true;
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
        let Some(pos) = first else {
            return payload;
        };
        let (w, _) = inner.waiters.remove(pos);
        *lock(&w.woken) = (true, payload);
        w.cv.notify_one();
        None
    }
}

impl<K: Eq + Hash + Clone, P> Drop for Slot<'_, K, P> {
    fn drop(&mut self) {
        drop(self.free(None));
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
        assert!(s.wait(&["d"], seen, Duration::from_secs(5)).is_none());
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
        // (the handover itself: a_release_hands_its_payload_to_the_waiter)
        let woke = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for key in ["a", "a", "b"] {
                let (s, woke) = (&s, &woke);
                scope.spawn(move || {
                    let seen = s.seen();
                    if s.try_take(&key, 1).is_none() {
                        let _ = s.wait(&[key], seen, Duration::from_secs(3));
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
            let mut waiting: Vec<&str> = lock(&s.inner).waiters.iter().map(|(_, k)| k[0]).collect();
            waiting.sort_unstable();
            assert_eq!(waiting, ["a", "b"]);
            drop(b);
        });
        assert_eq!(woke.load(Ordering::SeqCst), 3);
    }

    /// What a release hands over reaches the waiter it wakes; with nobody
    /// waiting it comes back.
    #[test]
    fn a_release_hands_its_payload_to_the_waiter() {
        let s: Slots<&str, u32> = Slots::default();
        let a = s.try_take(&"a", 1).unwrap();
        assert_eq!(a.release(Some(7)), Some(7), "nobody waits");
        let a = s.try_take(&"a", 1).unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let seen = s.seen();
                assert!(s.try_take(&"a", 1).is_none());
                s.wait(&["a"], seen, Duration::from_secs(5))
            });
            while lock(&s.inner).waiters.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(a.release(Some(9)), None, "handed over");
            assert_eq!(waiter.join().unwrap(), Some(9));
        });
    }
}
