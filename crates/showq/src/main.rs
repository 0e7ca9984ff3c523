//! showq(8): list the mail queue (Postfix `showq.c`).
//!
//! SYNOPSIS: `showq [generic daemon options]`, started by master for the
//! `public/showq` service; `showq -S [-c config_dir] [-o name=value]`
//! writes one listing to standard output (stand-alone mode, which
//! postqueue(1) uses as root when the mail system is down).
//!
//! DESCRIPTION: for each connection showq walks the `maildrop`, `hold`,
//! `incoming`, `active` and `deferred` queues (Postfix's order), reads
//! every ready queue file with the queue crate, and streams one record
//! per message with its queue, id, arrival time, size and sender, then
//! its recipients still to be delivered, each with the latest reason from
//! the message's defer log (see `postern_ipc::showq`). The client
//! (postqueue) formats the listing. Files that vanish while the queue is
//! walked (delivered, moved) are skipped; damaged files are skipped with
//! a warning and left for qmgr to move to `corrupt`. Only the envelope
//! and extracted records of each file are read, not the message (the
//! size record says where they are), and the listing streams, one
//! message in memory at a time.
//!
//! SECURITY: showq runs as `mail_owner` (the service's `unpriv` is the
//! default) and only reads. Its socket is in `public/` so that the
//! set-group-id postqueue can reach it; anyone who can run postqueue can
//! see the queue, as with Postfix's default `authorized_mailq_users`.
//!
//! DIAGNOSTICS: problems go to the mail log.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `ipc_timeout`,
//! `mail_owner`, `development_mode`.
//!
//! SEE ALSO: postqueue(1), mailq(1), qmgr(8), master(8).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use postern_ipc::showq::{self, Message, Recipient};
use postern_queue::{Entry, Queue, QueueFile, QueueId, ReadOptions, RecipientStatus};
use postern_server::{Conn, single};
use postern_util::{msg, privs, warn};
use postern_wire::Rules;

/// The queues listed, in Postfix showq's order.
const QUEUES: [Queue; 5] = [
    Queue::Maildrop,
    Queue::Hold,
    Queue::Incoming,
    Queue::Active,
    Queue::Deferred,
];

/// The ready files of `queue`, oldest id first. A queue that cannot be
/// read is an error: a listing without it would look complete.
fn ids(spool: &Path, queue: Queue) -> io::Result<Vec<QueueId>> {
    let failed = |e: postern_queue::Error| io::Error::other(format!("scan {queue}: {e}"));
    let mut ids = Vec::new();
    for entry in postern_queue::scan(spool, queue).map_err(failed)? {
        if let Entry::Ready { id, .. } = entry.map_err(failed)? {
            ids.push(id);
        }
    }
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(ids)
}

/// Reads one message for the listing; `None` if it is gone or unreadable.
fn message(spool: &Path, queue: Queue, id: &QueueId) -> Option<Message> {
    let opts = ReadOptions {
        rules: if queue == Queue::Maildrop {
            Rules::Post
        } else {
            Rules::Queue
        },
        ..ReadOptions::default()
    };
    let env = match QueueFile::open_envelope(&id.path(spool, queue), &opts) {
        Ok(qf) => qf,
        Err(postern_queue::Error::Io { source, .. })
            if source.kind() == io::ErrorKind::NotFound =>
        {
            return None;
        }
        Err(e) => {
            warn!("{queue}/{id}: {e}");
            return None;
        }
    };
    let log = match postern_queue::log::read(&id.path(spool, Queue::Defer)) {
        Ok(log) => log,
        Err(e) => {
            warn!("{id}: defer log: {e}");
            Vec::new()
        }
    };
    let reasons = postern_queue::log::latest_reasons(&log);
    Some(Message {
        queue_name: queue.dir_name().to_string(),
        queue_id: id.to_string(),
        arrival_time: env
            .arrival
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        message_size: env.size.content_length,
        force_expired: false,
        sender: env.sender.clone(),
        recipients: env
            .recipients
            .iter()
            .filter(|r| r.status == RecipientStatus::Pending)
            .map(|r| Recipient {
                address: r.address.clone(),
                reason: reasons
                    .get(r.address.as_str())
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    })
}

/// Writes the whole listing of the spool at `spool` to `out`.
fn listing(spool: &Path, out: &mut impl Write) -> io::Result<()> {
    showq::write_greeting(out)?;
    for queue in QUEUES {
        for id in ids(spool, queue)? {
            if let Some(m) = message(spool, queue, &id) {
                showq::write_message(out, &m)?;
            }
        }
    }
    showq::write_end(out)?;
    out.flush()
}

/// `showq -S`: one listing on standard output, outside master (Postfix
/// runs `showq -u -S` the same way). As root, it becomes `mail_owner`
/// first, like the daemon.
fn standalone(mut argv: Vec<std::ffi::OsString>) -> ! {
    let _ = msg::init("postern", "showq", &msg::Sink::Stderr);
    let common = match postern_config::take_common(&mut argv) {
        Ok(c) => c,
        Err(e) => postern_util::fatal!("{e}"),
    };
    let config = match postern_config::Config::load(&common.config_dir, &common.overrides) {
        Ok(c) => c,
        Err(e) => postern_util::fatal!("{e}"),
    };
    if privs::is_root() && !config.bool("development_mode") {
        let owner = match privs::lookup_user(&config.str("mail_owner")) {
            Ok(o) => o,
            Err(e) => postern_util::fatal!("mail_owner: {e}"),
        };
        if let Err(e) = privs::drop_to(&owner, None) {
            postern_util::fatal!("drop privileges to {}: {e}", owner.name);
        }
    }
    let spool: PathBuf = config.path("queue_directory");
    let mut out = BufWriter::new(io::stdout().lock());
    match listing(&spool, &mut out) {
        Ok(()) => std::process::exit(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => postern_util::fatal!("{e}"),
    }
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.iter().skip(1).any(|a| a == "-S") {
        standalone(argv.into_iter().filter(|a| a != "-S").collect());
    }
    single::run("showq", |ctx| {
        let spool = ctx.config.path("queue_directory");
        let timeout = ctx.config.time("ipc_timeout");
        Ok(move |conn: Conn, _ctx: &postern_server::Context| {
            let Conn::Unix(stream) = conn else {
                warn!("showq serves unix sockets only -- connection dropped");
                return;
            };
            if let Err(e) = stream.set_write_timeout(Some(timeout)) {
                warn!("set timeout: {e}");
                return;
            }
            let started = SystemTime::now();
            let mut out = BufWriter::with_capacity(64 * 1024, stream);
            match listing(&spool, &mut out) {
                Ok(()) => {}
                // The client went away (postqueue -p | head) or stalled.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                    ) =>
                {
                    postern_util::debug!(
                        "listing cut short after {:?}: {e}",
                        started.elapsed().unwrap_or_default()
                    );
                }
                // The client sees the listing end without its end record.
                Err(e) => warn!("{e}"),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_queue::{NewRecipient, QueueFileWriter, mark_done};

    fn spool() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for q in Queue::ALL {
            std::fs::create_dir(dir.path().join(q.dir_name())).unwrap();
        }
        dir
    }

    fn write(spool: &Path, queue: Queue, sender: &str, rcpts: &[&str]) -> (QueueId, Vec<u64>) {
        let mut w = QueueFileWriter::create(spool, queue).unwrap();
        w.time(UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
            .unwrap();
        w.sender(sender).unwrap();
        let offsets = rcpts
            .iter()
            .map(|r| w.recipient(&NewRecipient::new(r)).unwrap())
            .collect();
        w.begin_content().unwrap();
        w.write_content(b"Subject: x\n\nbody\n").unwrap();
        (w.finish().unwrap(), offsets)
    }

    #[test]
    fn lists_every_queue_with_reasons_and_pending_recipients_only() {
        let dir = spool();
        let s = dir.path();
        let (held, _) = write(s, Queue::Hold, "", &["h@example.org"]);
        let (def, offs) = write(
            s,
            Queue::Deferred,
            "alice@example.org",
            &["done@example.org", "bob@example.org", "carol@example.org"],
        );
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(def.path(s, Queue::Deferred))
            .unwrap();
        mark_done(&f, offs[0]).unwrap();
        postern_queue::log::append(
            &def.path(s, Queue::Defer),
            &[postern_queue::log::LogEntry::new(
                "bob@example.org",
                "4.4.1",
                "connect to x: Connection refused",
            )],
        )
        .unwrap();
        // Not ready: still being written, not listed.
        std::fs::write(s.join("incoming/4Y5Lrq3yTsz1Qwm"), b"partial").unwrap();
        let mut out = Vec::new();
        listing(s, &mut out).unwrap();
        let mut r = showq::Reader::new(&out[..]);
        let first = r.next_message().unwrap().unwrap();
        assert_eq!(
            (first.queue_name.as_str(), first.queue_id.as_str()),
            ("hold", held.as_str())
        );
        assert_eq!(first.sender, "");
        assert_eq!(first.arrival_time, 1_700_000_000);
        assert_eq!(first.message_size, 17);
        let second = r.next_message().unwrap().unwrap();
        assert_eq!(second.queue_name, "deferred");
        assert_eq!(
            second.recipients,
            vec![
                Recipient {
                    address: "bob@example.org".into(),
                    reason: "connect to x: Connection refused".into()
                },
                Recipient {
                    address: "carol@example.org".into(),
                    reason: String::new()
                },
            ]
        );
        assert!(r.next_message().unwrap().is_none());
    }
}
