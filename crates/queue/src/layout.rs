//! Creating, checking and repairing the spool tree (Postfix
//! `conf/postfix-files`, `postfix check`, `postfix set-permissions`).
//!
//! master creates whatever is missing with Postfix's ownership and modes
//! and refuses to start on a spool whose existing parts are unsafe: a
//! symbolic link where a directory belongs, the wrong owner, or a mode that
//! differs from the expected one ([`prepare`]). It never widens or narrows
//! permissions on its own, because a wrong mode may be the trace of an
//! intrusion; `postern check` reports the same problems without creating
//! anything ([`check`]) and `postern set-permissions` fixes them on the
//! administrator's request ([`repair`]).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use crate::name::{GroupKind, OwnerKind, SpoolDir, spool_layout};

/// Who owns what in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    /// Owner of the queue directory itself and `pid` (root in production).
    pub root_uid: Uid,
    /// Group of the queue directory itself and `pid`.
    pub root_gid: Gid,
    /// `mail_owner`.
    pub mail_uid: Uid,
    /// `mail_owner`'s primary group.
    pub mail_gid: Gid,
    /// `setgid_group` (postdrop).
    pub setgid_gid: Gid,
}

impl Owners {
    /// Everything owned by the current user and group (development mode,
    /// tests).
    pub fn current() -> Owners {
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

    fn of(&self, dir: &SpoolDir) -> (Uid, Gid) {
        let uid = match dir.owner {
            OwnerKind::Root => self.root_uid,
            OwnerKind::MailOwner => self.mail_uid,
        };
        let gid = match dir.group {
            GroupKind::Setgid => self.setgid_gid,
            GroupKind::Root => self.root_gid,
            GroupKind::MailOwner => self.mail_gid,
        };
        (uid, gid)
    }
}

/// One thing wrong with the spool.
#[derive(Debug)]
pub struct Unsafe {
    /// The offending path.
    pub path: PathBuf,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// What to do with a directory that is missing or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Create missing directories, report wrong ones (master).
    Create,
    /// Report everything, change nothing (`postern check`).
    Report,
    /// Create missing directories and fix owners and modes
    /// (`postern set-permissions`).
    Repair,
}

const TOP: SpoolDir = SpoolDir {
    name: ".",
    mode: 0o755,
    owner: OwnerKind::Root,
    group: GroupKind::Root,
};

/// Creates the missing parts of the spool and checks every part. Returns
/// all problems found, so the admin can fix them in one go.
pub fn prepare(queue_dir: &Path, owners: &Owners) -> Result<(), Vec<Unsafe>> {
    walk(queue_dir, owners, Mode::Create)
}

/// Checks every part of the spool without changing anything; a missing
/// directory is a problem too.
pub fn check(queue_dir: &Path, owners: &Owners) -> Result<(), Vec<Unsafe>> {
    walk(queue_dir, owners, Mode::Report)
}

/// Creates what is missing and sets the expected owner and mode of every
/// spool directory and of the files in the queue directories (owned by
/// `mail_owner`). Symbolic links and non-directories are reported, never
/// followed or removed. Returns what it changed, or the problems it could
/// not fix.
pub fn repair(queue_dir: &Path, owners: &Owners) -> Result<Vec<String>, Vec<Unsafe>> {
    let mut changed = Vec::new();
    let mut problems = Vec::new();
    let mut dirs = vec![(queue_dir.to_path_buf(), TOP)];
    dirs.extend(spool_layout().iter().map(|d| (queue_dir.join(d.name), *d)));
    for (path, dir) in &dirs {
        let top = dir.name == ".";
        match ensure(path, dir, owners, top, Mode::Repair) {
            Ok(Some(what)) => changed.push(what),
            Ok(None) => {}
            Err(e) => {
                problems.push(e);
                if top {
                    return Err(problems);
                }
            }
        }
    }
    // Files in the mail_owner directories (queue files, defer logs):
    // owned by mail_owner, as Postfix's set-permissions does with
    // "chown -R $mail_owner".
    for dir in spool_layout()
        .iter()
        .filter(|d| d.owner == OwnerKind::MailOwner)
    {
        let path = queue_dir.join(dir.name);
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.path();
            let Ok(meta) = fs::symlink_metadata(&file) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            if meta.uid() != owners.mail_uid.as_raw() {
                match nix::unistd::chown(&file, Some(owners.mail_uid), None) {
                    Ok(()) => changed.push(format!(
                        "{}: owner set to uid {}",
                        file.display(),
                        owners.mail_uid
                    )),
                    Err(e) => problems.push(Unsafe {
                        path: file,
                        problem: format!("cannot change owner: {e}"),
                    }),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(changed)
    } else {
        Err(problems)
    }
}

fn walk(queue_dir: &Path, owners: &Owners, mode: Mode) -> Result<(), Vec<Unsafe>> {
    let mut problems = Vec::new();
    if let Err(e) = ensure(queue_dir, &TOP, owners, true, mode) {
        problems.push(e);
        // Nothing below can be trusted or created.
        return Err(problems);
    }
    for dir in spool_layout() {
        if let Err(e) = ensure(&queue_dir.join(dir.name), dir, owners, false, mode) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks (and per `mode` creates or fixes) one directory; `Ok(Some(_))`
/// says what was changed.
fn ensure(
    path: &Path,
    dir: &SpoolDir,
    owners: &Owners,
    top: bool,
    mode: Mode,
) -> Result<Option<String>, Unsafe> {
    let bad = |problem: String| Unsafe {
        path: path.to_path_buf(),
        problem,
    };
    let (uid, gid) = owners.of(dir);
    let mut changed = None;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if mode == Mode::Report {
                return Err(bad(format!(
                    "does not exist; fix: postern set-permissions (or start master), \
                     which creates it with mode {:04o}",
                    dir.mode
                )));
            }
            create(path, dir.mode, uid, gid, top)
                .map_err(|e| bad(format!("cannot create: {e}")))?;
            changed = Some(format!("{}: created", path.display()));
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
    let have = meta.mode() & 0o7777;
    if top {
        // The queue directory may be narrower than 0755, never writable by
        // others (Postfix: "group or other writable" is fatal).
        if have & 0o022 != 0 {
            if mode == Mode::Repair {
                fs::set_permissions(path, fs::Permissions::from_mode(have & !0o022))
                    .map_err(|e| bad(format!("cannot change mode: {e}")))?;
                changed = Some(format!(
                    "{}: mode set to {:04o}",
                    path.display(),
                    have & !0o022
                ));
            } else {
                return Err(bad(format!(
                    "mode {have:04o} is group or world writable; fix: chmod go-w {}",
                    path.display()
                )));
            }
        }
        if meta.uid() != uid.as_raw() {
            if mode == Mode::Repair {
                nix::unistd::chown(path, Some(uid), None)
                    .map_err(|e| bad(format!("cannot change owner: {e}")))?;
                changed = Some(format!("{}: owner set to uid {uid}", path.display()));
            } else {
                return Err(bad(format!(
                    "owned by uid {}, expected uid {uid}; fix: chown {uid} {}",
                    meta.uid(),
                    path.display()
                )));
            }
        }
        return Ok(changed);
    }
    let mut fixes = Vec::new();
    if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
        if mode != Mode::Repair {
            return Err(bad(format!(
                "owned by {}:{}, expected {uid}:{gid}; fix: chown {uid}:{gid} {} \
                 (or run postern set-permissions)",
                meta.uid(),
                meta.gid(),
                path.display()
            )));
        }
        nix::unistd::chown(path, Some(uid), Some(gid))
            .map_err(|e| bad(format!("cannot change owner: {e}")))?;
        fixes.push(format!("owner set to {uid}:{gid}"));
    }
    if have != dir.mode {
        if mode != Mode::Repair {
            return Err(bad(format!(
                "mode {have:04o}, expected {:04o}; fix: chmod {:04o} {} \
                 (or run postern set-permissions)",
                dir.mode,
                dir.mode,
                path.display()
            )));
        }
        fs::set_permissions(path, fs::Permissions::from_mode(dir.mode))
            .map_err(|e| bad(format!("cannot change mode: {e}")))?;
        fixes.push(format!("mode set to {:04o}", dir.mode));
    }
    if !fixes.is_empty() {
        changed = Some(format!("{}: {}", path.display(), fixes.join(", ")));
    }
    Ok(changed)
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

    #[test]
    fn creates_every_directory_with_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        assert!(check(&q, &Owners::current()).is_err());
        prepare(&q, &Owners::current()).unwrap();
        for d in spool_layout() {
            let m = fs::metadata(q.join(d.name)).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.mode() & 0o7777, d.mode, "{}", d.name);
        }
        // A second start finds it all in order.
        prepare(&q, &Owners::current()).unwrap();
        check(&q, &Owners::current()).unwrap();
    }

    #[test]
    fn refuses_unsafe_modes_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        prepare(&q, &Owners::current()).unwrap();
        fs::set_permissions(q.join("incoming"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::remove_dir(q.join("hold")).unwrap();
        std::os::unix::fs::symlink("/tmp", q.join("hold")).unwrap();
        for errs in [
            prepare(&q, &Owners::current()).unwrap_err(),
            check(&q, &Owners::current()).unwrap_err(),
        ] {
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
    }

    #[test]
    fn repair_fixes_modes_and_creates_but_leaves_links() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        prepare(&q, &Owners::current()).unwrap();
        fs::set_permissions(q.join("incoming"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::remove_dir(q.join("defer")).unwrap();
        let changed = repair(&q, &Owners::current()).unwrap();
        assert_eq!(changed.len(), 2, "{changed:?}");
        check(&q, &Owners::current()).unwrap();
        fs::remove_dir(q.join("hold")).unwrap();
        std::os::unix::fs::symlink("/tmp", q.join("hold")).unwrap();
        let errs = repair(&q, &Owners::current()).unwrap_err();
        assert!(errs[0].to_string().contains("symbolic link"), "{}", errs[0]);
    }

    #[test]
    fn refuses_world_writable_queue_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let q = tmp.path().join("spool");
        fs::create_dir(&q).unwrap();
        fs::set_permissions(&q, fs::Permissions::from_mode(0o777)).unwrap();
        let errs = prepare(&q, &Owners::current()).unwrap_err();
        assert!(
            errs[0].to_string().contains("world writable"),
            "{}",
            errs[0]
        );
        repair(&q, &Owners::current()).unwrap();
        prepare(&q, &Owners::current()).unwrap();
    }
}
