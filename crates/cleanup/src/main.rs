//! cleanup - canonicalize and enqueue Postern messages (Postfix
//! `cleanup(8)`, `src/cleanup/cleanup.c`).
//!
//! # SYNOPSIS
//!
//! `cleanup [generic daemon options]`, started by master for the
//! `private/cleanup` service (`[cleanup] type = "unix"` in master.toml).
//!
//! # DESCRIPTION
//!
//! cleanup is the one program that creates queue files. smtpd and pickup
//! hand it one message per connection (`ipc::cleanup`): cleanup creates
//! `incoming/ID`, greets with the queue ID, and reads the envelope, the
//! content and the extracted segment as records. A client that asks
//! (smtpd does) may send further messages over the same connection, up
//! to 1000; smtpd closes it as soon as its own client pauses. It
//!
//! - writes the arrival time itself (a client's `T`, `D` or `W` record
//!   is refused, as is any record out of place);
//! - rewrites the sender and each recipient through trivial-rewrite, in
//!   the local context for every message as Postfix does for envelope
//!   addresses (`MAILER-DAEMON@$myorigin` as sender becomes `<>`), then
//!   `sender_canonical_maps` / `recipient_canonical_maps` and
//!   `canonical_maps`, and expands recipients through
//!   `virtual_alias_maps`; duplicate recipients are dropped;
//! - checks each header against `header_checks` and each body line
//!   against `body_checks` (REJECT, DEFER, HOLD, DISCARD, WARN, IGNORE,
//!   PREPEND, REPLACE), counts `Received:` headers against
//!   `hop_count_limit`, removes `Bcc:` from local submissions, takes the
//!   recipients of `sendmail -t` from `To:`/`Cc:`/`Bcc:`, and adds a
//!   missing `Message-ID:`, `Date:` and `From:` to local submissions (or
//!   to all mail with `always_add_missing_headers = yes`);
//! - stores the content as LF-terminated lines ([`message`]).
//!
//! Errors pile up; cleanup reads on to the `E` record, then answers
//! `status` and `reason`. A refused message leaves no queue file. An
//! accepted one is fsynced and made ready, the client is told, qmgr gets
//! the trigger `I`, and the log says `ID: message-id=<...>`. A HOLD action
//! commits the file to `hold/` instead; a DISCARD action removes it and
//! answers `DISCARD` (the client reports success).
//!
//! # SECURITY
//!
//! cleanup is moderately security sensitive: it talks to other mail
//! system programs only, but the content it reads comes from anyone who
//! can send mail. It runs unprivileged and may run chrooted. Nothing it
//! reads makes it panic; every limit is a parameter.
//!
//! # DIAGNOSTICS
//!
//! Problems are logged through the mail log. A client protocol violation
//! is logged as `warning: ID: message rejected: ...`; a table or
//! trivial-rewrite failure as a warning with `try again later` (the
//! message is deferred). Header and body actions are logged like
//! Postfix: `ID: reject: header Subject: ... from host[addr]; from=<s>
//! to=<r> proto=ESMTP helo=<h>: 5.7.1 text` (also `hold`, `discard`,
//! `warning`, `defer`).
//!
//! # BUGS
//!
//! Addresses in headers are not rewritten (Postfix rewrites them in the
//! local context and through the canonical tables). There is no MIME
//! processing: everything after the primary header block is body to
//! `body_checks` (as Postfix with `disable_mime_input_processing = yes`),
//! and there are no `mime_header_checks` or `nested_header_checks`. The
//! REDIRECT and FILTER actions are logged and ignored, because the queue
//! file has no record for them yet. A cleanup process killed in the middle
//! of a message leaves its unfinished queue file behind (mode 0600, so no
//! reader takes it), and so do the pool files it had placed in `incoming/`
//! for its next messages (`postern_queue::prepare`); master takes them
//! back into the pool at its next start, `postsuper -p` removes them.
//! Postfix's cleanup removes its file from a signal handler.
//!
//! # CONFIGURATION PARAMETERS
//!
//! `queue_directory`, `ipc_timeout`, `myhostname`, `myorigin`,
//! `mydestination`, `recipient_delimiter`, `canonical_maps`,
//! `sender_canonical_maps`, `recipient_canonical_maps`,
//! `virtual_alias_maps`, `virtual_alias_recursion_limit` (1000),
//! `virtual_alias_expansion_limit` (1000), `duplicate_filter_limit` (1000),
//! `header_checks`, `body_checks`, `header_size_limit` (102400),
//! `line_length_limit` (2048), `hop_count_limit` (50),
//! `message_size_limit` (10240000), `always_add_missing_headers` (no).
//!
//! # SEE ALSO
//!
//! trivial-rewrite(8) address rewriting, qmgr(8) queue manager, smtpd(8)
//! and pickup(8) clients, header_checks(5), canonical(5), virtual(5).

use std::path::PathBuf;
use std::time::SystemTime;

use postern_ipc::cleanup::{Request, Server, flags, status};
use postern_ipc::conn::{Conn as IpcConn, Error as IpcError};
use postern_queue::{Queue, QueueFileWriter};
use postern_server::{Conn, Context};
use postern_util::{debug, info, warn};

mod addr;
mod header;
mod message;
mod state;
mod tables;
#[cfg(test)]
mod tests;

use state::{Cleanup, Next, Settings, State};
use tables::{IpcRewriter, Tables};

fn main() {
    // Pool files placed in incoming/ for the next messages go back when
    // no client came for a while, and at the end.
    postern_server::single::on_exit(postern_queue::unprepare);
    postern_server::single::on_idle(postern_queue::RESERVE_AGE, postern_queue::unprepare);
    postern_server::single::run("cleanup", |ctx| {
        let queue_dir = queue_dir(ctx);
        let settings = Settings::from_config(&ctx.config, queue_dir.clone());
        let tables = Tables::open(&ctx.config)?;
        let rewriter = IpcRewriter::new(&queue_dir, ctx.config.time("ipc_timeout"));
        let mut cx = Cleanup {
            settings,
            tables,
            rewriter: Box::new(rewriter),
        };
        Ok(move |conn: Conn, ctx: &Context| service(conn, ctx, &mut cx))
    })
}

/// `queue_directory` as the process sees it: `/` after a chroot into it.
fn queue_dir(ctx: &Context) -> PathBuf {
    let jailed =
        ctx.args.chroot && postern_util::privs::is_root() && !ctx.config.bool("development_mode");
    if jailed {
        PathBuf::from("/")
    } else {
        ctx.config.path("queue_directory")
    }
}

/// Messages one client may send over one kept connection
/// ([`flags::KEEP`]); then cleanup closes it, so that a long session
/// still moves on to a new process (and configuration) now and then.
const KEEP_LIMIT: u32 = 1000;

/// One client: one message (Postfix `cleanup_service`), or several in a
/// row over a kept connection.
fn service(conn: Conn, ctx: &Context, cx: &mut Cleanup) {
    let Conn::Unix(stream) = conn else {
        warn!("cleanup serves unix sockets only -- connection dropped");
        return;
    };
    let mut conn = match IpcConn::new(stream, ctx.config.time("ipc_timeout")) {
        Ok(c) => c,
        Err(e) => {
            warn!("client connection: {e}");
            return;
        }
    };
    // The first message's flags come after the greeting, a kept
    // connection's next ones before it.
    let mut flags = None;
    for n in 1..=KEEP_LIMIT {
        let Some(server) = message(conn, flags, cx, n < KEEP_LIMIT) else {
            return;
        };
        match server.wait_next() {
            Ok(Request::Message(c, f)) => (conn, flags) = (c, Some(f)),
            Ok(Request::Closed) => return,
            Err(e) => {
                warn!("read request from client: {e}");
                return;
            }
        }
    }
}

/// One message over `conn`; returns the connection's server side when
/// the client keeps it for another (and `may_keep`).
fn message(conn: IpcConn, flags: Option<u64>, cx: &mut Cleanup, may_keep: bool) -> Option<Server> {
    let mut writer = match QueueFileWriter::create(&cx.settings.queue_dir, Queue::Incoming) {
        Ok(w) => w,
        Err(e) => {
            warn!("create queue file: {e}");
            return None;
        }
    };
    let id = writer.id().as_str().to_string();
    // The queue directory's fsync (the file has its name there) runs
    // while the client has yet to send its data: done in this thread,
    // with no helper to wake and wait for.
    let accepted = match flags {
        None => Server::accept_then(conn, &id, || writer.sync_dir()),
        Some(f) => Server::accept_next(conn, f, &id, || writer.sync_dir()),
    };
    let mut server = match accepted {
        Ok(s) => s,
        Err(e) => {
            warn!("{id}: handshake with client: {e}");
            return None;
        }
    };
    let mut state = State::new(cx, writer, server.flags, SystemTime::now());
    loop {
        match server.next_record_ref() {
            Ok((kind, data)) => {
                if state.record(kind, data) == Next::End {
                    break;
                }
            }
            Err(IpcError::Closed) => {
                // The client gave up (smtpd lost its client): no reply,
                // and dropping the state removes the queue file.
                debug!("{id}: client disconnected before the end of the message");
                return None;
            }
            Err(IpcError::Wire(e)) => {
                // The framing is broken: the rest cannot be read.
                warn!("{id}: malformed record from client: {e}");
                state.bad("malformed record");
                let verdict = state.finish();
                let _ = server.reply(verdict.status, &verdict.reason);
                return None;
            }
            Err(e) => {
                warn!("{id}: read from client: {e}");
                return None;
            }
        }
    }
    let verdict = state.finish();
    let keep = may_keep && server.flags & flags::KEEP != 0;
    let replied = server.reply_keep(verdict.status, &verdict.reason, keep);
    if let Err(e) = &replied {
        warn!("{id}: reply to client: {e}");
    }
    if verdict.status == status::OK && verdict.queued == Some(Queue::Incoming) {
        // qmgr may not run (yet): it scans incoming/ on its own anyway.
        let _ =
            postern_ipc::trigger::send(&cx.settings.queue_dir, postern_ipc::service::QMGR, b"I");
    }
    if verdict.queued.is_some() {
        info!("{id}: message-id={}", verdict.message_id);
    }
    // The next message's file, readied while no client waits.
    postern_queue::prepare(&cx.settings.queue_dir);
    (keep && replied.is_ok()).then_some(server)
}
