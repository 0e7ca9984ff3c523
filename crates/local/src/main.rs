//! local: delivers mail for the domains in `mydestination` (Postfix
//! `local(8)`).
//!
//! SYNOPSIS: started by master on the unix socket `private/local`
//! (master.toml: `[local] type = "unix" command = "local"
//! unpriv = false`).
//!
//! DESCRIPTION: qmgr sends one delivery request per connection
//! (`ipc::deliver`). For each recipient:
//!
//! 1. A `Delivered-To:` header equal to the recipient bounces it with
//!    `5.4.6` (mail forwarding loop).
//! 2. `alias_maps` is searched for the local part with its extension,
//!    then without (`recipient_delimiter`). The right-hand side is a list
//!    of targets (below), delivered with the privileges of
//!    `default_privs`. Addresses are forwarded in one new message through
//!    cleanup, with sender `owner-NAME@domain` when the alias `owner-NAME`
//!    exists, else the original sender; the recipient is reported
//!    `expanded`.
//! 3. Otherwise the user must exist in the password database; an unknown
//!    user is forwarded to `luser_relay` (with `$user`, `$local`,
//!    `$extension`, `$domain`, `$recipient` expanded) when that is set,
//!    else bounced `5.1.1`. The user's `.forward` (the first file in
//!    `forward_path` that exists; owned by the user or root, not group or
//!    world writable) is a target list run with the
//!    user's privileges.
//! 4. Else the mailbox: `mailbox_command` (run like a command target,
//!    after the same macro expansion as `luser_relay` plus `$home` and
//!    `$shell`, characters outside Postfix's default
//!    `command_expansion_filter` in the values replaced by `_`);
//!    else `home_mailbox` under the home directory (`Maildir/` style when
//!    it ends in `/`, else mbox); else the mbox file
//!    `mail_spool_directory/USER`.
//!
//! Targets (`aliases(5)`), separated by commas or newlines, optionally in
//! double quotes: `|command` runs `/bin/sh -c command` with the message
//! (with `Return-Path:` and `Delivered-To:` prepended) on standard input
//! and `SENDER`, `RECIPIENT`, `LOCAL`, `DOMAIN`, `EXTENSION`, `HOME`,
//! `USER`, `SHELL`, `PATH=/usr/bin:/bin` in its environment, within
//! `command_time_limit`: exit 0 delivers, 75 (`EX_TEMPFAIL`) or a signal
//! defers `4.3.0`, anything else or the time limit bounces `5.3.0` with
//! the command's output (at most 200 bytes) in the reason; `/file` appends
//! in mbox format (`/dir/` writes a Maildir); `:include:/path` reads more
//! targets from a file (at most 10 levels deep, as a loop guard); `\user`
//! delivers to the user's mailbox without alias or `.forward` processing;
//! anything else is an address to forward to.
//!
//! Commands and files are allowed only in the kinds of lists that
//! `allow_mail_to_commands` and `allow_mail_to_files` name (`alias`,
//! `forward`, `include`; by default not in `:include:` files), else the
//! target bounces with `5.7.1`.
//!
//! The recipient's result is the worst of its targets' results: any
//! deferral defers it (all its targets are retried), else any bounce
//! bounces it.
//!
//! SECURITY: runs as root (master.toml `unpriv = false`) to deliver as
//! each user: commands run in a child with the user's (or
//! `default_privs`') user and group ID; files and mailboxes are written
//! with the effective IDs switched around each write (Postfix
//! `set_eugid()`). Not run as root, or in `development_mode`, everything
//! runs as the user the daemon runs as.
//!
//! DIAGNOSTICS: one Postfix-style line per recipient (`ID: to=<a@b>,
//! relay=local, delay=0.01, delays=0/0/0/0.01, dsn=2.0.0, status=sent
//! (delivered to mailbox)`).
//!
//! CONFIGURATION PARAMETERS: `alias_maps`, `allow_mail_to_commands`,
//! `allow_mail_to_files`, `default_privs`, `forward_path`,
//! `home_mailbox`, `mailbox_command`, `mail_spool_directory`,
//! `luser_relay`, `mailbox_size_limit`, `recipient_delimiter`,
//! `command_time_limit`, `deliver_lock_attempts`, `deliver_lock_delay`,
//! `stale_lock_time`, `ipc_timeout`, `queue_directory`,
//! `development_mode`.

mod command;
mod targets;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use postern_config::Config;
use postern_ipc::deliver::{Action, RcptStatus, Recipient};
use postern_mailstore::{Delivery, LockOptions, Mailbox};
use postern_maps::{Maps, Syntax};
use postern_server::{Conn, Context};
use postern_util::{privs, warn};

use targets::Target;

/// How deep `:include:` files may nest.
const MAX_INCLUDE_DEPTH: usize = 10;

fn main() {
    postern_server::single::run("local", |ctx| {
        let aliases = Maps::open(&ctx.config.list("alias_maps"), Syntax::Aliases)
            .map_err(|e| format!("alias_maps: {e}"))?;
        Ok(move |conn: Conn, ctx: &Context| serve(conn, ctx, &aliases))
    })
}

/// Whom a delivery runs as.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) name: String,
    pub(crate) home: PathBuf,
    pub(crate) shell: String,
}

impl Who {
    fn from_user(u: &nix::unistd::User) -> Who {
        Who {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            name: u.name.clone(),
            home: u.dir.clone(),
            shell: u.shell.to_string_lossy().into_owned(),
        }
    }
}

/// What stays the same for every recipient of one request.
struct Job<'a> {
    cfg: &'a Config,
    aliases: &'a Maps,
    sender: &'a str,
    content: &'a [u8],
    limit: u64,
    locking: LockOptions,
    /// Switch to the recipient's IDs for each delivery.
    switch_ids: bool,
}

/// The recipient being delivered and its parts.
pub(crate) struct Rcpt<'a> {
    pub(crate) address: &'a str,
    pub(crate) local: String,
    pub(crate) user: String,
    pub(crate) extension: String,
    pub(crate) domain: String,
    /// The delimiter character that starts the extension, empty if none.
    pub(crate) delimiter: String,
}

impl<'a> Rcpt<'a> {
    fn new(address: &'a str, delimiter: &str) -> Rcpt<'a> {
        let (local, domain) = match address.rfind('@') {
            Some(at) => (&address[..at], &address[at + 1..]),
            None => (address, ""),
        };
        let local = local.to_lowercase();
        let (user, extension, delimiter) = match postern_maps::split_extension(&local, delimiter) {
            Some((u, e)) => {
                let d = e.chars().next().map(String::from).unwrap_or_default();
                (u.to_string(), e[d.len()..].to_string(), d)
            }
            None => (local.clone(), String::new(), String::new()),
        };
        Rcpt {
            address,
            local,
            user,
            extension,
            domain: domain.to_lowercase(),
            delimiter,
        }
    }
}

/// Handles one delivery request.
fn serve(conn: Conn, ctx: &Context, aliases: &Maps) {
    let cfg = &ctx.config;
    postern_server::agent::serve(conn, ctx, "local", |req, content, rcpt| {
        let job = Job {
            cfg,
            aliases,
            sender: &req.sender,
            content,
            limit: cfg.size("mailbox_size_limit"),
            locking: LockOptions::from_config(cfg),
            switch_ids: privs::is_root() && !cfg.bool("development_mode"),
        };
        deliver_one(&job, rcpt)
    });
}

pub(crate) fn status(action: Action, dsn: &str, reason: String) -> RcptStatus {
    RcptStatus::new(action, dsn, reason)
}

pub(crate) fn defer(dsn: &str, reason: String) -> RcptStatus {
    status(Action::Delayed, dsn, reason)
}

fn bounce(dsn: &str, reason: String) -> RcptStatus {
    status(Action::Failed, dsn, reason)
}

fn delivered(reason: &str) -> RcptStatus {
    status(Action::Delivered, "2.0.0", reason.into())
}

/// Whether the message header has `Delivered-To: address` (Postfix
/// `delivered_hdr_find()`).
fn has_delivered_to(content: &[u8], address: &str) -> bool {
    for line in content.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        if name.eq_ignore_ascii_case(b"delivered-to")
            && String::from_utf8_lossy(&value[1..])
                .trim()
                .eq_ignore_ascii_case(address)
        {
            return true;
        }
    }
    false
}

/// Delivers to one recipient.
fn deliver_one(job: &Job<'_>, r: &Recipient) -> RcptStatus {
    let rcpt = Rcpt::new(&r.address, &job.cfg.str("recipient_delimiter"));
    if has_delivered_to(job.content, r.address.as_str()) {
        return bounce(
            "5.4.6",
            format!("mail forwarding loop for {}", r.address.to_lowercase()),
        );
    }
    // Aliases: with the extension first, then without.
    let mut keys = vec![rcpt.local.clone()];
    if rcpt.user != rcpt.local {
        keys.push(rcpt.user.clone());
    }
    for key in keys {
        match job.aliases.lookup(&key) {
            Ok(Some(rhs)) => return deliver_alias(job, &rcpt, &key, &rhs),
            Ok(None) => {}
            Err(e) => {
                warn!("alias_maps lookup failure: {e}");
                return defer("4.3.0", "alias database unavailable".into());
            }
        }
    }
    deliver_user(job, &rcpt, true)
}

/// Accounts looked up lately (`default_privs`, the process's own): an
/// agent serves many deliveries in a row, and each lookup reads the
/// password file (or asks NSS). Kept 2 s, as the lookup tables' NSS
/// answers.
fn who_lately() -> &'static std::sync::Mutex<postern_util::cache::TtlCache<String, Who>> {
    static WHO: std::sync::OnceLock<std::sync::Mutex<postern_util::cache::TtlCache<String, Who>>> =
        std::sync::OnceLock::new();
    WHO.get_or_init(|| {
        std::sync::Mutex::new(postern_util::cache::TtlCache::new(
            std::time::Duration::from_secs(2),
            16,
        ))
    })
}

/// `user` from the password database, through [`who_lately`]; only
/// found accounts are kept.
fn user_lately(
    key: &str,
    lookup: impl FnOnce() -> nix::Result<Option<nix::unistd::User>>,
) -> nix::Result<Option<Who>> {
    let cache = || who_lately().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(who) = cache().get(key) {
        return Ok(Some(who));
    }
    let found = lookup()?.map(|u| Who::from_user(&u));
    if let Some(who) = &found {
        cache().put(key.to_string(), who.clone());
    }
    Ok(found)
}

/// The privileges for alias targets: `default_privs`.
fn alias_privs(job: &Job<'_>) -> Result<Who, RcptStatus> {
    if !job.switch_ids {
        return current_who();
    }
    let name = job.cfg.str("default_privs");
    match user_lately(&format!("name:{name}"), || {
        nix::unistd::User::from_name(&name)
    }) {
        Ok(Some(u)) if u.uid != 0 => Ok(u),
        Ok(_) => {
            warn!("default_privs: unknown or privileged user \"{name}\"");
            Err(defer("4.3.5", "mail system configuration error".into()))
        }
        Err(e) => {
            warn!("default_privs: lookup of \"{name}\": {e}");
            Err(defer("4.3.0", "user database unavailable".into()))
        }
    }
}

/// The user this process runs as.
fn current_who() -> Result<Who, RcptStatus> {
    let uid = nix::unistd::geteuid();
    match user_lately(&format!("uid:{uid}"), || nix::unistd::User::from_uid(uid)) {
        Ok(Some(u)) => Ok(u),
        _ => Ok(Who {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            name: String::new(),
            home: PathBuf::from("/"),
            shell: "/bin/sh".into(),
        }),
    }
}

fn deliver_alias(job: &Job<'_>, rcpt: &Rcpt<'_>, name: &str, rhs: &str) -> RcptStatus {
    let who = match alias_privs(job) {
        Ok(w) => w,
        Err(s) => return s,
    };
    let owner = format!("owner-{name}");
    let sender = match job.aliases.lookup(&owner) {
        Ok(Some(_)) if !name.starts_with("owner-") => {
            if rcpt.domain.is_empty() {
                owner
            } else {
                format!("{owner}@{}", rcpt.domain)
            }
        }
        Ok(_) => job.sender.to_string(),
        Err(e) => {
            warn!("alias_maps lookup failure: {e}");
            return defer("4.3.0", "alias database unavailable".into());
        }
    };
    let list = targets::parse(rhs);
    deliver_targets(job, rcpt, &who, &sender, list, "alias")
}

/// Delivers every target in `list` (and in included files) and combines
/// the results.
fn deliver_targets(
    job: &Job<'_>,
    rcpt: &Rcpt<'_>,
    who: &Who,
    sender: &str,
    list: Vec<Target>,
    class: &'static str,
) -> RcptStatus {
    let mut out = Collected::default();
    expand(job, rcpt, who, list, class, 0, &mut out);
    if !out.forward.is_empty() {
        let fwd = forward_to(job, rcpt, sender, &out.forward);
        out.results.push(fwd);
    }
    combine(out.results)
}

/// What the targets of one recipient came to.
#[derive(Default)]
struct Collected {
    /// Results of the deliveries done.
    results: Vec<RcptStatus>,
    /// Addresses to forward to, without duplicates.
    forward: Vec<String>,
}

fn expand(
    job: &Job<'_>,
    rcpt: &Rcpt<'_>,
    who: &Who,
    list: Vec<Target>,
    class: &'static str,
    depth: usize,
    out: &mut Collected,
) {
    for t in list {
        match t {
            Target::Address(a) => {
                if !out.forward.contains(&a) {
                    out.forward.push(a);
                }
            }
            Target::Command(c) => {
                out.results
                    .push(if allowed(job, "allow_mail_to_commands", class) {
                        command::run(job_env(job), rcpt, who, &c)
                    } else {
                        bounce("5.7.1", "mail to command is restricted".into())
                    })
            }
            Target::File(f) => out
                .results
                .push(if allowed(job, "allow_mail_to_files", class) {
                    deliver_file(job, rcpt, Some(who), &f, true)
                } else {
                    bounce("5.7.1", "mail to file is restricted".into())
                }),
            Target::Mailbox(user) => {
                let mut r = Rcpt::new(rcpt.address, "");
                r.local.clone_from(&user);
                r.user = user;
                out.results.push(deliver_user(job, &r, false));
            }
            Target::Include(path) => {
                if depth >= MAX_INCLUDE_DEPTH {
                    out.results.push(bounce(
                        "5.4.6",
                        format!("mail forwarding loop: :include: nested too deep at {path}"),
                    ));
                    continue;
                }
                match read_owned_file(Path::new(&path), None, who, job.switch_ids) {
                    Ok(text) => {
                        let list = targets::parse(&text);
                        expand(job, rcpt, who, list, "include", depth + 1, out);
                    }
                    Err(s) => out.results.push(s),
                }
            }
        }
    }
}

/// Whether the `class` of target list (`alias`, `forward`, `include`) may
/// deliver to commands or files (`param` is `allow_mail_to_commands` or
/// `allow_mail_to_files`).
fn allowed(job: &Job<'_>, param: &str, class: &str) -> bool {
    job.cfg
        .list(param)
        .iter()
        .any(|c| c.eq_ignore_ascii_case(class))
}

/// Settings the command runner needs.
fn job_env<'a>(job: &'a Job<'a>) -> command::Env<'a> {
    command::Env {
        sender: job.sender,
        content: job.content,
        switch_ids: job.switch_ids,
        time_limit: job.cfg.time("command_time_limit"),
    }
}

/// The worst result: any deferral, else any bounce, else expanded when
/// something was forwarded, else delivered.
fn combine(results: Vec<RcptStatus>) -> RcptStatus {
    let rank = |a: Action| match a {
        Action::Delayed => 3,
        Action::Failed => 2,
        Action::Expanded => 1,
        _ => 0,
    };
    results
        .into_iter()
        .reduce(|a, b| {
            if rank(b.action) > rank(a.action) {
                b
            } else {
                a
            }
        })
        .unwrap_or_else(|| bounce("5.3.0", "alias or forward expands to nothing".into()))
}

/// Re-injects the message to `to` through cleanup (Postfix
/// `forward.c`), with `Delivered-To:` prepended.
fn forward_to(job: &Job<'_>, rcpt: &Rcpt<'_>, sender: &str, to: &[String]) -> RcptStatus {
    use postern_ipc::cleanup::{Client, Recipient};
    let result = (|| {
        let mut c = Client::connect(
            &job.cfg.path("queue_directory"),
            job.cfg.time("ipc_timeout"),
            0,
        )?;
        c.sender(sender)?;
        for a in to {
            c.recipient(&Recipient {
                address: a,
                ..Recipient::default()
            })?;
        }
        c.begin_content()?;
        c.write_content(format!("Delivered-To: {}\n", rcpt.address.to_lowercase()).as_bytes())?;
        c.write_content(job.content)?;
        c.end_content()?;
        c.finish()
    })();
    match result {
        Ok(o) if o.accepted() => status(
            Action::Expanded,
            "2.0.0",
            format!("forwarded as {}", o.queue_id),
        ),
        Ok(o) => {
            let (_, _, text) = o.smtp_reply();
            defer("4.3.0", format!("cannot forward: {text}"))
        }
        Err(e) => {
            warn!("forward to cleanup: {e}");
            defer("4.3.0", format!("cannot forward: {e}"))
        }
    }
}

/// The characters that `mailbox_command` expansions keep; others become
/// `_` (Postfix's default `command_expansion_filter`).
const COMMAND_SAFE: &str = "1234567890!@%-_=+:,./\
    abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Expands the local(8) macros `$user`, `$local`, `$extension`,
/// `$domain`, `$recipient`, `$home`, `$shell` (also as `${name}`) and `$$`
/// in `luser_relay` or `mailbox_command`; other `$` text is kept for the
/// shell (`$HOME`, `$EXTENSION`). With `filter`, characters outside
/// [`COMMAND_SAFE`] in the expanded values become `_`.
fn expand_macros(template: &str, rcpt: &Rcpt<'_>, who: Option<&Who>, filter: bool) -> String {
    let value = |name: &str| -> Option<String> {
        Some(match name {
            "recipient" => rcpt.address.to_string(),
            "extension" => rcpt.extension.clone(),
            "domain" => rcpt.domain.clone(),
            "local" => rcpt.local.clone(),
            "user" => rcpt.user.clone(),
            "home" => who?.home.to_string_lossy().into_owned(),
            "shell" => who?.shell.clone(),
            // Only with an extension (Postfix local.c).
            "recipient_delimiter" => rcpt.delimiter.clone(),
            _ => return None,
        })
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        } else {
            let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        match value(name) {
            Some(v) if len > 0 => {
                if filter {
                    out.extend(
                        v.chars()
                            .map(|c| if COMMAND_SAFE.contains(c) { c } else { '_' }),
                    );
                } else {
                    out.push_str(&v);
                }
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Delivers to a user: `.forward` (when `forward`), else the mailbox.
fn deliver_user(job: &Job<'_>, rcpt: &Rcpt<'_>, forward: bool) -> RcptStatus {
    let user = match nix::unistd::User::from_name(&rcpt.user) {
        Ok(Some(u)) => u,
        Ok(None) => {
            let relay = job.cfg.str("luser_relay");
            if !relay.is_empty() && forward {
                let to = expand_macros(&relay, rcpt, None, false);
                return forward_to(job, rcpt, job.sender, &[to]);
            }
            return bounce("5.1.1", format!("unknown user: \"{}\"", rcpt.local));
        }
        Err(e) => {
            warn!("user lookup of \"{}\": {e}", rcpt.user);
            return defer("4.3.0", "user database unavailable".into());
        }
    };
    let who = Who::from_user(&user);
    // In development mode everything runs as the current user.
    // Commands and files for root run as default_privs (Postfix: "command
    // delivery for root executes with $default_privs privileges").
    let base = if job.switch_ids && who.uid != 0 {
        Ok(who.clone())
    } else if job.switch_ids {
        alias_privs(job)
    } else {
        current_who()
    };
    let run_as = {
        match base {
            Ok(mut w) => {
                w.name = who.name.clone();
                w.home = who.home.clone();
                w.shell = who.shell.clone();
                w
            }
            Err(s) => return s,
        }
    };
    if forward {
        match read_forward(job, rcpt, &who) {
            Ok(text) => {
                let list = targets::parse(&text);
                let list: Vec<Target> = list
                    .into_iter()
                    .map(|t| match t {
                        // Forwarding to oneself means the mailbox.
                        Target::Address(a)
                            if a.eq_ignore_ascii_case(&who.name)
                                || a.eq_ignore_ascii_case(rcpt.address) =>
                        {
                            Target::Mailbox(who.name.clone())
                        }
                        t => t,
                    })
                    .collect();
                // An empty .forward means no forwarding.
                if !list.is_empty() {
                    return deliver_targets(job, rcpt, &run_as, job.sender, list, "forward");
                }
            }
            Err(s) if s.dsn.is_empty() => {}
            Err(s) => return s,
        }
    }
    let mailbox_command = job.cfg.str("mailbox_command");
    if !mailbox_command.is_empty() {
        let cmd = expand_macros(&mailbox_command, rcpt, Some(&who), true);
        return command::run(job_env(job), rcpt, &run_as, &cmd);
    }
    let home_mailbox = job.cfg.str("home_mailbox");
    let (path, owner) = if home_mailbox.is_empty() {
        let spool = job.cfg.path("mail_spool_directory");
        let path = spool.join(&who.name);
        let owner = if job.switch_ids {
            match prepare_spool_file(&spool, &path, &who) {
                Ok(true) => None,
                Ok(false) => Some(&who),
                Err(e) => return e,
            }
        } else {
            None
        };
        (path, owner)
    } else {
        (who.home.join(&home_mailbox), job.switch_ids.then_some(&who))
    };
    deliver_file(job, rcpt, owner, &path.to_string_lossy(), false)
}

/// The first `.forward` file in `forward_path` that exists, read as the
/// user (root may read its own). `Err` with an empty dsn: none exists.
fn read_forward(job: &Job<'_>, rcpt: &Rcpt<'_>, who: &Who) -> Result<String, RcptStatus> {
    let mut seen = Vec::new();
    for entry in job.cfg.list("forward_path") {
        let path = PathBuf::from(expand_macros(&entry, rcpt, Some(who), false));
        if seen.contains(&path) {
            continue;
        }
        match read_owned_file(&path, Some(who.uid), who, job.switch_ids) {
            Err(s) if s.dsn.is_empty() => seen.push(path),
            other => return other,
        }
    }
    Err(status(Action::Delayed, "", String::new()))
}

/// Gets a mailbox in the spool directory ready, as root: creates a
/// missing one and gives it to the user, refuses an existing one that is
/// not a plain file of the user's (a symlink, a hard link, another
/// owner). Returns whether to write it as root: when the spool directory
/// is not world-writable the user could not take the dotlock there
/// (Postfix `mailbox.c` locks spool mailboxes as root the same way).
fn prepare_spool_file(spool: &Path, path: &Path, who: &Who) -> Result<bool, RcptStatus> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |what: &str| {
        warn!("mailbox {}: {what}", path.display());
        bounce("5.2.0", format!("mailbox {}: {what}", path.display()))
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => std::os::unix::fs::fchown(&f, Some(who.uid), Some(who.gid))
            .map_err(|e| fail(&format!("cannot change owner: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path).map_err(|e| {
                defer(
                    "4.2.0",
                    format!("cannot stat mailbox {}: {e}", path.display()),
                )
            })?;
            if !meta.file_type().is_file() {
                return Err(fail("not a regular file"));
            }
            if meta.nlink() != 1 {
                return Err(fail("has more than one hard link"));
            }
            if meta.uid() != who.uid {
                return Err(fail("has the wrong owner"));
            }
        }
        Err(e) => {
            return Err(defer(
                "4.2.0",
                format!("cannot create mailbox {}: {e}", path.display()),
            ));
        }
    }
    let dir_mode = std::fs::metadata(spool).map(|m| m.mode()).unwrap_or(0);
    Ok(dir_mode & 0o002 == 0)
}

/// Reads a `.forward` or `:include:` file with `who`'s privileges. It
/// must not be group or world writable, and when `owner` is given be
/// owned by it or root. `Err` with an empty dsn means the file is
/// missing.
fn read_owned_file(
    path: &Path,
    owner: Option<u32>,
    who: &Who,
    switch_ids: bool,
) -> Result<String, RcptStatus> {
    let read = || -> Result<String, RcptStatus> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && owner.is_some() => {
                return Err(status(Action::Delayed, "", String::new()));
            }
            // A .forward that cannot be read now may be readable later.
            Err(e) if owner.is_some() => {
                return Err(defer(
                    "4.3.0",
                    format!("cannot open {}: {e}", path.display()),
                ));
            }
            Err(e) => {
                return Err(bounce(
                    "5.3.0",
                    format!("cannot open {}: {e}", path.display()),
                ));
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| defer("4.3.0", format!("cannot stat {}: {e}", path.display())))?;
        if meta.mode() & 0o022 != 0 {
            return Err(bounce(
                "5.3.0",
                format!("{} is group or world writable", path.display()),
            ));
        }
        if let Some(o) = owner
            && meta.uid() != o
            && meta.uid() != 0
        {
            return Err(bounce(
                "5.3.0",
                format!("{} has the wrong owner", path.display()),
            ));
        }
        std::io::read_to_string(file)
            .map_err(|e| defer("4.3.0", format!("cannot read {}: {e}", path.display())))
    };
    if switch_ids {
        match privs::as_user(who.uid, who.gid, read) {
            Ok(r) => r,
            Err(e) => Err(defer(
                "4.3.0",
                format!("cannot switch to uid/gid {}/{}: {e}", who.uid, who.gid),
            )),
        }
    } else {
        read()
    }
}

/// Appends to an mbox file, or writes into a Maildir when `path` ends in
/// `/`, as `who` (when given); `file_target` is a `/file` target (for
/// the reason text).
fn deliver_file(
    job: &Job<'_>,
    rcpt: &Rcpt<'_>,
    who: Option<&Who>,
    path: &str,
    file_target: bool,
) -> RcptStatus {
    let d = Delivery {
        sender: job.sender,
        recipient: rcpt.address,
        content: job.content,
        limit: job.limit,
    };
    let mailbox = if path.ends_with('/') {
        Mailbox::Maildir(path.into())
    } else {
        Mailbox::Mbox(path.into())
    };
    let write = || postern_mailstore::deliver(&mailbox, &d, &job.locking);
    let result = match who {
        Some(w) if job.switch_ids => match privs::as_user(w.uid, w.gid, write) {
            Ok(r) => r,
            Err(e) => {
                return defer(
                    "4.3.0",
                    format!("cannot switch to uid/gid {}/{}: {e}", w.uid, w.gid),
                );
            }
        },
        _ => write(),
    };
    match result {
        Ok(_) if file_target => delivered(&format!("delivered to file: {path}")),
        Ok(what) => delivered(what),
        Err(e) if e.temporary => defer(e.dsn, e.reason),
        Err(e) => bounce(e.dsn, e.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_delivered_to_in_the_header_only() {
        let m = b"Subject: x\nDelivered-To: Joe@Example.test\n\nDelivered-To: a@b\n";
        assert!(has_delivered_to(m, "joe@example.test"));
        assert!(!has_delivered_to(m, "a@b"));
    }

    #[test]
    fn forward_files_must_be_safe() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let who = current_who().unwrap();
        let path = dir.path().join(".forward");
        let read = |owner| read_owned_file(&path, owner, &who, false);
        // Missing: no dsn, so the caller goes on to the mailbox.
        assert_eq!(read(Some(who.uid)).unwrap_err().dsn, "");
        std::fs::write(&path, "a@b\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(Some(who.uid)).unwrap(), "a@b\n");
        // Owned by someone else: refused, unless that someone is root.
        let res = read(Some(who.uid.wrapping_add(4242)));
        if who.uid == 0 {
            assert!(res.is_ok(), "{res:?}");
        } else {
            assert!(res.unwrap_err().reason.ends_with("has the wrong owner"));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let err = read(Some(who.uid)).unwrap_err();
        assert_eq!((err.action, err.dsn.as_str()), (Action::Failed, "5.3.0"));
        assert!(
            err.reason.ends_with("is group or world writable"),
            "{err:?}"
        );
        // A missing :include: file bounces.
        let err = read_owned_file(&dir.path().join("nope"), None, &who, false).unwrap_err();
        assert_eq!(err.action, Action::Failed);
    }

    #[test]
    fn results_combine_worst_first() {
        let d = delivered("x");
        let e = status(Action::Expanded, "2.0.0", "fwd".into());
        let f = bounce("5.3.0", "no".into());
        let t = defer("4.3.0", "later".into());
        assert_eq!(combine(vec![d.clone(), e.clone()]).action, Action::Expanded);
        assert_eq!(combine(vec![e, f.clone(), d]).reason, "no");
        assert_eq!(combine(vec![f, t]).reason, "later");
        assert_eq!(combine(vec![]).action, Action::Failed);
    }

    #[test]
    fn splits_recipients() {
        let r = Rcpt::new("Joe+List@Example.TEST", "+");
        assert_eq!(
            (r.local.as_str(), r.user.as_str(), r.extension.as_str()),
            ("joe+list", "joe", "list")
        );
        assert_eq!(r.domain, "example.test");
        let x = |t| expand_macros(t, &r, None, false);
        assert_eq!(x("${user}-x@$domain"), "joe-x@example.test");
        assert_eq!(
            x("$username $USER $$user ${nope} $"),
            "$username $USER $user ${nope} $"
        );
        let r = Rcpt::new("a+x;rm -rf@h", "+");
        assert_eq!(
            expand_macros("deliver -e $extension", &r, None, true),
            "deliver -e x_rm_-rf"
        );
    }
}
