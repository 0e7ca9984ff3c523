//! flush(8): deliver one message, or one site's mail, now (Postfix
//! `flush.c`).
//!
//! SYNOPSIS: `flush [generic daemon options]`, started by master for the
//! `public/flush` service.
//!
//! DESCRIPTION: flush serves postqueue(1) `-i queue_id` (sendmail
//! `-qIqueue_id`) and `-s site` (sendmail `-qRsite`); see
//! `postern_ipc::flush` for the protocol. A message is put back into play
//! as Postfix's flush does it: its next-attempt time (the file's
//! modification time) is set to now and the file moves from `deferred` to
//! `incoming`; then qmgr gets an `I` trigger.
//!
//! - `send_file`: the message with that queue id, when it is in
//!   `deferred` (or already in `incoming`); an unknown id is not an
//!   error, as in Postfix.
//! - `send_site`: every deferred message with a recipient still to be
//!   delivered at that domain (or address literal `[1.2.3.4]`), when the
//!   site is in `fast_flush_domains` (else the request is denied, Postfix
//!   "Flush service is not configured for destination").
//!
//! XXX: Postfix keeps a per-site log of deferred queue ids (maintained by
//! the smtp client's `add` requests) so that a site flush reads only that
//! log; Postern has no smtp client yet, so `send_site` reads the pending
//! recipients of each deferred queue file instead. The result is the same
//! set of messages; the cost grows with the deferred queue.
//!
//! SECURITY: flush runs as `mail_owner`. Its socket is public so that the
//! set-group-id postqueue can reach it; a request can only make mail that
//! is queued anyway be tried sooner.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `ipc_timeout`,
//! `fast_flush_domains`, `parent_domain_matches_subdomains`.
//!
//! SEE ALSO: postqueue(1), qmgr(8), master(8).

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use postern_ipc::flush::{self, Request, Status};
use postern_ipc::{Conn as IpcConn, service};
use postern_maps::DomainList;
use postern_queue::{Entry, Queue, QueueFile, QueueId, ReadOptions, RecipientStatus, move_file};
use postern_server::{Conn, single};
use postern_util::{info, warn};

/// Puts `id` back into play: next attempt now, then into `incoming`.
/// Returns whether it was found.
fn flush_one(spool: &Path, id: &QueueId) -> bool {
    let path = id.path(spool, Queue::Deferred);
    match OpenOptions::new().read(true).open(&path) {
        Ok(f) => {
            if let Err(e) = postern_queue::set_next_attempt(&f, SystemTime::now()) {
                warn!("{id}: reset time stamps: {e}");
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Already in incoming: qmgr takes it at the next scan anyway.
            return id.path(spool, Queue::Incoming).exists();
        }
        Err(e) => {
            warn!("{id}: open: {e}");
            return false;
        }
    }
    match move_file(spool, id, Queue::Deferred, Queue::Incoming) {
        Ok(()) => true,
        // qmgr took it meanwhile.
        Err(postern_queue::Error::Io { source, .. })
            if source.kind() == io::ErrorKind::NotFound =>
        {
            false
        }
        Err(e) => {
            warn!("{id}: move from deferred to incoming: {e}");
            false
        }
    }
}

/// Whether `address` is at `site` (domain part, case-insensitive).
fn at_site(address: &str, site: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.trim_end_matches('.').eq_ignore_ascii_case(site))
}

/// The deferred messages with a pending recipient at `site`.
fn site_messages(spool: &Path, site: &str) -> Vec<QueueId> {
    let scan = match postern_queue::scan(spool, Queue::Deferred) {
        Ok(s) => s,
        Err(e) => {
            warn!("scan deferred: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in scan {
        let Ok(Entry::Ready { id, .. }) = entry else {
            continue;
        };
        let path = id.path(spool, Queue::Deferred);
        let Ok(env) = QueueFile::open_envelope(&path, &ReadOptions::default()) else {
            continue;
        };
        if env
            .recipients
            .iter()
            .any(|r| r.status == RecipientStatus::Pending && at_site(&r.address, site))
        {
            out.push(id);
        }
    }
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    out
}

struct Flush {
    spool: PathBuf,
    eligible: Result<DomainList, String>,
}

impl Flush {
    fn handle(&self, req: &Request) -> (Status, u64) {
        let ids = match req {
            Request::SendFile(name) => match QueueId::parse(name) {
                Ok(id) => vec![id],
                Err(_) => return (Status::Bad, 0),
            },
            Request::SendSite(site) => {
                if !flush::valid_site(site) {
                    return (Status::Bad, 0);
                }
                let list = match &self.eligible {
                    Ok(l) => l,
                    Err(e) => {
                        warn!("fast_flush_domains: {e}");
                        return (Status::Fail, 0);
                    }
                };
                let domain = site.trim_start_matches('[').trim_end_matches(']');
                match list.matches(domain) {
                    Ok(true) => {}
                    Ok(false) => return (Status::Deny, 0),
                    Err(e) => {
                        warn!("fast_flush_domains: {e}");
                        return (Status::Fail, 0);
                    }
                }
                site_messages(&self.spool, site)
            }
        };
        let mut count = 0;
        for id in &ids {
            if flush_one(&self.spool, id) {
                info!("{id}: flush requested");
                count += 1;
            }
        }
        if count > 0
            && let Err(e) = postern_ipc::trigger::send(&self.spool, service::QMGR, b"I")
        {
            warn!("cannot wake up qmgr: {e}");
        }
        (Status::Ok, count)
    }
}

fn main() {
    single::run("flush", |ctx| {
        let config = &ctx.config;
        let parent = config
            .list("parent_domain_matches_subdomains")
            .iter()
            .any(|n| n == "fast_flush_domains");
        let f = Flush {
            spool: config.path("queue_directory"),
            eligible: DomainList::open(
                "fast_flush_domains",
                &config.list("fast_flush_domains"),
                parent,
            )
            .map_err(|e| e.to_string()),
        };
        let timeout = config.time("ipc_timeout");
        Ok(move |conn: Conn, _ctx: &postern_server::Context| {
            let Conn::Unix(stream) = conn else {
                warn!("flush serves unix sockets only -- connection dropped");
                return;
            };
            let result = IpcConn::new(stream, timeout).and_then(|mut c| {
                c.greet(flush::PROTOCOL, flush::VERSION, &[])?;
                let req = flush::read_request(&mut c)?;
                let (status, count) = f.handle(&req);
                flush::send_reply(&mut c, status, count)
            });
            if let Err(e) = result {
                warn!("flush request: {e}");
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_queue::{NewRecipient, QueueFileWriter};

    #[test]
    fn sites() {
        assert!(at_site("a@Example.ORG", "example.org"));
        assert!(!at_site("a@sub.example.org", "example.org"));
        assert!(at_site("a@[192.0.2.1]", "[192.0.2.1]"));
    }

    #[test]
    fn send_file_and_send_site_move_deferred_mail() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path();
        for q in Queue::ALL {
            std::fs::create_dir(s.join(q.dir_name())).unwrap();
        }
        let make = |rcpt: &str| {
            let mut w = QueueFileWriter::create(s, Queue::Deferred).unwrap();
            w.time(SystemTime::now()).unwrap();
            w.sender("a@b.example").unwrap();
            w.recipient(&NewRecipient::new(rcpt)).unwrap();
            w.begin_content().unwrap();
            w.write_content(b"x\n").unwrap();
            w.finish().unwrap()
        };
        let one = make("x@one.example");
        let two = make("y@two.example");
        let three = make("z@two.example");
        let f = Flush {
            spool: s.to_path_buf(),
            eligible: DomainList::open("fast_flush_domains", &["two.example".into()], false)
                .map_err(|e| e.to_string()),
        };
        assert_eq!(
            f.handle(&Request::SendFile("bogus".into())),
            (Status::Bad, 0)
        );
        assert_eq!(
            f.handle(&Request::SendSite("one.example".into())),
            (Status::Deny, 0)
        );
        assert_eq!(
            f.handle(&Request::SendSite("two.example".into())),
            (Status::Ok, 2)
        );
        for id in [&two, &three] {
            assert!(id.path(s, Queue::Incoming).exists());
        }
        assert!(one.path(s, Queue::Deferred).exists());
        assert_eq!(
            f.handle(&Request::SendFile(one.to_string())),
            (Status::Ok, 1)
        );
        assert!(one.path(s, Queue::Incoming).exists());
    }
}
