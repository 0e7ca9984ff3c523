//! Delivery agent connections between two requests, for any worker's
//! next delivery over the same transport (Postfix's qmgr connects for
//! every delivery). A connection that waits longer than [`AGENT_KEEP`] is
//! closed, so that an agent process is never held by a quiet queue.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postern_ipc::deliver::AgentConn;

/// How long an idle connection waits for the next request: a little
/// over the scan gap, so that mail arriving steadily finds it.
pub(crate) const AGENT_KEEP: Duration = Duration::from_millis(50);

/// At most this many idle connections (more than any transport's
/// concurrency keeps busy at once).
const MAX_IDLE: usize = 64;

/// A connection to some transport's agent.
pub(crate) trait Agent {
    fn transport(&self) -> &str;
}

impl Agent for AgentConn {
    fn transport(&self) -> &str {
        AgentConn::transport(self)
    }
}

/// The idle connections, each with the time it became idle.
#[derive(Debug)]
pub(crate) struct Agents<C = AgentConn> {
    idle: Mutex<Vec<(Instant, C)>>,
}

impl<C> Default for Agents<C> {
    fn default() -> Self {
        Agents {
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl<C: Agent> Agents<C> {
    fn lock(&self) -> MutexGuard<'_, Vec<(Instant, C)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection to `transport`, if any.
    pub(crate) fn take(&self, transport: &str) -> Option<C> {
        let mut idle = self.lock();
        close_expired(&mut idle);
        let pos = idle.iter().rposition(|(_, c)| c.transport() == transport)?;
        Some(idle.remove(pos).1)
    }

    /// Keeps `conn` for the next request.
    pub(crate) fn put(&self, conn: C) {
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((Instant::now(), conn));
    }

    /// Closes what waited too long; returns when the next one will have.
    pub(crate) fn sweep(&self) -> Option<Instant> {
        let mut idle = self.lock();
        close_expired(&mut idle);
        idle.iter().map(|(since, _)| *since + AGENT_KEEP).min()
    }
}

/// Drops (closes) the connections idle for [`AGENT_KEEP`] or longer.
fn close_expired<C>(idle: &mut Vec<(Instant, C)>) {
    let now = Instant::now();
    idle.retain(|(since, _)| now.duration_since(*since) < AGENT_KEEP);
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Agent for &'static str {
        fn transport(&self) -> &str {
            self.split(':').next().unwrap_or_default()
        }
    }

    #[test]
    fn the_newest_idle_connection_to_the_transport_is_taken() {
        let agents = Agents::default();
        assert!(agents.take("local").is_none());
        agents.put("local:1");
        agents.put("smtp:1");
        agents.put("local:2");
        assert_eq!(agents.take("local"), Some("local:2"));
        assert_eq!(agents.take("local"), Some("local:1"));
        assert_eq!(agents.take("local"), None);
        assert_eq!(agents.take("smtp"), Some("smtp:1"));
        assert_eq!(agents.sweep(), None);
    }

    #[test]
    fn connections_idle_too_long_are_closed() {
        let agents = Agents::default();
        agents.put("local:1");
        let due = agents.sweep().expect("one waits");
        assert!(due <= Instant::now() + AGENT_KEEP);
        std::thread::sleep(AGENT_KEEP + Duration::from_millis(5));
        assert_eq!(agents.sweep(), None);
        agents.put("local:2");
        std::thread::sleep(AGENT_KEEP + Duration::from_millis(5));
        assert_eq!(agents.take("local"), None);
    }

    #[test]
    fn idle_connections_are_bounded() {
        let agents = Agents::default();
        for _ in 0..MAX_IDLE + 3 {
            agents.put("local:x");
        }
        assert_eq!(agents.lock().len(), MAX_IDLE);
    }
}
