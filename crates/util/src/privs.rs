//! Users, groups and dropping privileges (Postfix `set_ugid.c`, `chroot_uid.c`).
//!
//! The order matters and is checked: supplementary groups, then the group,
//! then the user; afterwards regaining root must fail. Users and groups are
//! looked up *before* any chroot, because NSS does not work inside one.

use std::io;
use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User};

/// A user to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Login name.
    pub name: String,
    /// User ID.
    pub uid: Uid,
    /// Primary group ID.
    pub gid: Gid,
}

/// Looks up a user by name, or by number (`#1000` or `1000`).
pub fn lookup_user(name: &str) -> Result<Identity, String> {
    let found = match name.trim_start_matches('#').parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(u)) => Ok(Identity {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
        }),
        Ok(None) => Err(format!("unknown user: {name}")),
        Err(e) => Err(format!("look up user {name}: {e}")),
    }
}

/// Looks up a group by name or number.
pub fn lookup_group(name: &str) -> Result<Gid, String> {
    let found = match name.trim_start_matches('#').parse::<u32>() {
        Ok(n) => Group::from_gid(Gid::from_raw(n)),
        Err(_) => Group::from_name(name),
    };
    match found {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("unknown group: {name}")),
        Err(e) => Err(format!("look up group {name}: {e}")),
    }
}

/// The effective user of this process.
pub fn current() -> Identity {
    let uid = Uid::effective();
    let gid = Gid::effective();
    let name = User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"));
    Identity { name, uid, gid }
}

/// Whether this process runs with root privileges.
pub fn is_root() -> bool {
    Uid::effective().is_root()
}

/// Optionally chroots into `jail`, then becomes `who` for good.
///
/// Does nothing to the user when `who` is the current user (development
/// mode runs everything as the invoking user).
pub fn drop_to(who: &Identity, jail: Option<&Path>) -> io::Result<()> {
    if let Some(jail) = jail {
        nix::unistd::chroot(jail)
            .map_err(|e| io::Error::other(format!("chroot {}: {e}", jail.display())))?;
        nix::unistd::chdir("/")?;
    }
    if !is_root() {
        if who.uid != Uid::effective() {
            return Err(io::Error::other(format!(
                "cannot become user {} without root privileges",
                who.name
            )));
        }
        return Ok(());
    }
    if who.uid.is_root() {
        return Ok(());
    }
    nix::unistd::setgroups(&[who.gid])?;
    nix::unistd::setresgid(who.gid, who.gid, who.gid)?;
    nix::unistd::setresuid(who.uid, who.uid, who.uid)?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(io::Error::other(
            "privileges were not dropped: setuid(0) succeeded",
        ));
    }
    Ok(())
}

/// Runs `f` with effective user `uid` and group `gid` (and `gid` as the
/// only supplementary group), then returns to root (Postfix
/// `set_eugid()`); for delivery agents writing as a mailbox owner. Failing
/// to return to root is fatal. Call only as root.
pub fn as_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> nix::Result<T> {
    use nix::unistd::{getgroups, setegid, seteuid, setgroups};
    let saved = getgroups()?;
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    let restore = |saved: &[Gid]| {
        if let Err(e) = seteuid(Uid::from_raw(0))
            .and_then(|()| setegid(Gid::from_raw(0)))
            .and_then(|()| setgroups(saved))
        {
            crate::fatal!("cannot return to root privileges: {e}");
        }
    };
    if let Err(e) = setgroups(&[gid])
        .and_then(|()| setegid(gid))
        .and_then(|()| seteuid(uid))
    {
        restore(&saved);
        return Err(e);
    }
    let out = f();
    restore(&saved);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root_and_numbers() {
        let root = lookup_user("root").unwrap();
        assert!(root.uid.is_root());
        assert_eq!(lookup_user("#0").unwrap().name, root.name);
        assert!(lookup_user("no-such-user-postern").is_err());
        assert!(lookup_group("no-such-group-postern").is_err());
    }

    #[test]
    fn dropping_to_self_is_a_no_op() {
        let me = current();
        if !is_root() {
            drop_to(&me, None).unwrap();
        }
    }
}
