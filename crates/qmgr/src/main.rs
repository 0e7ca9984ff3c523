//! qmgr(8): the queue manager (Postfix `qmgr/qmgr.c`, `qmgr_active.c`,
//! `qmgr_message.c`, `qmgr_deliver.c`, `qmgr_defer.c`, `qmgr_bounce.c`).
//!
//! SYNOPSIS: `qmgr [generic daemon options]`, started by master for the
//! `public/qmgr` trigger service:
//!
//! ```toml
//! [qmgr]
//! type = "unix"
//! private = false
//! wakeup = "300s"
//! maxproc = 1
//! command = "qmgr"
//! ```
//!
//! DESCRIPTION: qmgr takes messages from `incoming/` (new mail, announced
//! by cleanup with `I`) and from `deferred/` (when a file's modification
//! time, its next attempt time, has passed), alternating between the two
//! for fairness and taking at most `qmgr_message_active_limit` per pass.
//! Worker threads take the messages one by one: each renames its message
//! to `active/`, resolves each pending recipient with trivial-rewrite,
//! groups recipients by (transport, next hop) and sends one request per
//! group (at most `default_destination_recipient_limit` recipients) to
//! the delivery agent `private/<transport>`.
//!
//! A file that a delivery agent still holds locked (an agent of a qmgr
//! that was killed, still delivering it) goes back to `incoming/` and is
//! taken again later, so its recipients are not delivered twice.
//!
//! The `error` transport (or the resolver's error flag) is handled here:
//! the recipient fails with the next-hop text (`5.1.1 text` gives DSN
//! 5.1.1). A resolver lookup failure defers the recipient.
//!
//! Results: failed recipients go to the bounce log `bounce/ID` (and are
//! marked done); delayed ones, and any the agent did not report, go to
//! the defer log `defer/ID` (one line per recipient and attempt:
//! `address TAB dsn TAB reason`); agents append recipients delivered with
//! `NOTIFY=SUCCESS` to the trace log `trace/ID`. When nothing is pending,
//! a message with a trace log gets a success report ("Successful Mail
//! Delivery Report", `Action: delivered`/`expanded`/`relayed`) and one
//! with a bounce log an RFC 3464 non-delivery report, both queued through
//! cleanup from `MAILER-DAEMON` with the null sender to the original
//! sender; then the logs and the queue file are removed (`ID: removed`).
//! Bounces of null-sender mail follow Postfix: a double bounce to
//! `2bounce_notice_recipient` from `double_bounce_sender` when
//! `notify_classes` has `bounce` or `2bounce`, else discarded; a failed
//! double bounce is discarded ("undeliverable postmaster notification
//! discarded"); with `bounce` in `notify_classes` the postmaster
//! (`bounce_notice_recipient`) also gets the headers of every bounce.
//! Recipients whose `NOTIFY` lacks `FAILURE` (or `DELAY`) are left out of
//! non-delivery reports (or delay warnings).
//!
//! A message with deferred recipients goes to `deferred/` with the next
//! attempt after `minimal_backoff_time`, doubled per attempt (counted in
//! the defer log) up to `maximal_backoff_time`; once older than
//! `maximal_queue_lifetime` (`bounce_queue_lifetime` for the null
//! sender) its deferred recipients bounce instead. When its warning time
//! has come (cleanup wrote `arrival + delay_warning_time` into the file)
//! the sender gets one delay warning ("Delayed Mail (still being
//! retried)", `Action: delayed`; a copy to `delay_notice_recipient` when
//! `notify_classes` has `delay`) and the time in the file is cleared, so
//! it is sent once, also across restarts.
//!
//! At start, files left in `active/` by a crashed qmgr go back to
//! `incoming/`. Unreadable or damaged files go to `corrupt/`. `hold/` is
//! never touched.
//!
//! TRIGGERS: `I` and `W` scan the incoming queue (and the deferred queue
//! when `queue_run_delay` has passed); `D` scans the deferred queue now;
//! `F` and `A` scan it ignoring the next attempt times.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `ipc_timeout`,
//! `myhostname`, `qmgr_message_active_limit`, `queue_run_delay`,
//! `default_destination_recipient_limit`,
//! `default_destination_concurrency_limit`, `minimal_backoff_time`,
//! `maximal_backoff_time`, `maximal_queue_lifetime`,
//! `bounce_queue_lifetime`, `bounce_size_limit`, `delay_warning_time`,
//! `notify_classes`, `bounce_notice_recipient`,
//! `2bounce_notice_recipient`, `delay_notice_recipient`,
//! `double_bounce_sender`.
//!
//! SEE ALSO: cleanup(8), trivial-rewrite(8), master(8).

mod dsn;
mod message;
mod slots;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use postern_queue::{Entry, Queue, QueueId, move_file, scan};
use postern_server::Context;
use postern_server::trigger::{self, TriggerService};
use postern_util::{info, warn};
use postern_wire::trigger::{Trigger, collapse};

/// Settings from main.toml.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) spool: PathBuf,
    pub(crate) ipc_timeout: Duration,
    pub(crate) hostname: String,
    pub(crate) active_limit: usize,
    pub(crate) queue_run_delay: Duration,
    pub(crate) concurrency_limit: usize,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) bounce_lifetime: Duration,
    pub(crate) bounce_size_limit: usize,
    pub(crate) delay_warning_time: Duration,
    pub(crate) notify_classes: Vec<String>,
    pub(crate) bounce_rcpt: String,
    pub(crate) double_bounce_rcpt: String,
    pub(crate) delay_rcpt: String,
    /// `double_bounce_sender` qualified with `myhostname`.
    pub(crate) double_bounce_sender: String,
    /// For the per-transport limits.
    pub(crate) config: postern_config::Config,
    /// Busy deliveries per destination, across messages.
    pub(crate) slots: std::sync::Arc<slots::Slots<(String, String)>>,
}

impl Settings {
    fn from_config(c: &postern_config::Config) -> Settings {
        let int = |n: &str| usize::try_from(c.int(n)).unwrap_or(1).max(1);
        Settings {
            spool: c.path("queue_directory"),
            ipc_timeout: c.time("ipc_timeout"),
            hostname: c.str("myhostname"),
            active_limit: int("qmgr_message_active_limit"),
            queue_run_delay: c.time("queue_run_delay"),
            concurrency_limit: usize::try_from(c.int("default_destination_concurrency_limit"))
                .unwrap_or(0),
            min_backoff: c.time("minimal_backoff_time"),
            max_backoff: c.time("maximal_backoff_time"),
            max_lifetime: c.time("maximal_queue_lifetime"),
            bounce_lifetime: c.time("bounce_queue_lifetime"),
            bounce_size_limit: int("bounce_size_limit"),
            delay_warning_time: c.time("delay_warning_time"),
            notify_classes: c
                .list("notify_classes")
                .into_iter()
                .map(|w| w.to_ascii_lowercase())
                .collect(),
            bounce_rcpt: c.str("bounce_notice_recipient"),
            double_bounce_rcpt: c.str("2bounce_notice_recipient"),
            delay_rcpt: c.str("delay_notice_recipient"),
            double_bounce_sender: {
                let local = c.str("double_bounce_sender");
                if local.contains('@') {
                    local
                } else {
                    format!("{local}@{}", c.str("myhostname"))
                }
            },
            config: c.clone(),
            slots: std::sync::Arc::default(),
        }
    }

    /// The recipient limit per request (0: none, capped at the protocol's
    /// maximum) and the concurrency limit per destination (0: none) of
    /// `transport`: `<transport>_destination_recipient_limit` and
    /// `<transport>_destination_concurrency_limit`, else the defaults.
    pub(crate) fn limits(&self, transport: &str) -> (usize, usize) {
        let get = |suffix| usize::try_from(self.config.service_int(transport, suffix)).unwrap_or(0);
        let max = usize::try_from(postern_ipc::deliver::MAX_RECIPIENTS).unwrap_or(usize::MAX);
        let rcpt = match get("_destination_recipient_limit") {
            0 => max,
            n => n.min(max),
        };
        (rcpt, get("_destination_concurrency_limit"))
    }

    /// Whether `notify_classes` has `class`.
    pub(crate) fn notify(&self, class: &str) -> bool {
        self.notify_classes.iter().any(|c| c == class)
    }
}

/// How to treat the deferred queue in a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deferred {
    Skip,
    Due,
    All,
}

struct Qmgr {
    settings: Settings,
    rewrite: postern_ipc::rewrite::Client,
    next_deferred: Instant,
    /// More work was left by the last pass (active limit): the pass to
    /// continue with.
    more: Option<Deferred>,
    /// When to look again at files a delivery agent still held.
    busy_retry: Option<Instant>,
}

/// How soon files still held by a delivery agent are tried again.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// The ready files of `queue`, oldest id first, with their times.
/// Most messages delivered at the same time.
const MAX_WORKERS: usize = 32;

fn ready(spool: &std::path::Path, queue: Queue) -> Vec<(QueueId, SystemTime)> {
    let mut out = Vec::new();
    let entries = match scan(spool, queue) {
        Ok(s) => s,
        Err(e) => {
            warn!("scan {queue}: {e}");
            return out;
        }
    };
    for entry in entries {
        match entry {
            Ok(Entry::Ready { id, modified }) => out.push((id, modified)),
            Ok(Entry::NotReady { .. }) => {}
            Ok(Entry::Rejected { name, reason }) => {
                warn!("{queue}/{}: skipped: {reason:?}", name.to_string_lossy());
            }
            Err(e) => warn!("scan {queue}: {e}"),
        }
    }
    out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    out
}

/// Picks files alternately from `incoming` and `deferred`, at most `limit`.
fn interleave<T>(incoming: Vec<T>, deferred: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let total = incoming.len() + deferred.len();
    let mut a = incoming.into_iter();
    let mut b = deferred.into_iter();
    let mut out = Vec::new();
    while out.len() < limit {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => {
                out.extend(x);
                if out.len() < limit {
                    out.extend(y);
                }
            }
        }
    }
    let more = total > out.len();
    (out, more)
}

impl Qmgr {
    fn recover(&self) {
        let spool = &self.settings.spool;
        let Ok(entries) = scan(spool, Queue::Active) else {
            return;
        };
        for entry in entries.flatten() {
            let id = match entry {
                Entry::Ready { id, .. } | Entry::NotReady { id } => id,
                Entry::Rejected { .. } => continue,
            };
            match move_file(spool, &id, Queue::Active, Queue::Incoming) {
                Ok(()) => info!("{id}: requeued from active to incoming"),
                Err(e) => warn!("{id}: requeue from active: {e}"),
            }
        }
    }

    fn run(&mut self, deferred: Deferred) {
        let spool = self.settings.spool.clone();
        let now = SystemTime::now();
        let incoming: Vec<(QueueId, Queue)> = ready(&spool, Queue::Incoming)
            .into_iter()
            .map(|(id, _)| (id, Queue::Incoming))
            .collect();
        let deferred_files: Vec<(QueueId, Queue)> = match deferred {
            Deferred::Skip => Vec::new(),
            d => ready(&spool, Queue::Deferred)
                .into_iter()
                .filter(|(_, t)| d == Deferred::All || *t <= now)
                .map(|(id, _)| (id, Queue::Deferred))
                .collect(),
        };
        if deferred != Deferred::Skip {
            self.next_deferred = Instant::now() + self.settings.queue_run_delay;
        }
        let (batch, more) = interleave(incoming, deferred_files, self.settings.active_limit);
        let (taken, busy) = self.process_all(batch);
        self.busy_retry = (busy > 0).then(|| Instant::now() + BUSY_RETRY);
        // Come back at once for the rest, unless nothing could be taken
        // (then the next trigger or timer retries, without spinning).
        self.more = (more && taken > 0).then_some(deferred);
    }

    /// Moves each message of `batch` to `active/` and delivers it, several
    /// at a time: up to `default_destination_concurrency_limit` worker
    /// threads, each taking the next message and with its own
    /// trivial-rewrite connection. A file moves to `active/` only when a
    /// worker takes it, so delivery starts at once and a crash leaves
    /// little to recover. Returns how many files were taken, and how many
    /// were left because a delivery agent still holds them.
    fn process_all(&mut self, batch: Vec<(QueueId, Queue)>) -> (usize, usize) {
        let taken = std::sync::atomic::AtomicUsize::new(0);
        let busy = std::sync::atomic::AtomicUsize::new(0);
        let take =
            |settings: &Settings, rw: &mut postern_ipc::rewrite::Client, id: &QueueId, from| {
                // An agent of a queue manager that died may still be
                // delivering it: wait for it, or its recipients would be
                // delivered twice.
                if let Ok(true) = postern_queue::in_use(&id.path(&settings.spool, from)) {
                    info!("{id}: in use by a delivery agent, retried later");
                    busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                if let Err(e) = move_file(&settings.spool, id, from, Queue::Active) {
                    // Gone (another process) or the spool is in trouble.
                    warn!("{id}: move from {from} to active: {e}");
                    return;
                }
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                message::process(settings, rw, id);
            };
        let workers = self
            .settings
            .concurrency_limit
            .clamp(1, MAX_WORKERS)
            .min(batch.len());
        if workers <= 1 {
            for (id, from) in &batch {
                take(&self.settings, &mut self.rewrite, id, *from);
            }
            return (taken.into_inner(), busy.into_inner());
        }
        let next = std::sync::Mutex::new(batch.into_iter());
        let settings = &self.settings;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let mut rw =
                        postern_ipc::rewrite::Client::new(&settings.spool, settings.ipc_timeout);
                    loop {
                        let job = match next.lock() {
                            Ok(mut it) => it.next(),
                            Err(_) => None,
                        };
                        let Some((id, from)) = job else { break };
                        take(settings, &mut rw, &id, from);
                    }
                });
            }
        });
        (taken.into_inner(), busy.into_inner())
    }

    fn due(&self) -> Deferred {
        if Instant::now() >= self.next_deferred {
            Deferred::Due
        } else {
            Deferred::Skip
        }
    }
}

impl TriggerService for Qmgr {
    fn trigger(&mut self, _ctx: &Context, request: &[u8]) {
        let got = collapse(request);
        for b in &got.ignored {
            warn!("ignoring unknown trigger request 0x{b:02x}");
        }
        let t = &got.triggers;
        let mode = if t.contains(&Trigger::ScanAll) || t.contains(&Trigger::FlushDead) {
            Deferred::All
        } else if t.contains(&Trigger::ScanDeferred) {
            Deferred::Due
        } else {
            self.due()
        };
        if !t.is_empty() {
            self.run(mode);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        if self.more.is_some() {
            Some(Instant::now())
        } else {
            Some(
                self.busy_retry
                    .map_or(self.next_deferred, |t| t.min(self.next_deferred)),
            )
        }
    }

    fn timer(&mut self, _ctx: &Context) {
        // A flush (F, A) left unfinished by the active limit goes on as a
        // flush.
        let mode = match self.more.take() {
            Some(Deferred::All) => Deferred::All,
            Some(_) => self.due(),
            // Only the retry of busy files is due: incoming only.
            None if self.busy_retry.is_some() => self.due(),
            None => Deferred::Due,
        };
        self.busy_retry = None;
        self.run(mode);
    }
}

fn main() {
    trigger::run("qmgr", |ctx| {
        let settings = Settings::from_config(&ctx.config);
        let rewrite = postern_ipc::rewrite::Client::new(&settings.spool, settings.ipc_timeout);
        let q = Qmgr {
            settings,
            rewrite,
            // The first scan comes at once (deadline in the past).
            next_deferred: Instant::now(),
            more: None,
            busy_retry: None,
        };
        q.recover();
        Ok(q)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_alternates_and_limits() {
        assert_eq!(
            interleave(vec![1, 2, 3], vec![10, 20], 10),
            (vec![1, 10, 2, 20, 3], false)
        );
        assert_eq!(
            interleave(vec![1, 2, 3], vec![10, 20], 3),
            (vec![1, 10, 2], true)
        );
        assert_eq!(interleave(Vec::<u8>::new(), vec![], 3), (vec![], false));
        assert_eq!(interleave(vec![1], vec![10], 1), (vec![1], true));
    }
}
