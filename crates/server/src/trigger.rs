//! Trigger servers (Postfix `trigger_server.c`): one process per service
//! that wakes up on one-byte requests written to its socket (qmgr, pickup)
//! and on its own timers.
//!
//! Clients connect, write a few request bytes and close. master itself is
//! such a client: every `wakeup` interval it writes `W`. The process stays
//! up until master closes the status channel; `max_idle` and `max_use` do
//! not apply (a queue manager must not retire while it has work in hand).

use std::io::Read;
use std::time::{Duration, Instant};

use postern_util::warn;

use crate::context::Context;
use crate::endpoint::Wake;
use crate::proto::Status;

/// Longest request read from one trigger connection.
const MAX_TRIGGER: usize = 1024;
/// Most queued trigger connections taken in one go.
const MAX_BATCH: usize = 1024;

/// What a trigger daemon does.
pub trait TriggerService {
    /// Handles the request bytes of one client (often a single byte).
    fn trigger(&mut self, ctx: &Context, request: &[u8]);

    /// When the service next wants [`TriggerService::timer`] called.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Called when the deadline has passed.
    fn timer(&mut self, _ctx: &Context) {}

    /// Whether a request now would change nothing before the deadline
    /// (a queue manager with a scan already due then). The loop then does
    /// not take requests until the deadline: under load, the requests of
    /// many clients queue in the backlog and are taken in one wakeup
    /// (when it is full they are dropped, as any request to a busy
    /// service; the service does its work anyway).
    fn quiet(&self) -> bool {
        false
    }
}

/// Runs a trigger daemon. `init` runs before privileges are dropped.
pub fn run<I, S>(program: &'static str, init: I) -> !
where
    I: FnOnce(&Context) -> Result<S, String>,
    S: TriggerService,
{
    let (ctx, mut service, endpoint) = crate::endpoint::start(program, init);
    loop {
        let timeout = service
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let wake = match timeout {
            Some(t) if service.quiet() => endpoint.wait_quiet(t),
            _ => endpoint.wait(timeout),
        };
        match wake {
            Wake::Timeout => service.timer(&ctx),
            Wake::MasterGone => std::process::exit(0),
            Wake::Ready(ready) => {
                // Take every request that queued up while the service was
                // busy and hand them over together (the service collapses
                // duplicates), so a busy queue manager never makes its
                // clients wait on a full backlog.
                let mut all = Vec::new();
                for _ in 0..MAX_BATCH {
                    match ready.first().map_or(Ok(None), |&i| endpoint.accept(i)) {
                        Ok(Some(mut conn)) => {
                            let _ = conn.set_timeout(Some(Duration::from_secs(1)));
                            // A client that never closes gets what it sent in time.
                            let _ = (&mut conn).take(MAX_TRIGGER as u64).read_to_end(&mut all);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            warn!("accept trigger: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                            break;
                        }
                    }
                }
                if !all.is_empty() {
                    // Like Postfix's trigger_server: busy while serving,
                    // so master knows this process did work (a crash later
                    // is not a bad start, and it is restarted at once).
                    if !endpoint.report(Status::Taken) {
                        std::process::exit(0);
                    }
                    service.trigger(&ctx, &all);
                    if !endpoint.report(Status::Avail) {
                        std::process::exit(0);
                    }
                }
            }
        }
        if let Some(d) = service.deadline()
            && d <= Instant::now()
        {
            service.timer(&ctx);
        }
    }
}
