//! Who owns the spool (Postfix `mail_owner`, `setgid_group`), shared by
//! master (which creates and checks the spool) and `postern check` /
//! `postern set-permissions`.

use postern_config::Config;
use postern_queue::layout::Owners;
use postern_util::privs;

/// Decides who owns the spool and whom services run as.
///
/// Run by an unprivileged user, or with `development_mode`, everything
/// belongs to and runs as the invoking user. As root, `mail_owner` must be
/// an unprivileged account and `setgid_group` a group of its own.
pub fn owners(config: &Config) -> Result<Owners, String> {
    if !privs::is_root() || config.bool("development_mode") {
        let me = privs::current();
        return Ok(Owners {
            root_uid: me.uid,
            root_gid: me.gid,
            mail_uid: me.uid,
            mail_gid: me.gid,
            setgid_gid: me.gid,
        });
    }
    let owner_name = config.str("mail_owner");
    let owner = privs::lookup_user(&owner_name).map_err(|e| format!("mail_owner: {e}"))?;
    if owner.uid.is_root() {
        return Err(format!(
            "mail_owner: user {owner_name} has privileged user ID 0 \
             (use an unprivileged account, or development_mode = yes for testing)"
        ));
    }
    let group_name = config.str("setgid_group");
    let setgid_gid = privs::lookup_group(&group_name).map_err(|e| format!("setgid_group: {e}"))?;
    if setgid_gid == owner.gid {
        return Err(format!(
            "setgid_group: group {group_name} must differ from mail_owner's primary group"
        ));
    }
    Ok(Owners {
        root_uid: nix::unistd::Uid::from_raw(0),
        root_gid: nix::unistd::Gid::from_raw(0),
        mail_uid: owner.uid,
        mail_gid: owner.gid,
        setgid_gid,
    })
}
