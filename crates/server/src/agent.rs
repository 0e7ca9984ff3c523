//! The agent side of a delivery request (Postfix `deliver_request.c`):
//! what every delivery agent (local, virtual, ...) does around the
//! delivery itself — accept qmgr's request, open the queue file it names,
//! and for each recipient mark it done when final, log the Postfix status
//! line and report to qmgr ([`serve`]).
//!
//! A recipient that asked for `NOTIFY=SUCCESS` and was delivered (or
//! expanded, or relayed) is first appended to the message's trace log
//! `trace/ID` (Postfix `trace_append`), before it is marked done: qmgr
//! sends the success notification from that log when the message is
//! finished, so a crash between the two cannot lose it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use nix::fcntl::Flock;

use postern_ipc::deliver::{Action, RcptStatus, Recipient, Request, Server, flags, log_status};
use postern_queue::log::{self, LogEntry};
use postern_queue::{Notify, Queue, QueueFile, QueueId, ReadOptions};
use postern_util::warn;

use crate::conn::Conn;
use crate::context::Context;

/// Greets qmgr on a new connection and reads its request; logs and
/// returns `None` when that fails. Also returns when the request came in
/// (for the `delays=` in log lines).
pub fn accept(conn: Conn, ctx: &Context) -> Option<(Server, Request, SystemTime)> {
    let stream = match conn {
        Conn::Unix(s) => s,
        Conn::Tcp(_) => {
            warn!("unexpected TCP connection from {}", conn.peer());
            return None;
        }
    };
    let conn = match postern_ipc::Conn::new(stream, ctx.config.time("ipc_timeout")) {
        Ok(c) => c,
        Err(e) => {
            warn!("delivery connection: {e}");
            return None;
        }
    };
    match Server::accept(conn) {
        Ok((server, req)) => Some((server, req, SystemTime::now())),
        Err(e) => {
            warn!("delivery request: {e}");
            None
        }
    }
}

/// Opens the queue file a request names, read-write (to mark recipients
/// done), with a shared lock held as long as the returned handle (so a
/// restarted qmgr leaves the file alone until this agent is done, see
/// [`postern_queue::in_use`]), and parsed. Errors are logged; the text is
/// for the recipients' deferral reason.
pub fn open_queue_file(spool: &Path, req: &Request) -> Result<(Flock<File>, QueueFile), String> {
    let (Some(queue), Ok(id)) = (
        Queue::from_dir_name(&req.queue_name),
        QueueId::parse(&req.queue_id),
    ) else {
        warn!(
            "bad queue file name in request: {}/{}",
            req.queue_name, req.queue_id
        );
        return Err("bad queue file name in delivery request".into());
    };
    let path = id.path(spool, queue);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| {
            warn!("{}: open queue file {}: {e}", req.queue_id, path.display());
            format!("cannot open queue file: {e}")
        })?;
    let file = postern_queue::lock_shared(file).map_err(|e| {
        warn!("{}: lock queue file {}: {e}", req.queue_id, path.display());
        format!("cannot lock queue file: {e}")
    })?;
    // Read through the locked handle: one open per request.
    let qf = QueueFile::from_file(&file, &path, &ReadOptions::default()).map_err(|e| {
        warn!("{}: read queue file {}: {e}", req.queue_id, path.display());
        format!("cannot read queue file: {e}")
    })?;
    Ok((file, qf))
}

/// Serves one delivery request: `deliver` is called per recipient with
/// the request and the message content and returns its result. When the
/// queue file cannot be opened, or a final result cannot be recorded in
/// it, the recipient is deferred instead (`4.3.0`), so it is never lost
/// and never delivered twice. `relay` names the agent in the log line.
/// Each recipient is marked done and reported before the next one is
/// delivered, so a crash repeats at most one delivery.
pub fn serve(
    conn: Conn,
    ctx: &Context,
    relay: &str,
    mut deliver: impl FnMut(&Request, &[u8], &Recipient) -> RcptStatus,
) {
    serve_each(conn, ctx, |server, spool, req, start| {
        serve_one(server, spool, req, start, relay, &mut deliver)
    });
}

/// Serves the requests qmgr sends over one connection, one by one, with
/// `one` (which gives the server back when qmgr is still there).
fn serve_each(
    conn: Conn,
    ctx: &Context,
    mut one: impl FnMut(Server, &Path, &Request, SystemTime) -> Option<Server>,
) {
    let Some(mut request) = accept(conn, ctx) else {
        return;
    };
    let spool = ctx.config.path("queue_directory");
    loop {
        let (server, req, start) = request;
        let Some(server) = one(server, &spool, &req, start) else {
            return;
        };
        match next(server, &req) {
            Some(r) => request = r,
            None => return,
        }
    }
}

/// Ends a request and waits for qmgr's next one on the same connection
/// (see [`postern_ipc::deliver::AgentConn`]); `None` when qmgr closed it
/// or something failed (logged).
fn next(server: Server, req: &Request) -> Option<(Server, Request, SystemTime)> {
    let conn = server
        .finish()
        .inspect_err(|e| warn!("{}: report to queue manager: {e}", req.queue_id))
        .ok()?;
    match Server::next(conn) {
        Ok(next) => next.map(|(s, r)| (s, r, SystemTime::now())),
        Err(e) => {
            warn!("delivery request: {e}");
            None
        }
    }
}

/// [`serve`] for one request; the server back for the next, or `None`
/// when qmgr is gone.
fn serve_one(
    mut server: Server,
    spool: &Path,
    req: &Request,
    start: SystemTime,
    relay: &str,
    deliver: &mut impl FnMut(&Request, &[u8], &Recipient) -> RcptStatus,
) -> Option<Server> {
    let queue = open_queue_file(spool, req);
    let content = queue
        .as_ref()
        .map(|(_, qf)| qf.content_to_vec())
        .unwrap_or_default();
    for (i, rcpt) in req.recipients.iter().enumerate() {
        let status = match &queue {
            Ok(_) => deliver(req, &content, rcpt),
            Err(reason) => RcptStatus::new(Action::Delayed, "4.3.0", reason.clone()),
        };
        if !finish_one(&mut server, spool, &queue, req, rcpt, status, start, relay) {
            return None;
        }
        // qmgr hears of each recipient as it is done, of the last one
        // together with the end of the request.
        if i + 1 < req.recipients.len()
            && let Err(e) = server.flush()
        {
            warn!("{}: report to queue manager: {e}", req.queue_id);
            return None;
        }
    }
    Some(server)
}

/// Whether `rcpt` gets a success notification for `action`: it asked for
/// one (`NOTIFY=SUCCESS`), and the message is not itself a notification.
pub fn wants_success_notice(req: &Request, rcpt: &Recipient, action: Action) -> bool {
    matches!(
        action,
        Action::Delivered | Action::Expanded | Action::Relayed
    ) && req.flags & flags::NOTIFICATION == 0
        && !req.sender.is_empty()
        && Notify::from_bits(rcpt.notify).is_some_and(|n| n.contains(Notify::SUCCESS))
}

/// Appends the recipient's success to the message's trace log.
fn record_success(
    spool: &Path,
    req: &Request,
    rcpt: &Recipient,
    status: &RcptStatus,
) -> std::io::Result<()> {
    let id = QueueId::parse(&req.queue_id)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let address = if rcpt.orcpt.is_empty() {
        &rcpt.address
    } else {
        &rcpt.orcpt
    };
    log::append(
        &id.path(spool, Queue::Trace),
        &[LogEntry {
            action: status.action.as_str().to_string(),
            ..LogEntry::new(address, &status.dsn, &status.reason)
        }],
    )
}

/// Like [`serve`] for agents that deliver all recipients of a request
/// together (smtp, lmtp: one transaction for many recipients).
/// `deliver` returns one result per recipient of the request, in order,
/// each with the relay for its log line (`mx.example.com[192.0.2.1]:25`,
/// `none`). A missing result defers its recipient.
pub fn serve_batch(
    conn: Conn,
    ctx: &Context,
    mut deliver: impl FnMut(&Request, &[u8]) -> Vec<(RcptStatus, String)>,
) {
    serve_each(conn, ctx, |server, spool, req, start| {
        serve_batch_one(server, spool, req, start, &mut deliver)
    });
}

/// [`serve_batch`] for one request.
fn serve_batch_one(
    mut server: Server,
    spool: &Path,
    req: &Request,
    start: SystemTime,
    deliver: &mut impl FnMut(&Request, &[u8]) -> Vec<(RcptStatus, String)>,
) -> Option<Server> {
    let queue = open_queue_file(spool, req);
    let mut results = match &queue {
        Ok((_, qf)) => deliver(req, &qf.content_to_vec()),
        Err(_) => Vec::new(),
    }
    .into_iter();
    for rcpt in &req.recipients {
        let (status, relay) = match (&queue, results.next()) {
            (Ok(_), Some(r)) => r,
            (Ok(_), None) => (
                RcptStatus::new(
                    Action::Delayed,
                    "4.3.0",
                    "delivery agent gave no result".into(),
                ),
                "none".to_string(),
            ),
            (Err(reason), _) => (
                RcptStatus::new(Action::Delayed, "4.3.0", reason.clone()),
                "none".to_string(),
            ),
        };
        if !finish_one(&mut server, spool, &queue, req, rcpt, status, start, &relay) {
            return None;
        }
    }
    Some(server)
}

/// Records a wanted success notice in the trace log, marks a final
/// recipient done (or defers it when either fails), logs the Postfix
/// status line and reports to qmgr. Returns false when qmgr is gone.
#[allow(clippy::too_many_arguments)]
fn finish_one(
    server: &mut Server,
    spool: &Path,
    queue: &Result<(Flock<File>, QueueFile), String>,
    req: &Request,
    rcpt: &Recipient,
    mut status: RcptStatus,
    start: SystemTime,
    relay: &str,
) -> bool {
    status.offset = rcpt.offset;
    if !status.notify_handed_on
        && wants_success_notice(req, rcpt, status.action)
        && let Err(e) = record_success(spool, req, rcpt, &status)
    {
        warn!("{}: cannot update trace log: {e}", req.queue_id);
        status = RcptStatus::new(
            Action::Delayed,
            "4.3.0",
            format!("cannot update trace log: {e}"),
        );
        status.offset = rcpt.offset;
    }
    if status.action.is_final()
        && let Ok((file, _)) = queue
        && let Err(e) = postern_queue::mark_done(file, rcpt.offset)
    {
        warn!("{}: cannot update queue file: {e}", req.queue_id);
        status = RcptStatus::new(
            Action::Delayed,
            "4.3.0",
            format!("cannot update queue file: {e}"),
        );
        status.offset = rcpt.offset;
    }
    log_status(req, rcpt, &status, start, relay);
    if let Err(e) = server.report(&status) {
        warn!("{}: report to queue manager: {e}", req.queue_id);
        return false;
    }
    true
}
