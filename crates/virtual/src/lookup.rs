//! Where a virtual recipient's mail goes and as whom (Postfix virtual
//! `mailbox.c`): `virtual_mailbox_maps` gives a path relative to
//! `virtual_mailbox_base` (a trailing `/` means Maildir),
//! `virtual_uid_maps` and `virtual_gid_maps` the owner.

use std::path::{Component, Path, PathBuf};

use postern_config::Config;
use postern_maps::{Maps, Syntax};
use postern_util::warn;

/// The tables and settings of one process.
#[derive(Debug)]
pub(crate) struct Tables {
    mailbox: Maps,
    uid: Maps,
    gid: Maps,
    base: PathBuf,
    delimiter: String,
    min_uid: u32,
}

/// A mailbox to deliver to.
pub(crate) use postern_mailstore::Mailbox as Target;

/// Why a recipient is not delivered: `temporary` defers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) temporary: bool,
    pub(crate) dsn: &'static str,
    pub(crate) reason: String,
}

fn config_error(reason: String) -> Problem {
    warn!("{reason}");
    Problem {
        temporary: true,
        dsn: "4.3.5",
        reason: "mail system configuration error".into(),
    }
}

fn lookup_failure(param: &str, e: &postern_maps::Error) -> Problem {
    warn!("{param} lookup failure: {e}");
    Problem {
        temporary: true,
        dsn: "4.3.0",
        reason: format!("{param} lookup failure"),
    }
}

impl Tables {
    /// Opens the tables named in `cfg`; `virtual_mailbox_base` must be
    /// absolute (Postfix: fatal otherwise).
    pub(crate) fn open(cfg: &Config) -> Result<Tables, String> {
        let base = cfg.path("virtual_mailbox_base");
        if !base.is_absolute() {
            return Err(format!(
                "virtual_mailbox_base must be an absolute path, not \"{}\"",
                base.display()
            ));
        }
        let open = |name: &str| {
            Maps::open(&cfg.list(name), Syntax::Postmap).map_err(|e| format!("{name}: {e}"))
        };
        Ok(Tables {
            mailbox: open("virtual_mailbox_maps")?,
            uid: open("virtual_uid_maps")?,
            gid: open("virtual_gid_maps")?,
            base,
            delimiter: cfg.str("recipient_delimiter"),
            min_uid: u32::try_from(cfg.int("virtual_minimum_uid")).unwrap_or(u32::MAX),
        })
    }

    /// The recipient's mailbox; `Ok(None)` for an unknown user.
    pub(crate) fn mailbox(&self, address: &str) -> Result<Option<Target>, Problem> {
        let value = match self.mailbox.lookup_address(address, &self.delimiter, false) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(e) => return Err(lookup_failure("virtual_mailbox_maps", &e)),
        };
        mailbox_path(&self.base, value.trim())
            .map(Some)
            .ok_or_else(|| {
                config_error(format!(
                    "recipient {address}: bad virtual_mailbox_maps result \"{value}\""
                ))
            })
    }

    /// The recipient's user and group IDs.
    pub(crate) fn owner(&self, address: &str) -> Result<(u32, u32), Problem> {
        let uid = self.id(&self.uid, "virtual_uid_maps", address)?;
        if uid < self.min_uid {
            return Err(config_error(format!(
                "recipient {address}: uid {uid} in virtual_uid_maps is below virtual_minimum_uid {}",
                self.min_uid
            )));
        }
        let gid = self.id(&self.gid, "virtual_gid_maps", address)?;
        Ok((uid, gid))
    }

    fn id(&self, maps: &Maps, param: &str, address: &str) -> Result<u32, Problem> {
        match maps.lookup_address(address, &self.delimiter, false) {
            Ok(Some(v)) => v.trim().parse::<u32>().map_err(|_| {
                config_error(format!("recipient {address}: bad {param} result \"{v}\""))
            }),
            Ok(None) => Err(config_error(format!(
                "recipient {address}: not found in {param}"
            ))),
            Err(e) => Err(lookup_failure(param, &e)),
        }
    }
}

/// `base/value` as a [`Target`]: Maildir when `value` ends in `/`.
/// `value` may start with `/` (Postfix concatenates `base "/" value`);
/// it must not be empty nor leave `base` through `..`.
pub(crate) fn mailbox_path(base: &Path, value: &str) -> Option<Target> {
    let rel = Path::new(value.trim_start_matches('/'));
    if value.is_empty()
        || rel.as_os_str().is_empty()
        || rel.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let path = base.join(rel);
    Some(if value.ends_with('/') {
        Target::Maildir(path)
    } else {
        Target::Mbox(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(extra: &str) -> Tables {
        let text = format!("virtual_mailbox_base = \"/srv/vmail\"\n{extra}\n");
        let cfg = Config::parse(&text, Path::new("main.toml"), &[]).unwrap();
        Tables::open(&cfg).unwrap()
    }

    #[test]
    fn paths() {
        let base = Path::new("/srv/vmail");
        assert_eq!(
            mailbox_path(base, "dev/Maildir/"),
            Some(Target::Maildir("/srv/vmail/dev/Maildir".into()))
        );
        assert_eq!(
            mailbox_path(base, "example.test/dev"),
            Some(Target::Mbox("/srv/vmail/example.test/dev".into()))
        );
        assert_eq!(
            mailbox_path(base, "/abs/box"),
            Some(Target::Mbox("/srv/vmail/abs/box".into()))
        );
        assert_eq!(mailbox_path(base, ""), None);
        assert_eq!(mailbox_path(base, "/"), None);
        assert_eq!(mailbox_path(base, "../etc/passwd"), None);
        assert_eq!(mailbox_path(base, "a/../../b/"), None);
        assert_eq!(mailbox_path(base, "./x"), None);
    }

    #[test]
    fn lookup_order_extension_and_catch_all() {
        let t = tables(
            "recipient_delimiter = \"+\"\n\
             virtual_mailbox_maps = \"inline:{ dev@example.test=dev/Maildir/, \
             @example.test=catchall, Box@other.test=other/box }\"",
        );
        assert_eq!(
            t.mailbox("dev@example.test").unwrap(),
            Some(Target::Maildir("/srv/vmail/dev/Maildir".into()))
        );
        assert_eq!(
            t.mailbox("dev+list@example.test").unwrap(),
            Some(Target::Maildir("/srv/vmail/dev/Maildir".into()))
        );
        assert_eq!(
            t.mailbox("nobody@example.test").unwrap(),
            Some(Target::Mbox("/srv/vmail/catchall".into()))
        );
        assert_eq!(
            t.mailbox("BOX@Other.Test").unwrap(),
            Some(Target::Mbox("/srv/vmail/other/box".into()))
        );
        assert_eq!(t.mailbox("x@other.test").unwrap(), None);
    }

    #[test]
    fn bad_results_and_failures_defer() {
        let t = tables(
            "virtual_mailbox_maps = \"inline:{ a@x.test=../up }\"\n\
             virtual_uid_maps = \"fail:uids\"",
        );
        let p = t.mailbox("a@x.test").unwrap_err();
        assert_eq!((p.temporary, p.dsn), (true, "4.3.5"));
        let p = t.owner("a@x.test").unwrap_err();
        assert_eq!((p.temporary, p.dsn), (true, "4.3.0"));
        let t = tables("virtual_mailbox_maps = \"fail:boxes\"");
        let p = t.mailbox("a@x.test").unwrap_err();
        assert_eq!((p.temporary, p.dsn), (true, "4.3.0"));
    }

    #[test]
    fn owners() {
        let t = tables(
            "virtual_uid_maps = \"inline:{ a@x.test=5000, low@x.test=10, bad@x.test=joe }\"\n\
             virtual_gid_maps = \"static:5001\"",
        );
        assert_eq!(t.owner("a@x.test").unwrap(), (5000, 5001));
        assert_eq!(t.owner("low@x.test").unwrap_err().dsn, "4.3.5");
        assert_eq!(t.owner("bad@x.test").unwrap_err().dsn, "4.3.5");
        assert_eq!(t.owner("none@x.test").unwrap_err().dsn, "4.3.5");
    }

    #[test]
    fn relative_base_is_refused() {
        let cfg = Config::parse(
            "virtual_mailbox_base = \"var/mail\"\n",
            Path::new("main.toml"),
            &[],
        )
        .unwrap();
        assert!(Tables::open(&cfg).is_err());
    }
}
