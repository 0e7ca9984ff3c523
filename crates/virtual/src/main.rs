//! virtual: delivers mail to virtual mailboxes (Postfix `virtual(8)`).
//!
//! SYNOPSIS: started by master on the unix socket `private/virtual`
//! (master.toml: `[virtual] type = "unix" command = "virtual"
//! unpriv = false`).
//!
//! DESCRIPTION: qmgr sends one delivery request per connection
//! (`ipc::deliver`). For each recipient, `virtual_mailbox_maps` is
//! searched the way Postfix `mail_addr_find()` does (`user+ext@domain`,
//! `user@domain`, then the catch-all `@domain`). The result is a path
//! relative to `virtual_mailbox_base`: one ending in `/` is a Maildir, any
//! other an mbox file (both written by `postern_mailstore`, with
//! `Return-Path:` and `Delivered-To:` prepended, within
//! `virtual_mailbox_limit`). A delivered or bounced recipient is marked
//! done in the queue file before it is reported; a deferred one is left
//! for qmgr to retry.
//!
//! Results: delivered `2.0.0`; unknown user `5.1.1`
//! (`unknown user: "addr"`); table lookup failure `4.3.0`; bad table
//! contents `4.3.5`; mailbox errors as `postern_mailstore` classifies them
//! (full disk or quota and locked mailboxes defer, other errors bounce).
//!
//! SECURITY: runs as root (master.toml `unpriv = false`) so that it can
//! write each mailbox as the owner `virtual_uid_maps` and
//! `virtual_gid_maps` give (switching effective IDs around each write,
//! as Postfix `set_eugid()` does); IDs below `virtual_minimum_uid` are
//! refused. Not run as root, or in `development_mode`, it writes as the
//! user it runs as and does not consult the ID tables.
//!
//! DIAGNOSTICS: one Postfix-style line per recipient
//! (`ID: to=<a@b>, relay=virtual, delay=0.01, delays=0/0/0/0.01,
//! dsn=2.0.0, status=sent (delivered to maildir)`). `delays=` is
//! `a/b/c/d` as in Postfix, except that `a` covers all the time before
//! this agent got the request (Postfix splits it between before qmgr and
//! in qmgr, which the request does not tell). Table problems are logged as
//! warnings.
//!
//! CONFIGURATION PARAMETERS: `virtual_mailbox_base`,
//! `virtual_mailbox_maps`, `virtual_uid_maps`, `virtual_gid_maps`,
//! `virtual_minimum_uid`, `virtual_mailbox_limit`, `recipient_delimiter`,
//! `deliver_lock_attempts`, `deliver_lock_delay`, `stale_lock_time`,
//! `ipc_timeout`, `queue_directory`, `development_mode`.

mod lookup;

use postern_ipc::deliver::{Action, RcptStatus, Recipient};
use postern_mailstore::{Delivery, LockOptions};
use postern_server::{Conn, Context};
use postern_util::privs;

use lookup::{Problem, Tables};

fn main() {
    postern_server::single::run("virtual", |ctx| {
        let tables = Tables::open(&ctx.config)?;
        Ok(move |conn: Conn, ctx: &Context| serve(conn, ctx, &tables))
    })
}

/// What stays the same for every recipient of one request.
struct Job<'a> {
    tables: &'a Tables,
    sender: &'a str,
    content: &'a [u8],
    limit: u64,
    locking: LockOptions,
    /// Switch to the recipient's IDs for each write.
    switch_ids: bool,
}

/// Handles one delivery request.
fn serve(conn: Conn, ctx: &Context, tables: &Tables) {
    let cfg = &ctx.config;
    postern_server::agent::serve(conn, ctx, "virtual", |req, content, rcpt| {
        let job = Job {
            tables,
            sender: &req.sender,
            content,
            limit: cfg.size("virtual_mailbox_limit"),
            locking: LockOptions::from_config(cfg),
            switch_ids: privs::is_root() && !cfg.bool("development_mode"),
        };
        deliver_one(&job, rcpt)
    });
}

fn status(action: Action, dsn: &str, reason: String) -> RcptStatus {
    RcptStatus::new(action, dsn, reason)
}

fn defer(dsn: &str, reason: String) -> RcptStatus {
    status(Action::Delayed, dsn, reason)
}

/// Deferred when `temporary`, else bounced.
fn failed(temporary: bool, dsn: &str, reason: String) -> RcptStatus {
    let action = if temporary {
        Action::Delayed
    } else {
        Action::Failed
    };
    status(action, dsn, reason)
}

fn from_problem(p: Problem) -> RcptStatus {
    failed(p.temporary, p.dsn, p.reason)
}

/// Delivers to one recipient.
fn deliver_one(job: &Job<'_>, rcpt: &Recipient) -> RcptStatus {
    let target = match job.tables.mailbox(&rcpt.address) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return status(
                Action::Failed,
                "5.1.1",
                format!("unknown user: \"{}\"", rcpt.address.to_lowercase()),
            );
        }
        Err(p) => return from_problem(p),
    };
    let owner = if job.switch_ids {
        match job.tables.owner(&rcpt.address) {
            Ok(o) => Some(o),
            Err(p) => return from_problem(p),
        }
    } else {
        None
    };
    let d = Delivery {
        sender: job.sender,
        recipient: &rcpt.address,
        content: job.content,
        limit: job.limit,
    };
    let write = || postern_mailstore::deliver(&target, &d, &job.locking);
    let result = match owner {
        Some((uid, gid)) => match postern_util::privs::as_user(uid, gid, write) {
            Ok(r) => r,
            Err(e) => {
                return defer(
                    "4.3.0",
                    format!("cannot switch to uid/gid {uid}/{gid}: {e}"),
                );
            }
        },
        None => write(),
    };
    match result {
        Ok(what) => status(Action::Delivered, "2.0.0", what.into()),
        Err(e) => failed(e.temporary, e.dsn, e.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Effective IDs are per process: tests that write files take turns.
    static IDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn job<'a>(tables: &'a Tables, switch_ids: bool) -> Job<'a> {
        Job {
            tables,
            sender: "a@example.test",
            content: b"Subject: x\n\nbody\n",
            limit: 0,
            locking: LockOptions::default(),
            switch_ids,
        }
    }

    fn rcpt(address: &str) -> Recipient {
        Recipient {
            address: address.into(),
            ..Recipient::default()
        }
    }

    fn tables(base: &std::path::Path, extra: &str) -> Tables {
        let text = format!(
            "virtual_mailbox_base = \"{}\"\n\
             virtual_mailbox_maps = \"inline:{{ u@x.test=u/Maildir/, m@x.test=u/mbox }}\"\n{extra}\n",
            base.display()
        );
        let cfg =
            postern_config::Config::parse(&text, std::path::Path::new("main.toml"), &[]).unwrap();
        Tables::open(&cfg).unwrap()
    }

    #[test]
    fn delivers_as_the_current_user_without_id_switching() {
        let _turn = IDS.lock().unwrap_or_else(|e| e.into_inner());
        let base = tempfile::tempdir().unwrap();
        let t = tables(base.path(), "virtual_uid_maps = \"fail:uids\"");
        let s = deliver_one(&job(&t, false), &rcpt("u@x.test"));
        assert_eq!(
            (s.action, s.dsn.as_str()),
            (Action::Delivered, "2.0.0"),
            "{s:?}"
        );
        let s = deliver_one(&job(&t, false), &rcpt("nobody@x.test"));
        assert_eq!((s.action, s.dsn.as_str()), (Action::Failed, "5.1.1"));
        assert_eq!(s.reason, "unknown user: \"nobody@x.test\"");
    }

    #[test]
    fn as_root_writes_as_the_mapped_owner() {
        let _turn = IDS.lock().unwrap_or_else(|e| e.into_inner());
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("not root: skipped");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let user = base.path().join("u");
        std::fs::create_dir(&user).unwrap();
        std::os::unix::fs::chown(&user, Some(65534), Some(65534)).unwrap();
        let t = tables(
            base.path(),
            "virtual_uid_maps = \"static:65534\"\nvirtual_gid_maps = \"static:65534\"",
        );
        let s = deliver_one(&job(&t, true), &rcpt("u@x.test"));
        assert_eq!(s.action, Action::Delivered, "{s:?}");
        let s = deliver_one(&job(&t, true), &rcpt("m@x.test"));
        assert_eq!(s.action, Action::Delivered, "{s:?}");
        assert!(nix::unistd::Uid::effective().is_root());
        assert!(nix::unistd::Gid::effective().as_raw() == 0);
        let md = user.join("Maildir");
        let new = std::fs::read_dir(md.join("new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        for path in [md.clone(), new.path(), user.join("mbox")] {
            let m = std::fs::metadata(&path).unwrap();
            assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", path.display());
        }
        // A directory the owner cannot write: a bounce (Postfix: 5.2.0),
        // not a root-owned file.
        let t = tables(
            base.path(),
            "virtual_uid_maps = \"static:65533\"\nvirtual_gid_maps = \"static:65533\"",
        );
        std::fs::remove_dir_all(&md).unwrap();
        let s = deliver_one(&job(&t, true), &rcpt("u@x.test"));
        assert_eq!(
            (s.action, s.dsn.as_str()),
            (Action::Failed, "5.2.0"),
            "{s:?}"
        );
        assert!(!md.exists());
        // uid 0 is below virtual_minimum_uid.
        let t = tables(
            base.path(),
            "virtual_uid_maps = \"static:0\"\nvirtual_gid_maps = \"static:0\"",
        );
        let s = deliver_one(&job(&t, true), &rcpt("u@x.test"));
        assert_eq!(
            (s.action, s.dsn.as_str()),
            (Action::Delayed, "4.3.5"),
            "{s:?}"
        );
    }
}
