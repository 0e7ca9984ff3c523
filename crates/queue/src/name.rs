//! Queue names and the spool directory layout.
//!
//! Postfix counterparts: the `MAIL_QUEUE_*` names in `global/mail_queue.h`
//! and the directory entries of `conf/postfix-files`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A queue: one directory under the spool root.
///
/// The directory names are Postfix's, so an administrator's habits carry
/// over. [`Queue::Bounce`], [`Queue::Defer`] and [`Queue::Trace`] hold
/// per-message logs named by queue id, not queue files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    /// `active`: messages the queue manager has taken on.
    Active,
    /// `bounce`: per-message logs of failed recipients.
    Bounce,
    /// `corrupt`: damaged queue files, kept for inspection.
    Corrupt,
    /// `defer`: per-message logs of deferred recipients.
    Defer,
    /// `deferred`: messages waiting for another delivery attempt; a file's
    /// modification time is its next-attempt time.
    Deferred,
    /// `hold`: messages put aside by the administrator (`postsuper -h`).
    Hold,
    /// `incoming`: messages committed by cleanup, not yet taken on.
    Incoming,
    /// `maildrop`: local submissions written by postdrop, read by pickup.
    Maildrop,
    /// `trace`: per-message delivery logs for `sendmail -bv` and `-v`.
    Trace,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 9] = [
        Queue::Active,
        Queue::Bounce,
        Queue::Corrupt,
        Queue::Defer,
        Queue::Deferred,
        Queue::Hold,
        Queue::Incoming,
        Queue::Maildrop,
        Queue::Trace,
    ];

    /// The directory name under the spool root (Postfix `MAIL_QUEUE_*`).
    pub const fn dir_name(self) -> &'static str {
        match self {
            Queue::Active => "active",
            Queue::Bounce => "bounce",
            Queue::Corrupt => "corrupt",
            Queue::Defer => "defer",
            Queue::Deferred => "deferred",
            Queue::Hold => "hold",
            Queue::Incoming => "incoming",
            Queue::Maildrop => "maildrop",
            Queue::Trace => "trace",
        }
    }

    /// The queue with directory name `name` (Postfix `mail_queue_name_ok`).
    pub fn from_dir_name(name: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.dir_name() == name)
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl FromStr for Queue {
    type Err = Error;

    fn from_str(s: &str) -> Result<Queue, Error> {
        Queue::from_dir_name(s).ok_or_else(|| Error::InvalidQueueName { name: s.into() })
    }
}

/// Who owns a spool directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    /// The `mail_owner` account.
    MailOwner,
    /// root.
    Root,
}

/// Which group a spool directory belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// The primary group of `mail_owner` (Postfix `-`: left as created).
    MailOwner,
    /// root's group (Postfix `-` for root-owned directories).
    Root,
    /// The `setgid_group` that postdrop and postqueue run as.
    Setgid,
}

/// One directory of the spool, with the ownership and mode master creates
/// and checks it with (Postfix `conf/postfix-files`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpoolDir {
    /// The directory name under the spool root.
    pub name: &'static str,
    /// The permission bits.
    pub mode: u32,
    /// The owner.
    pub owner: OwnerKind,
    /// The group.
    pub group: GroupKind,
}

const fn queue_dir(queue: Queue) -> SpoolDir {
    SpoolDir {
        name: queue.dir_name(),
        mode: 0o700,
        owner: OwnerKind::MailOwner,
        group: GroupKind::MailOwner,
    }
}

static LAYOUT: [SpoolDir; 13] = [
    queue_dir(Queue::Active),
    queue_dir(Queue::Bounce),
    queue_dir(Queue::Corrupt),
    queue_dir(Queue::Defer),
    queue_dir(Queue::Deferred),
    queue_dir(Queue::Hold),
    queue_dir(Queue::Incoming),
    // Anyone in setgid_group (postdrop) may create files here, but not
    // list or read them.
    SpoolDir {
        name: "maildrop",
        mode: 0o730,
        owner: OwnerKind::MailOwner,
        group: GroupKind::Setgid,
    },
    queue_dir(Queue::Trace),
    // Finished queue files kept for their inodes (see recycle.rs).
    SpoolDir {
        name: crate::recycle::POOL_DIR,
        mode: 0o700,
        owner: OwnerKind::MailOwner,
        group: GroupKind::MailOwner,
    },
    // Sockets of public services (pickup, qmgr triggers, showq), reachable
    // through the setgid programs only.
    SpoolDir {
        name: "public",
        mode: 0o710,
        owner: OwnerKind::MailOwner,
        group: GroupKind::Setgid,
    },
    // Sockets of internal services.
    SpoolDir {
        name: "private",
        mode: 0o700,
        owner: OwnerKind::MailOwner,
        group: GroupKind::MailOwner,
    },
    // master's pid file and lock.
    SpoolDir {
        name: "pid",
        mode: 0o755,
        owner: OwnerKind::Root,
        group: GroupKind::Root,
    },
];

/// Every directory Postern needs under the spool root, with its mode and
/// ownership. Queues are flat: there are no hashed subdirectories (Postfix
/// `hash_queue_depth` = 0), so this list is the whole tree.
pub fn spool_layout() -> &'static [SpoolDir] {
    &LAYOUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for q in Queue::ALL {
            assert_eq!(Queue::from_dir_name(q.dir_name()), Some(q));
            assert_eq!(q.to_string().parse::<Queue>().unwrap(), q);
        }
        assert!("flush".parse::<Queue>().is_err());
    }

    #[test]
    fn layout_covers_every_queue_once() {
        let layout = spool_layout();
        for q in Queue::ALL {
            assert_eq!(
                layout.iter().filter(|d| d.name == q.dir_name()).count(),
                1,
                "{q}"
            );
        }
        for extra in ["pid", "public", "private"] {
            assert!(layout.iter().any(|d| d.name == extra));
        }
        let maildrop = layout.iter().find(|d| d.name == "maildrop").unwrap();
        assert_eq!(maildrop.mode, 0o730);
        assert_eq!(maildrop.group, GroupKind::Setgid);
        let pid = layout.iter().find(|d| d.name == "pid").unwrap();
        assert_eq!((pid.mode, pid.owner), (0o755, OwnerKind::Root));
    }
}
