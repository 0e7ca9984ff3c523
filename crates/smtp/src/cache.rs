//! Connection reuse inside one smtp process (Postfix keeps idle sessions
//! in the separate `scache` daemon; Postern keeps at most one per
//! process, which serves the common case of one destination with a
//! backlog, since qmgr hands the next message for it to whichever agent
//! process is free).
//!
//! After a transaction that ended cleanly (the server replied to the end
//! of data, so it waits for the next MAIL FROM), the session is kept for
//! the request's next hop. The next request for the same next hop starts
//! with MAIL FROM on it; a session that turns out to be dead before the
//! first reply is dropped without consequence and the delivery goes the
//! normal way. A helper thread says QUIT to a session left idle for
//! `smtp_connection_cache_time_limit`; a session older than
//! `smtp_connection_reuse_time_limit` is not used again.

use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use postern_smtp_proto::{Capabilities, Command};

use crate::client::{Conn, Target};

/// One idle session.
#[derive(Debug)]
pub(crate) struct Cached {
    /// The next hop of the request it served.
    pub(crate) nexthop: String,
    /// The TLS level it was made under (a session is reused only for
    /// the same level, so TLS and plaintext sessions never mix).
    pub(crate) tls_key: String,
    /// The server.
    pub(crate) target: Target,
    /// The connection, ready for MAIL FROM.
    pub(crate) conn: Conn,
    /// What the server announced.
    pub(crate) caps: Capabilities,
    /// When the connection was made.
    pub(crate) born: Instant,
    /// When it went idle.
    pub(crate) idle_since: Instant,
}

/// The process's session cache; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    slot: Arc<Mutex<Option<Cached>>>,
    idle_limit: Duration,
    reuse_limit: Duration,
    quit_timeout: Duration,
    /// The closing thread, started with the first kept session (so after
    /// the daemon has dropped its privileges).
    reaper: Arc<Once>,
}

fn quit(mut c: Cached, timeout: Duration) {
    let mut out = Vec::new();
    Command::Quit.encode(&mut out);
    let _ = c.conn.send(&out, timeout);
}

impl Cache {
    /// A cache that keeps a session up to `idle_limit` idle and uses it
    /// until it is `reuse_limit` old.
    pub(crate) fn new(
        idle_limit: Duration,
        reuse_limit: Duration,
        quit_timeout: Duration,
    ) -> Cache {
        Cache {
            slot: Arc::new(Mutex::new(None)),
            idle_limit,
            reuse_limit,
            quit_timeout,
            reaper: Arc::new(Once::new()),
        }
    }

    /// Starts the thread that ends idle sessions.
    fn start_reaper(&self) {
        let reaper = self.clone();
        let tick = (self.idle_limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(tick);
                let expired = {
                    let mut slot = reaper.lock();
                    if slot
                        .as_ref()
                        .is_some_and(|c| c.idle_since.elapsed() >= reaper.idle_limit)
                    {
                        slot.take()
                    } else {
                        None
                    }
                };
                if let Some(c) = expired {
                    quit(c, reaper.quit_timeout);
                }
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, Option<Cached>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The idle session for `nexthop` under TLS level `tls_key`, if
    /// there is a usable one. Any
    /// other idle session is ended (this process now works elsewhere).
    pub(crate) fn take(&self, nexthop: &str, tls_key: &str) -> Option<Cached> {
        let c = self.lock().take()?;
        if c.nexthop == nexthop
            && c.tls_key == tls_key
            && c.idle_since.elapsed() < self.idle_limit
            && c.born.elapsed() < self.reuse_limit
        {
            return Some(c);
        }
        quit(c, self.quit_timeout);
        None
    }

    /// Keeps a session that is ready for MAIL FROM.
    pub(crate) fn put(&self, c: Cached) {
        self.reaper.call_once(|| self.start_reaper());
        let old = self.lock().replace(c);
        if let Some(old) = old {
            quit(old, self.quit_timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Addr;

    fn cached(addr: std::net::SocketAddr, tls_key: &str) -> Cached {
        let a = Addr::Inet(addr);
        Cached {
            nexthop: "example.test".into(),
            tls_key: tls_key.into(),
            target: Target {
                host: "mx.example.test".into(),
                addr: a.clone(),
            },
            conn: Conn::connect(&a, Duration::from_secs(1)).unwrap(),
            caps: Capabilities::default(),
            born: Instant::now(),
            idle_since: Instant::now(),
        }
    }

    #[test]
    fn sessions_are_reused_only_under_the_same_tls_level() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let cache = Cache::new(
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_millis(100),
        );
        cache.put(cached(addr, "may"));
        assert!(cache.take("example.test", "encrypt").is_none());
        // The mismatch ended the kept session.
        assert!(cache.take("example.test", "may").is_none());
        cache.put(cached(addr, "encrypt"));
        assert!(cache.take("other.test", "encrypt").is_none());
        cache.put(cached(addr, "encrypt"));
        assert!(cache.take("example.test", "encrypt").is_some());
    }
}
