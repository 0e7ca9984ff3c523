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
//! for fairness, with at most `qmgr_message_active_limit` in hand. A
//! message moves to `active/` as soon as a scan finds it (Postfix's active
//! queue), and worker threads (`default_destination_concurrency_limit` of
//! them) take the messages one by one: each resolves each pending
//! recipient with trivial-rewrite,
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

mod agents;
mod dsn;
mod message;
mod slots;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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
    pub(crate) slots:
        std::sync::Arc<slots::Slots<(String, String), postern_ipc::deliver::AgentConn>>,
    /// Delivery agent connections between requests.
    pub(crate) agents: std::sync::Arc<agents::Agents>,
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
            agents: std::sync::Arc::default(),
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

/// How to treat the deferred queue in a scan (ordered: a wider scan
/// covers a narrower one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deferred {
    Skip,
    Due,
    All,
}

struct Qmgr {
    settings: Settings,
    next_deferred: Instant,
    /// More work was left by the last pass (active limit): the pass to
    /// continue with.
    more: Option<Deferred>,
    /// The worker threads and the messages they have in hand.
    work: Arc<Work>,
    /// Whether the workers run (started at the first pass, after the
    /// process has dropped its privileges).
    started: bool,
    /// When the last scan began.
    last_scan: Option<Instant>,
    /// A scan asked for while the last one was too recent.
    pending: Option<Deferred>,
}

/// The least time between two scans: under load every new message
/// triggers one, and a scan reads the whole directory, so triggers that
/// come closer together are served by one scan.
const MIN_SCAN_GAP: Duration = Duration::from_millis(20);

/// How soon files still held by a delivery agent are tried again.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// How often the main loop looks at the workers while they have work:
/// for files found busy, and for room under the active limit.
const ACTIVE_POLL: Duration = Duration::from_millis(100);

/// Most messages delivered at the same time.
const MAX_WORKERS: usize = 32;

/// The ready files of `queue` for which `fresh` holds, oldest id first,
/// with their times.
fn ready(
    spool: &std::path::Path,
    queue: Queue,
    fresh: &dyn Fn(&QueueId) -> bool,
) -> Vec<(QueueId, SystemTime)> {
    let mut out = Vec::new();
    let entries = match scan(spool, queue) {
        Ok(s) => s,
        Err(e) => {
            warn!("scan {queue}: {e}");
            return out;
        }
    };
    for entry in entries.skipping(|id| !fresh(id)) {
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

/// What the main loop shares with the workers: Postfix's in-memory active
/// queue, reduced to the ids in hand.
#[derive(Default)]
struct Work {
    /// Messages moved to `active/` for the workers and not yet taken.
    jobs: Mutex<VecDeque<QueueId>>,
    wake: Condvar,
    /// Every message handed over and not yet finished: a new scan skips
    /// them, and their number counts against the active limit.
    in_hand: Mutex<HashSet<QueueId>>,
    /// When to look again at files that a delivery agent still held.
    busy_retry: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Work {
    fn in_hand(&self) -> usize {
        lock(&self.in_hand).len()
    }

    /// Moves each file of `batch` to `active/` and queues it for the
    /// workers (Postfix `qmgr_active_feed`): `incoming/` then holds only
    /// what no scan has seen, so scans stay short however long the
    /// backlog. A file that a delivery agent still holds stays where it
    /// is, for a later scan.
    fn hand_over(&self, settings: &Settings, batch: Vec<(QueueId, Queue)>) {
        let mut moved = Vec::with_capacity(batch.len());
        for (id, from) in batch {
            // Only the main thread hands over, so an id not in hand now
            // is still not in hand when it is queued below.
            if lock(&self.in_hand).contains(&id) {
                continue;
            }
            // An agent of a queue manager that died may still be
            // delivering it: wait for it, or its recipients would be
            // delivered twice.
            if let Ok(true) = postern_queue::in_use(&id.path(&settings.spool, from)) {
                info!("{id}: in use by a delivery agent, retried later");
                lock(&self.busy_retry).get_or_insert_with(|| Instant::now() + BUSY_RETRY);
                continue;
            }
            match move_file(&settings.spool, &id, from, Queue::Active) {
                Ok(()) => moved.push(id),
                // Gone (another process) or the spool is in trouble.
                Err(e) => warn!("{id}: move from {from} to active: {e}"),
            }
        }
        if moved.is_empty() {
            return;
        }
        let mut in_hand = lock(&self.in_hand);
        let mut jobs = lock(&self.jobs);
        // One wakeup per job: notify_all woke every idle worker for each
        // message, and all but one went back to sleep.
        for id in moved {
            in_hand.insert(id.clone());
            jobs.push_back(id);
            self.wake.notify_one();
        }
    }

    /// The next job, when there is one.
    fn next(&self) -> QueueId {
        let mut jobs = lock(&self.jobs);
        loop {
            if let Some(job) = jobs.pop_front() {
                return job;
            }
            jobs = self.wake.wait(jobs).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// One worker: delivers messages one by one, with its own
    /// trivial-rewrite connection (and its answer cache) for as long as
    /// the process runs.
    fn worker(&self, settings: &Settings) {
        let mut rw = postern_ipc::rewrite::Client::new(&settings.spool, settings.ipc_timeout);
        loop {
            let id = self.next();
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                message::process(settings, &mut rw, &id)
            }));
            lock(&self.in_hand).remove(&id);
            if done.is_err() {
                // The message stays in active/ and the next qmgr recovers
                // it; a worker that died quietly would hold it forever.
                warn!("{id}: delivery worker failed: exiting");
                std::process::exit(1);
            }
        }
    }
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

    /// Starts the workers: `default_destination_concurrency_limit` of
    /// them, at most [`MAX_WORKERS`].
    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let n = self.settings.concurrency_limit.clamp(1, MAX_WORKERS);
        for i in 0..n {
            let work = Arc::clone(&self.work);
            let settings = self.settings.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("worker{i}"))
                .spawn(move || work.worker(&settings));
            if let Err(e) = spawned {
                warn!("cannot start delivery worker: {e}");
                if i == 0 {
                    std::process::exit(1);
                }
                break;
            }
        }
    }

    /// Runs a scan now, or as soon as [`MIN_SCAN_GAP`] allows.
    fn scan_soon(&mut self, deferred: Deferred) {
        let now = Instant::now();
        if self.last_scan.is_some_and(|t| now < t + MIN_SCAN_GAP) {
            self.pending = self.pending.max(Some(deferred));
        } else {
            let mode = self.pending.take().map_or(deferred, |p| p.max(deferred));
            self.run(mode);
        }
    }

    /// Hands the ready files of `incoming/` (and of `deferred/`, as
    /// `deferred` says) to the workers through `active/`, up to
    /// `qmgr_message_active_limit` in hand.
    fn run(&mut self, deferred: Deferred) {
        self.start();
        self.last_scan = Some(Instant::now());
        let spool = self.settings.spool.clone();
        let now = SystemTime::now();
        let work = Arc::clone(&self.work);
        let fresh = |id: &QueueId| !lock(&work.in_hand).contains(id);
        let incoming: Vec<(QueueId, Queue)> = ready(&spool, Queue::Incoming, &fresh)
            .into_iter()
            .map(|(id, _)| (id, Queue::Incoming))
            .collect();
        let deferred_files: Vec<(QueueId, Queue)> = match deferred {
            Deferred::Skip => Vec::new(),
            d => ready(&spool, Queue::Deferred, &fresh)
                .into_iter()
                .filter(|(_, t)| d == Deferred::All || *t <= now)
                .map(|(id, _)| (id, Queue::Deferred))
                .collect(),
        };
        if deferred != Deferred::Skip {
            self.next_deferred = Instant::now() + self.settings.queue_run_delay;
        }
        let room = self
            .settings
            .active_limit
            .saturating_sub(self.work.in_hand());
        let (batch, more) = interleave(incoming, deferred_files, room);
        self.work.hand_over(&self.settings, batch);
        // Come back for the rest when the workers have made room.
        self.more = more.then_some(deferred);
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
            self.scan_soon(mode);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let mut at = self.next_deferred;
        if let Some(t) = *lock(&self.work.busy_retry) {
            at = at.min(t);
        }
        if self.more.is_some() || self.work.in_hand() > 0 {
            at = at.min(Instant::now() + ACTIVE_POLL);
        }
        // Idle agent connections are closed in time.
        if let Some(t) = self.settings.agents.sweep() {
            at = at.min(t);
        }
        if self.pending.is_some() {
            let gap = self
                .last_scan
                .map_or_else(Instant::now, |t| t + MIN_SCAN_GAP);
            at = at.min(gap);
        }
        Some(at)
    }

    fn quiet(&self) -> bool {
        // A scan is due at the deadline anyway: new mail in incoming/
        // waits for it, and so can the triggers that announce it.
        self.pending.is_some()
    }

    fn timer(&mut self, _ctx: &Context) {
        let now = Instant::now();
        let busy = lock(&self.work.busy_retry).take_if(|t| *t <= now).is_some();
        let more = self
            .more
            .filter(|_| self.work.in_hand() < self.settings.active_limit);
        let pending = self
            .pending
            .filter(|_| self.last_scan.is_none_or(|t| now >= t + MIN_SCAN_GAP));
        if more.is_none() && pending.is_none() && !busy && now < self.next_deferred {
            // Only a look at the workers: nothing is due.
            return;
        }
        self.more = None;
        self.pending = None;
        // A flush (F, A) left unfinished by the active limit goes on as a
        // flush, and so does one that waited for the scan gap.
        let mode = match more.max(pending) {
            Some(Deferred::All) => Deferred::All,
            Some(d) => d.max(self.due()),
            None => self.due(),
        };
        self.run(mode);
    }
}

fn main() {
    trigger::run("qmgr", |ctx| {
        let settings = Settings::from_config(&ctx.config);
        let q = Qmgr {
            settings,
            // The first scan comes at once (deadline in the past).
            next_deferred: Instant::now(),
            more: None,
            work: Arc::default(),
            started: false,
            last_scan: None,
            pending: None,
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
