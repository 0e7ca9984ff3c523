//! One message in the active queue: resolve, deliver, log, then remove,
//! bounce or defer it (Postfix `qmgr_message.c`, `qmgr_deliver.c`,
//! `qmgr_active.c`).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::time::{Duration, SystemTime};

use postern_ipc::deliver::{self, Action, Request};
use postern_ipc::rewrite::{self, flags as rflags};
use postern_queue::{
    Envelope, Notify, Queue, QueueFile, QueueId, ReadOptions, RecipientStatus, mark_done,
    move_file, remove, set_next_attempt, set_warn_time,
};
use postern_util::{info, warn};

use crate::Settings;
use crate::dsn::{self, LogEntry};
use crate::slots::Slots;

/// Where one recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Deliver with this (transport, nexthop).
    Deliver(String, String),
    /// Fail here (error transport): dsn, reason.
    Fail(String, String),
    /// Defer here (resolver failure): dsn, reason.
    Defer(String, String),
}

/// Splits the `error` transport's next hop into a DSN and text
/// (`5.1.1 User unknown` → `5.1.1`, `User unknown`).
pub(crate) fn error_text(nexthop: &str) -> (String, String) {
    let t = nexthop.trim();
    if let Some((code, rest)) = t.split_once(' ') {
        let parts: Vec<&str> = code.split('.').collect();
        if parts.len() == 3
            && matches!(parts[0], "4" | "5")
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return (code.to_string(), rest.trim().to_string());
        }
    }
    let text = if t.is_empty() {
        "mail delivery failed"
    } else {
        t
    };
    ("5.0.0".to_string(), text.to_string())
}

/// The route for a resolver answer.
pub(crate) fn route(r: &Result<rewrite::Resolved, postern_ipc::Error>) -> Route {
    match r {
        Err(e) => Route::Defer("4.3.0".into(), format!("address resolver failure: {e}")),
        Ok(r) if r.flags & rflags::FAIL != 0 => {
            Route::Defer("4.3.0".into(), "address resolver failure".into())
        }
        Ok(r) if r.flags & rflags::ERROR != 0 || r.transport == "error" => {
            let (d, t) = error_text(&r.nexthop);
            Route::Fail(d, t)
        }
        Ok(r) if r.transport.is_empty() => {
            Route::Defer("4.3.0".into(), "no transport for recipient".into())
        }
        Ok(r) => Route::Deliver(r.transport.clone(), r.nexthop.clone()),
    }
}

/// Groups recipient indexes by (transport, nexthop) in order of first
/// appearance of each group, each group split into chunks of the
/// transport's recipient limit (`limit(transport)`, 0: no limit).
pub(crate) fn groups(
    routes: &[(usize, Route)],
    limit: impl Fn(&str) -> usize,
) -> Vec<(String, String, Vec<usize>)> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut map: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in routes {
        if let Route::Deliver(t, n) = r {
            let key = (t.clone(), n.clone());
            if !map.contains_key(&key) {
                order.push(key.clone());
            }
            map.entry(key).or_default().push(*i);
        }
    }
    let mut out = Vec::new();
    for key in order {
        let Some(members) = map.remove(&key) else {
            continue;
        };
        let n = match limit(&key.0) {
            0 => members.len().max(1),
            n => n,
        };
        for chunk in members.chunks(n) {
            out.push((key.0.clone(), key.1.clone(), chunk.to_vec()));
        }
    }
    out
}

/// Whether a delayed recipient is named in a delay warning: unless RCPT
/// `NOTIFY=` was given without `DELAY` (Postfix treats no NOTIFY as
/// `FAILURE,DELAY`).
pub(crate) fn wants_delay_notice(notify: Option<Notify>) -> bool {
    notify.is_none_or(|n| n.contains(Notify::DELAY))
}

/// Whether a failed recipient is reported to the sender: unless RCPT
/// `NOTIFY=` was given without `FAILURE` (`NEVER`, `SUCCESS`, `DELAY`).
pub(crate) fn wants_failure_notice(notify: Option<Notify>) -> bool {
    notify.is_none_or(|n| n.contains(Notify::FAILURE))
}

/// Most threads one message uses for its delivery requests.
const MAX_THREADS: usize = 32;

/// Runs `f` over `jobs` on up to [`MAX_THREADS`] threads and returns the
/// results in the order of `jobs`. `key` gives each job's destination and
/// its concurrency limit (0: none); a job runs only while it holds one of
/// its destination's `slots`, which are shared with every other message
/// in flight, so the limit holds across messages.
///
/// `f` gets what the release of a slot handed to this waiter (qmgr: the
/// delivery agent connection the last delivery to the destination used)
/// and returns, besides its result, what the release of its own slot
/// hands on; what nobody takes goes to `keep`, also what was handed over
/// to a job that must wait for a slot again: nothing is held while
/// waiting.
pub(crate) fn run_concurrently<J, K, R, P>(
    jobs: &[J],
    key: impl Fn(&J) -> (K, usize) + Sync,
    slots: &Slots<K, P>,
    f: impl Fn(&J, Option<P>) -> (R, Option<P>) + Sync,
    keep: impl Fn(P) + Sync,
) -> Vec<R>
where
    J: Sync,
    K: Eq + std::hash::Hash + Clone + Send + Sync,
    R: Send,
    P: Send,
{
    use std::sync::Mutex;
    let keys: Vec<(K, usize)> = jobs.iter().map(&key).collect();
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let queue: Mutex<Vec<usize>> = Mutex::new((0..jobs.len()).collect());
    let worker = || {
        let mut carried: Option<P> = None;
        loop {
            // The first job whose destination has a free slot.
            let seen = slots.seen();
            let taken = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.is_empty() {
                    break;
                }
                let found = q.iter().enumerate().find_map(|(pos, &i)| {
                    let (k, limit) = &keys[i];
                    slots.try_take(k, *limit).map(|slot| (pos, i, slot))
                });
                found
                    .map(|(pos, i, slot)| {
                        q.remove(pos);
                        (i, slot)
                    })
                    .ok_or_else(|| {
                        // The destinations still waited for.
                        let mut waiting: Vec<K> = Vec::new();
                        for &i in q.iter() {
                            if !waiting.contains(&keys[i].0) {
                                waiting.push(keys[i].0.clone());
                            }
                        }
                        waiting
                    })
            };
            let (i, slot) = match taken {
                Ok(t) => t,
                Err(waiting) => {
                    // Handed over by a release whose slot another delivery
                    // took first: it goes where any delivery finds it.
                    if let Some(p) = carried.take() {
                        keep(p);
                    }
                    // The timeout only guards against a wakeup spent on
                    // another of this message's destinations.
                    carried = slots.wait(&waiting, seen, Duration::from_millis(100));
                    continue;
                }
            };
            let (r, left) = f(&jobs[i], carried.take());
            carried = slot.release(left);
            if let Ok(mut res) = results.lock()
                && let Some(place) = res.get_mut(i)
            {
                *place = Some(r);
            }
        }
        if let Some(p) = carried {
            keep(p);
        }
    };
    let threads = jobs.len().min(MAX_THREADS);
    if threads <= 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(worker);
            }
        });
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    // A job whose worker panicked has no result: run it here (it panics
    // again only if it always does).
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| f(&jobs[i], None).0))
        .collect()
}

fn delay(arrival: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(arrival)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

fn attr_str(qf: &Envelope, name: &str) -> String {
    qf.attr(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Processes the message `id`, which is in `active/`.
pub(crate) fn process(s: &Settings, rw: &mut rewrite::Client, id: &QueueId) {
    let spool = &s.spool;
    let path = id.path(spool, Queue::Active);
    // The envelope only (Postfix qmgr reads no content): the content is
    // read when a notification needs it.
    let qf = match QueueFile::open_envelope(&path, &ReadOptions::default()) {
        Ok(qf) => qf,
        Err(e) => return unreadable(s, id, &e, "open"),
    };
    let sender = qf.sender.clone();
    info!(
        "{id}: from=<{sender}>, size={}, nrcpt={} (queue active)",
        qf.size.content_length,
        qf.recipients.len()
    );
    let arrival = qf.arrival;
    let pending: Vec<_> = qf
        .recipients
        .iter()
        .filter(|r| r.status == RecipientStatus::Pending)
        .collect();
    let resolved: Vec<_> = pending
        .iter()
        .map(|r| rw.resolve(&sender, &r.address))
        .collect();
    let routes: Vec<(usize, Route)> = resolved.iter().map(route).enumerate().collect();
    // The address the agent gets: the resolver's form of the recipient.
    let deliver_to = |i: usize| match resolved.get(i) {
        Some(Ok(r)) if !r.recipient.is_empty() => r.recipient.clone(),
        _ => pending[i].address.clone(),
    };
    let mut failed: Vec<(usize, LogEntry)> = Vec::new();
    let mut delayed: Vec<(usize, LogEntry)> = Vec::new();
    let entry = |i: usize, dsn: &str, reason: &str| LogEntry::new(&pending[i].address, dsn, reason);
    for (i, r) in &routes {
        match r {
            Route::Fail(d, t) => {
                info!(
                    "{id}: to=<{}>, relay=none, delay={:.1}, dsn={d}, status=bounced ({t})",
                    pending[*i].address,
                    delay(arrival)
                );
                failed.push((*i, entry(*i, d, t)));
            }
            Route::Defer(d, t) => {
                info!(
                    "{id}: to=<{}>, relay=none, delay={:.1}, dsn={d}, status=deferred ({t})",
                    pending[*i].address,
                    delay(arrival)
                );
                delayed.push((*i, entry(*i, d, t)));
            }
            Route::Deliver(..) => {}
        }
    }
    let since_epoch = arrival
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let base = Request {
        queue_name: Queue::Active.dir_name().to_string(),
        queue_id: id.to_string(),
        arrival: since_epoch.as_secs(),
        arrival_usec: since_epoch.subsec_micros(),
        sender: sender.clone(),
        envid: attr_str(&qf, "envid"),
        ret: attr_str(&qf, "ret"),
        flags: if sender.is_empty() {
            deliver::flags::NOTIFICATION
        } else {
            0
        } | if pending
            .iter()
            .any(|r| r.notify.is_some_and(|n| n.contains(Notify::SUCCESS)))
        {
            deliver::flags::RECORD_SUCCESS
        } else {
            0
        },
        attrs: [
            "client_name",
            "client_address",
            "helo_name",
            "protocol",
            "encoding",
            "smtputf8",
            "sasl_username",
        ]
        .iter()
        .filter_map(|n| {
            qf.attr(n)
                .map(|v| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
        })
        .collect(),
        ..Request::default()
    };
    let jobs: Vec<(String, Vec<usize>, Request)> = groups(&routes, |t| s.limits(t).0)
        .into_iter()
        .map(|(transport, nexthop, members)| {
            let mut req = base.clone();
            req.nexthop = nexthop;
            req.recipients = members
                .iter()
                .map(|&i| {
                    let r = pending[i];
                    deliver::Recipient {
                        address: deliver_to(i),
                        orcpt: r.orcpt.clone().unwrap_or_default(),
                        dsn_orcpt: r.dsn_orcpt.clone().unwrap_or_default(),
                        notify: r.notify.map_or(0, |n| n.bits()),
                        offset: r.offset,
                    }
                })
                .collect();
            (transport, members, req)
        })
        .collect();
    let results = run_concurrently(
        &jobs,
        |(t, _, req)| {
            let (rcpt_limit, concurrency) = s.limits(t);
            // With one recipient per request the destination is the
            // recipient (Postfix: per-recipient concurrency).
            let dest = match (rcpt_limit, req.recipients.first()) {
                (1, Some(r)) => r.address.clone(),
                _ => req.nexthop.clone(),
            };
            ((t.clone(), dest), concurrency)
        },
        &s.slots,
        // The agent connection goes with the destination's slot to the
        // next delivery there, or waits among the idle ones for any
        // delivery over its transport (a worker that kept it for itself
        // would seldom get a slot: twenty workers wait for two local
        // ones).
        |(transport, _, req), handed| {
            let mut kept = handed.or_else(|| s.agents.take(transport));
            let result = deliver::deliver(&mut kept, spool, transport, s.ipc_timeout, req);
            let result = match result {
                Ok(st) => (st, None),
                Err((e, st)) => (st, Some(e.to_string())),
            };
            (result, kept)
        },
        |conn| s.agents.put(conn),
    );
    for ((transport, members, _), (statuses, err)) in jobs.iter().zip(results) {
        for &i in members {
            let r = pending[i];
            match statuses.iter().find(|st| st.offset == r.offset) {
                Some(st) => match st.action {
                    Action::Failed => failed.push((
                        i,
                        LogEntry {
                            diagnostic: st.diagnostic.clone(),
                            mta: st.mta.clone(),
                            ..entry(i, &st.dsn, &st.reason)
                        },
                    )),
                    Action::Delayed => delayed.push((i, entry(i, &st.dsn, &st.reason))),
                    Action::Delivered | Action::Expanded | Action::Relayed => {}
                },
                None => {
                    let why = match &err {
                        Some(e) => format!("delivery temporarily suspended: {transport}: {e}"),
                        None => format!("delivery agent {transport} did not report"),
                    };
                    info!(
                        "{id}: to=<{}>, relay={transport}, delay={:.1}, dsn=4.3.0, status=deferred ({why})",
                        r.address,
                        delay(arrival)
                    );
                    delayed.push((i, entry(i, "4.3.0", &why)));
                }
            }
        }
    }
    // Expired: every deferred recipient bounces.
    let lifetime = if sender.is_empty() {
        s.bounce_lifetime
    } else {
        s.max_lifetime
    };
    let expired = !delayed.is_empty()
        && SystemTime::now()
            .duration_since(arrival)
            .unwrap_or(Duration::ZERO)
            >= lifetime;
    if expired {
        for (i, e) in std::mem::take(&mut delayed) {
            info!(
                "{id}: to=<{}>, relay=none, delay={:.1}, dsn={}, status=expired, returned to sender",
                e.address,
                delay(arrival),
                e.dsn
            );
            let reason = format!("message expired after queue lifetime: {}", e.reason);
            failed.push((i, LogEntry { reason, ..e }));
        }
    }
    // Failed recipients: bounce log (unless DSN NOTIFY excludes
    // FAILURE), then crossed off.
    if !failed.is_empty() {
        let entries: Vec<LogEntry> = failed
            .iter()
            .filter(|(i, _)| wants_failure_notice(pending[*i].notify))
            .map(|(_, e)| e.clone())
            .collect();
        if let Err(e) = dsn::append(&id.path(spool, Queue::Bounce), &entries) {
            warn!("{id}: bounce log: {e}");
            defer_file(s, id, s.min_backoff);
            return;
        }
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => {
                for (i, _) in &failed {
                    if let Err(e) = mark_done(&f, pending[*i].offset) {
                        warn!("{id}: mark done: {e}");
                    }
                }
            }
            Err(e) => warn!("{id}: open for update: {e}"),
        }
    }
    if !delayed.is_empty() {
        let entries: Vec<LogEntry> = delayed.iter().map(|(_, e)| e.clone()).collect();
        let defer_path = id.path(spool, Queue::Defer);
        if let Err(e) = dsn::append(&defer_path, &entries) {
            warn!("{id}: defer log: {e}");
        }
        let log = dsn::read(&defer_path).unwrap_or_default();
        let addrs: Vec<&str> = entries.iter().map(|e| e.address.as_str()).collect();
        let wait = dsn::backoff(dsn::attempts(&log, &addrs), s.min_backoff, s.max_backoff);
        let warned: Vec<LogEntry> = delayed
            .iter()
            .filter(|(i, _)| wants_delay_notice(pending[*i].notify))
            .map(|(_, e)| e.clone())
            .collect();
        warn_if_due(s, id, &qf, &path, &warned);
        defer_file(s, id, wait);
        return;
    }
    finish(s, id, &qf);
}

/// An active file that could not be read (`what` failed): a damaged one
/// goes to `corrupt/`; when the system failed, it is tried again later.
fn unreadable(s: &Settings, id: &QueueId, e: &postern_queue::Error, what: &str) {
    if e.is_corrupt() {
        warn!("{id}: {e}: moved to corrupt");
        if let Err(e) = move_file(&s.spool, id, Queue::Active, Queue::Corrupt) {
            warn!("{id}: move to corrupt: {e}");
        }
    } else {
        warn!("{id}: {what}: {e}");
        defer_file(s, id, s.min_backoff);
    }
}

/// The message content of the queue file at `path` (checked whole), for
/// a notification.
fn read_content(path: &std::path::Path) -> Result<Vec<u8>, postern_queue::Error> {
    QueueFile::open(path).map(|qf| qf.content_to_vec())
}

/// Moves `id` from active to deferred with its next attempt after `wait`.
fn defer_file(s: &Settings, id: &QueueId, wait: Duration) {
    let path = id.path(&s.spool, Queue::Active);
    match OpenOptions::new().read(true).open(&path) {
        Ok(f) => {
            if let Err(e) = set_next_attempt(&f, SystemTime::now() + wait) {
                warn!("{id}: set next attempt: {e}");
            }
        }
        Err(e) => warn!("{id}: open: {e}"),
    }
    if let Err(e) = move_file(&s.spool, id, Queue::Active, Queue::Deferred) {
        warn!("{id}: move to deferred: {e}");
    }
}

/// Sends the delay warning when the message's warning time (its `W`
/// record, written by cleanup when `delay_warning_time` is set) has come,
/// then clears that time in the file so the warning goes out once, also
/// across restarts (Postfix `qmgr_active.c`, `bounce_warn_service.c`).
/// `delayed` holds the recipients that want it (DSN `NOTIFY`).
fn warn_if_due(
    s: &Settings,
    id: &QueueId,
    qf: &Envelope,
    path: &std::path::Path,
    delayed: &[LogEntry],
) {
    let Some(w) = qf.warn else { return };
    let Some(at) = w.at else { return };
    if at > SystemTime::now() {
        return;
    }
    // Never a warning about a notification (null sender).
    if !qf.sender.is_empty() && !delayed.is_empty() {
        let Ok(content) = read_content(path) else {
            // The warning time stays: the next attempt tries again.
            warn!("{id}: sender delay notification failed: cannot read the message");
            return;
        };
        let mut r = base_report(s, id, qf, &content, dsn::Kind::Delay, &qf.sender, delayed);
        match submit(s, "", &qf.sender, &dsn::report(&r)) {
            Ok(new_id) => info!("{id}: sender delay notification: {new_id}"),
            Err(e) => {
                // The warning time stays: the next attempt tries again.
                warn!("{id}: sender delay notification failed: {e}");
                return;
            }
        }
        if s.notify("delay") {
            r.kind = dsn::Kind::PostmasterCopy;
            r.delayed = true;
            r.to = &s.delay_rcpt;
            match submit(s, &s.double_bounce_sender, &s.delay_rcpt, &dsn::report(&r)) {
                Ok(new_id) => info!("{id}: postmaster delay notification: {new_id}"),
                Err(e) => warn!("{id}: postmaster delay notification failed: {e}"),
            }
        }
    }
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => {
            if let Err(e) = set_warn_time(&f, w.offset, None) {
                warn!("{id}: clear delay warning time: {e}");
            }
        }
        Err(e) => warn!("{id}: clear delay warning time: {e}"),
    }
}

/// A report about `qf` with everything but the kind-specific fields set.
fn base_report<'a>(
    s: &'a Settings,
    id: &'a QueueId,
    qf: &'a Envelope,
    content: &'a [u8],
    kind: dsn::Kind,
    to: &'a str,
    entries: &'a [LogEntry],
) -> dsn::Report<'a> {
    dsn::Report {
        kind,
        delayed: false,
        to,
        hostname: &s.hostname,
        queue_id: id.as_str(),
        sender: &qf.sender,
        arrival: qf.arrival,
        now: SystemTime::now(),
        ret: qf
            .attr("ret")
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or(""),
        envid: qf
            .attr("envid")
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or(""),
        failed: entries,
        content,
        size_limit: s.bounce_size_limit,
        warn_after: s.delay_warning_time,
        lifetime: if qf.sender.is_empty() {
            s.bounce_lifetime
        } else {
            s.max_lifetime
        },
    }
}

/// Nothing is pending: send the success and non-delivery notifications
/// the logs call for, then remove everything.
///
/// Postfix's rules (`bounce_notify_service.c`): a message from the null
/// sender that bounces is a double bounce, sent to
/// `2bounce_notice_recipient` from `double_bounce_sender` when
/// `notify_classes` has `bounce` or `2bounce`, else discarded; mail from
/// `double_bounce_sender` that bounces is discarded (never a triple
/// bounce); any other bounce goes to the sender, with a copy of the
/// headers to `bounce_notice_recipient` when `notify_classes` has
/// `bounce`.
fn finish(s: &Settings, id: &QueueId, qf: &Envelope) {
    let spool = &s.spool;
    // Most messages have neither log, and then nothing to remove either.
    let (failed, traced) = match (
        dsn::read_existing(&id.path(spool, Queue::Bounce)),
        dsn::read_existing(&id.path(spool, Queue::Trace)),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            warn!("{id}: delivery log: {e}");
            defer_file(s, id, s.min_backoff);
            return;
        }
    };
    let (bounce_log, trace_log) = (failed.is_some(), traced.is_some());
    let (failed, traced) = (failed.unwrap_or_default(), traced.unwrap_or_default());
    let sender = &qf.sender;
    let content = if failed.is_empty() && traced.is_empty() {
        Vec::new()
    } else {
        match read_content(&id.path(spool, Queue::Active)) {
            Ok(content) => content,
            Err(e) => return unreadable(s, id, &e, "read for notification"),
        }
    };
    // Each notification is sent, then its log removed, so a failure later
    // on does not send it twice.
    if !traced.is_empty() && !sender.is_empty() {
        let r = base_report(s, id, qf, &content, dsn::Kind::Success, sender, &traced);
        match submit(s, "", sender, &dsn::report(&r)) {
            Ok(new_id) => info!("{id}: sender delivery status notification: {new_id}"),
            Err(e) => {
                warn!("{id}: sender delivery status notification failed: {e}");
                defer_file(s, id, s.min_backoff);
                return;
            }
        }
    }
    if trace_log {
        remove_log(s, id, Queue::Trace);
    }
    if !failed.is_empty() {
        let sent = if sender.eq_ignore_ascii_case(&s.double_bounce_sender) {
            warn!("{id}: undeliverable postmaster notification discarded");
            Ok(())
        } else if sender.is_empty() {
            if s.notify("bounce") || s.notify("2bounce") {
                let mut r = base_report(
                    s,
                    id,
                    qf,
                    &content,
                    dsn::Kind::DoubleBounce,
                    &s.double_bounce_rcpt,
                    &failed,
                );
                r.ret = "FULL";
                submit(
                    s,
                    &s.double_bounce_sender,
                    &s.double_bounce_rcpt,
                    &dsn::report(&r),
                )
                .map(|new_id| info!("{id}: postmaster non-delivery notification: {new_id}"))
            } else {
                info!(
                    "{id}: undeliverable bounce discarded (notify_classes has no bounce or 2bounce)"
                );
                Ok(())
            }
        } else {
            let mut r = base_report(s, id, qf, &content, dsn::Kind::Failure, sender, &failed);
            submit(s, "", sender, &dsn::report(&r)).map(|new_id| {
                info!("{id}: sender non-delivery notification: {new_id}");
                if s.notify("bounce") {
                    r.kind = dsn::Kind::PostmasterCopy;
                    r.to = &s.bounce_rcpt;
                    let copy = dsn::report(&r);
                    match submit(s, &s.double_bounce_sender, &s.bounce_rcpt, &copy) {
                        Ok(new_id) => info!("{id}: postmaster non-delivery notification: {new_id}"),
                        // The sender has the report; the copy is not
                        // worth sending it twice.
                        Err(e) => warn!("{id}: postmaster non-delivery notification failed: {e}"),
                    }
                }
            })
        };
        if let Err(e) = sent {
            // Keep the message and its bounce log; try again later.
            warn!("{id}: non-delivery notification failed: {e}");
            defer_file(s, id, s.min_backoff);
            return;
        }
    }
    if bounce_log {
        remove_log(s, id, Queue::Bounce);
    }
    remove_log(s, id, Queue::Defer);
    match postern_queue::retire(spool, id, Queue::Active) {
        Ok(()) => info!("{id}: removed"),
        Err(e) => warn!("{id}: remove: {e}"),
    }
}

fn remove_log(s: &Settings, id: &QueueId, q: Queue) {
    match remove(&s.spool, id, q) {
        Ok(()) => {}
        Err(postern_queue::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!("{id}: remove {q} log: {e}"),
    }
}

/// Queues a report through cleanup; returns the new queue id.
fn submit(s: &Settings, from: &str, to: &str, content: &[u8]) -> Result<String, String> {
    use postern_ipc::cleanup::{Client, Recipient};
    let run = || -> Result<postern_ipc::cleanup::Outcome, postern_ipc::Error> {
        let mut c = Client::connect(&s.spool, s.ipc_timeout, 0)?;
        c.sender(from)?;
        c.recipient(&Recipient {
            address: to,
            ..Recipient::default()
        })?;
        c.begin_content()?;
        c.write_content(content)?;
        c.end_content()?;
        c.finish()
    };
    let outcome = run().map_err(|e| e.to_string())?;
    if outcome.accepted() {
        Ok(outcome.queue_id)
    } else {
        Err(format!(
            "cleanup status {}: {}",
            outcome.status, outcome.reason
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(t: &str, n: &str) -> Route {
        Route::Deliver(t.into(), n.into())
    }

    #[test]
    fn groups_by_transport_and_nexthop_and_splits() {
        let routes = vec![
            (0, d("smtp", "a.test")),
            (1, d("local", "host")),
            (2, d("smtp", "a.test")),
            (3, Route::Fail("5.0.0".into(), "x".into())),
            (4, d("smtp", "b.test")),
            (5, d("smtp", "a.test")),
        ];
        let g = groups(&routes, |t| if t == "local" { 1 } else { 2 });
        assert_eq!(
            g,
            vec![
                ("smtp".into(), "a.test".into(), vec![0, 2]),
                ("smtp".into(), "a.test".into(), vec![5]),
                ("local".into(), "host".into(), vec![1]),
                ("smtp".into(), "b.test".into(), vec![4]),
            ]
        );
        // 0: no limit.
        assert_eq!(groups(&routes, |_| 0).len(), 3);
    }

    #[test]
    fn concurrency_is_bounded_per_destination_across_messages() {
        use std::collections::HashMap;
        use std::sync::Mutex;
        let jobs: Vec<(char, usize)> = (0..12)
            .map(|i| (if i % 3 == 0 { 'b' } else { 'a' }, i))
            .collect();
        let now: Mutex<HashMap<char, usize>> = Mutex::new(HashMap::new());
        let peak: Mutex<HashMap<char, usize>> = Mutex::new(HashMap::new());
        let slots: Slots<char> = Slots::default();
        let run = || {
            run_concurrently(
                &jobs,
                |j| (j.0, 2),
                &slots,
                |j, _| {
                    {
                        let mut n = now.lock().unwrap();
                        let c = n.entry(j.0).or_default();
                        *c += 1;
                        let mut p = peak.lock().unwrap();
                        let e = p.entry(j.0).or_default();
                        *e = (*e).max(*c);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    *now.lock().unwrap().get_mut(&j.0).unwrap() -= 1;
                    (j.1 * 10, None)
                },
                |()| {},
            )
        };
        // Two messages at once share the destinations' slots.
        let (x, y) = std::thread::scope(|s| {
            let x = s.spawn(run);
            let y = s.spawn(run);
            (x.join().unwrap(), y.join().unwrap())
        });
        let want: Vec<usize> = (0..12).map(|i| i * 10).collect();
        assert_eq!(x, want);
        assert_eq!(y, want);
        let peak = peak.into_inner().unwrap();
        assert_eq!(peak[&'a'], 2);
        assert_eq!(peak[&'b'], 2);
        let one = run_concurrently(&jobs, |j| (j.0, 0), &slots, |j, _| (j.1, None), |()| {});
        assert_eq!(one.len(), 12);
    }

    #[test]
    fn notify_decides_failure_notices() {
        assert!(wants_failure_notice(None));
        assert!(wants_failure_notice(Notify::FAILURE.union(Notify::DELAY)));
        assert!(!wants_failure_notice(Some(Notify::NEVER)));
        assert!(!wants_failure_notice(Some(Notify::SUCCESS)));
    }

    #[test]
    fn error_transport_and_resolver_flags() {
        assert_eq!(
            error_text("5.1.1 User unknown"),
            ("5.1.1".into(), "User unknown".into())
        );
        assert_eq!(
            error_text("no such user"),
            ("5.0.0".into(), "no such user".into())
        );
        assert_eq!(
            error_text(""),
            ("5.0.0".into(), "mail delivery failed".into())
        );
        let r = |flags, transport: &str| {
            Ok(rewrite::Resolved {
                flags,
                transport: transport.into(),
                nexthop: "5.1.2 bad domain".into(),
                recipient: "x@y".into(),
            })
        };
        assert_eq!(
            route(&r(rflags::ERROR, "smtp")),
            Route::Fail("5.1.2".into(), "bad domain".into())
        );
        assert_eq!(
            route(&r(0, "error")),
            Route::Fail("5.1.2".into(), "bad domain".into())
        );
        assert!(matches!(route(&r(rflags::FAIL, "smtp")), Route::Defer(..)));
        assert!(matches!(
            route(&Err(postern_ipc::Error::Closed)),
            Route::Defer(..)
        ));
        assert_eq!(route(&r(0, "local")), d("local", "5.1.2 bad domain"));
    }
}
