//! Creating and checking the spool (Postfix `postfix-files`, `postfix
//! check`, `set-permissions`).
//!
//! master creates whatever is missing with Postfix's ownership and modes,
//! and refuses to start on a spool whose existing parts are unsafe: a
//! symbolic link where a directory belongs, the wrong owner, or a mode
//! that differs from the expected one. The error says what to run to fix
//! it; master never widens or narrows permissions on its own, because a
//! wrong mode may be the trace of an intrusion.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use postern_queue::{GroupKind, OwnerKind, SpoolDir, spool_layout};

/// Who owns what in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owners {
    /// Owner of the queue directory itself and `pid` (root in production).
    pub(crate) root_uid: Uid,
    /// Group of the queue directory itself and `pid`.
    pub(crate) root_gid: Gid,
    /// `mail_owner`.
    pub(crate) mail_uid: Uid,
    /// `mail_owner`'s primary group.
    pub(crate) mail_gid: Gid,
    /// `setgid_group` (postdrop).
    pub(crate) setgid_gid: Gid,
}

/// One thing wrong with the spool.
#[derive(Debug)]
pub(crate) struct Unsafe {
    /// The offending path.
    pub(crate) path: PathBuf,
    /// What is wrong and how to fix it.
    pub(crate) problem: String,
}

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

fn expected_owner(dir: &SpoolDir, o: &Owners) -> (Uid, Gid) {
    let uid = match dir.owner {
        OwnerKind::Root => o.root_uid,
        OwnerKind::MailOwner => o.mail_uid,
    };
    let gid = match dir.group {
        GroupKind::Setgid => o.setgid_gid,
        GroupKind::Root => o.root_gid,
        GroupKind::MailOwner => o.mail_gid,
    };
    (uid, gid)
}

/// Creates the missing parts of the spool and checks every part.
/// Returns all problems found, so the admin can fix them in one go.
pub(crate) fn prepare(queue_dir: &Path, owners: &Owners) -> Result<(), Vec<Unsafe>> {
    let mut problems = Vec::new();
    let top = SpoolDir {
        name: ".",
        mode: 0o755,
        owner: OwnerKind::Root,
        group: GroupKind::Root,
    };
    if let Err(e) = ensure(queue_dir, &top, owners, true) {
        problems.push(e);
        // Nothing below can be trusted or created.
        return Err(problems);
    }
    for dir in spool_layout() {
        if let Err(e) = ensure(&queue_dir.join(dir.name), dir, owners, false) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn ensure(path: &Path, dir: &SpoolDir, owners: &Owners, top: bool) -> Result<(), Unsafe> {
    let bad = |problem: String| Unsafe {
        path: path.to_path_buf(),
        problem,
    };
    let (uid, gid) = expected_owner(dir, owners);
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create(path, dir.mode, uid, gid, top)
                .map_err(|e| bad(format!("cannot create: {e}")))?;
        }
        Err(e) => return Err(bad(format!("cannot inspect: {e}"))),
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(path).map_err(|e| bad(format!("cannot inspect: {e}")))?;
    if meta.file_type().is_symlink() {
        return Err(bad(
            "is a symbolic link; the spool must be real directories (remove the link)".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(bad("is not a directory".into()));
    }
    let mode = meta.mode() & 0o7777;
    if top {
        // The queue directory may be narrower than 0755, never writable by
        // others (Postfix: "group or other writable" is fatal).
        if mode & 0o022 != 0 {
            return Err(bad(format!(
                "mode {mode:04o} is group or world writable; fix: chmod go-w {}",
                path.display()
            )));
        }
        if meta.uid() != uid.as_raw() {
            return Err(bad(format!(
                "owned by uid {}, expected uid {uid}; fix: chown {uid} {}",
                meta.uid(),
                path.display()
            )));
        }
        return Ok(());
    }
    if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
        return Err(bad(format!(
            "owned by {}:{}, expected {uid}:{gid}; fix: chown {uid}:{gid} {}",
            meta.uid(),
            meta.gid(),
            path.display()
        )));
    }
    if mode != dir.mode {
        return Err(bad(format!(
            "mode {mode:04o}, expected {:04o}; fix: chmod {:04o} {}",
            dir.mode,
            dir.mode,
            path.display()
        )));
    }
    Ok(())
}

fn create(path: &Path, mode: u32, uid: Uid, gid: Gid, parents: bool) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.mode(mode).recursive(parents);
    b.create(path)?;
    // The umask narrowed the mode; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    let meta = fs::metadata(path)?;
    if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
        nix::unistd::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owners {
        let uid = Uid::effective();
        let gid = Gid::effective();
        Owners {
            root_uid: uid,
            root_gid: gid,
            mail_uid: uid,
            mail_gid: gid,
            setgid_gid: gid,
        }
    }

    #[test]
    fn creates_every_directory_with_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        prepare(&q, &me()).unwrap();
        for d in spool_layout() {
            let m = fs::metadata(q.join(d.name)).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.mode() & 0o7777, d.mode, "{}", d.name);
        }
        // A second start finds it all in order.
        prepare(&q, &me()).unwrap();
    }

    #[test]
    fn refuses_unsafe_modes_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        prepare(&q, &me()).unwrap();
        fs::set_permissions(q.join("incoming"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::remove_dir(q.join("hold")).unwrap();
        std::os::unix::fs::symlink("/tmp", q.join("hold")).unwrap();
        let errs = prepare(&q, &me()).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("incoming") && t.contains("chmod 0700")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("hold") && t.contains("symbolic link")),
            "{text:?}"
        );
    }

    #[test]
    fn refuses_world_writable_queue_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        fs::create_dir(&q).unwrap();
        fs::set_permissions(&q, fs::Permissions::from_mode(0o777)).unwrap();
        let errs = prepare(&q, &me()).unwrap_err();
        assert!(
            errs[0].to_string().contains("world writable"),
            "{}",
            errs[0]
        );
    }
}
