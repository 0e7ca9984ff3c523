//! Service names and where their sockets live (Postfix `mail_proto.h`).

use std::path::{Path, PathBuf};

/// Whether a socket is under `public/` (reachable by local users through
/// the setgid tools) or `private/` (internal only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `private/`
    Private,
    /// `public/`
    Public,
}

impl Class {
    /// The directory name in the spool.
    pub fn dir(self) -> &'static str {
        match self {
            Class::Private => "private",
            Class::Public => "public",
        }
    }
}

/// cleanup: receives new messages (private).
pub const CLEANUP: (Class, &str) = (Class::Private, "cleanup");
/// trivial-rewrite: rewrites and resolves addresses (private).
pub const REWRITE: (Class, &str) = (Class::Private, "rewrite");
/// anvil: connection counts (private).
pub const ANVIL: (Class, &str) = (Class::Private, "anvil");
/// qmgr: triggers about new and deferred mail (public).
pub const QMGR: (Class, &str) = (Class::Public, "qmgr");
/// pickup: triggers about new maildrop files (public).
pub const PICKUP: (Class, &str) = (Class::Public, "pickup");
/// showq: the queue listing for postqueue (public).
pub const SHOWQ: (Class, &str) = (Class::Public, "showq");
/// flush: delivering one message or one site now, for postqueue (public).
pub const FLUSH: (Class, &str) = (Class::Public, "flush");

/// The socket of a service under `queue_directory`.
pub fn socket_path(queue_dir: &Path, service: (Class, &str)) -> PathBuf {
    queue_dir.join(service.0.dir()).join(service.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            socket_path(Path::new("/var/spool/postern"), CLEANUP),
            PathBuf::from("/var/spool/postern/private/cleanup")
        );
        assert_eq!(
            socket_path(Path::new("/q"), QMGR),
            PathBuf::from("/q/public/qmgr")
        );
    }
}
