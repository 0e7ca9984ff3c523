//! sendmail(1): the Sendmail-compatible interface (Postfix `sendmail.c`).
//!
//! SYNOPSIS:
//! `sendmail [option ...] [recipient ...]`,
//! `mailq` (= `sendmail -bp`), `newaliases` (= `sendmail -bi`).
//!
//! By default sendmail reads a message from standard input until the end
//! of input or a line with only `.`, and queues it for delivery: it runs
//! postdrop(1) (set-group-id when installed), which writes the message
//! into the `maildrop` queue, where pickup(8) takes it to cleanup(8). Mail
//! submitted while the mail system is down waits in `maildrop/`.
//!
//! The options are Postfix's (see `args`): `-t` (recipients from the
//! `To:`, `Cc:` and `Bcc:` headers, in addition to those on the command
//! line; cleanup extracts them and removes `Bcc:`), `-i`/`-oi` (a lone `.`
//! does not end the message), `-f sender`/`-r sender`, `-F full_name`
//! (else `$NAME`, else the user's GECOS name), `-N dsn`, `-V envid`,
//! `-B 7BIT|8BITMIME`, `-G`, `-C`/`-c config_dir`, `-v`, and the modes
//! `-bm` (default), `-bp` (list the queue), `-bs` (SMTP on standard input
//! and output), `-bi`/`-I` (aliases), `-q` (flush the queue), `-qRsite`
//! and `-qIqueue_id` (deliver one site's or one message's mail now).
//! `-bp`, `-q`, `-qR` and `-qI` run postqueue(1) in place of sendmail
//! (`-p`, `-f`, `-s`, `-i`), as Postfix does. Options that
//! other programs pass out of habit (`-m`, `-n`, `-U`, `-x`, `-h N`,
//! `-L label`, `-R ret`, `-X file`, `-A...`, `-O...`, `-o...` other than
//! `-oi`, unknown letters) are ignored, as Postfix ignores them.
//!
//! Recipient arguments are parsed like an address header, so `"Name
//! <a@b>"`, comma or white-space separated lists and comments work.
//!
//! `newaliases` has no database to build: Postern's `hash:` tables, alias
//! databases included, are indexed in memory when a daemon reads the text
//! file. It checks every `alias_database` file instead, with the code
//! postalias(1) uses, reports each line that local(8) would skip
//! (`FILE, line N: ...`) and exits 65 if there are any.
//!
//! `-bd` runs `postern start` (Postfix runs `postfix start`): master in
//! the background; use `postern start-fg` or master itself to stay in the
//! foreground.
//!
//! SECURITY: sendmail runs with the user's privileges and is not
//! set-id; postdrop checks everything it is given again.
//!
//! DIAGNOSTICS: errors go to standard error and to the mail log. Exit
//! status (sysexits.h): 0 success, 64 usage, 65 bad input, 69 refused
//! (e.g. message too big, or a mode that is not implemented), 71
//! operating system error, 75 temporary failure (try again later), 77
//! permission denied, 78 configuration error.
//!
//! ENVIRONMENT: `MAIL_CONFIG` (configuration directory), `MAIL_VERBOSE`,
//! `NAME` (full name).
//!
//! CONFIGURATION PARAMETERS: `command_directory` (where postdrop is; when
//! it is not set explicitly, a postdrop next to this program is used
//! first, so a development build works), `queue_directory`,
//! `line_length_limit`, `header_size_limit`, `message_size_limit`,
//! `smtpd_recipient_limit` and `smtpd_banner` (with `-bs`),
//! `sendmail_fix_line_endings`, `alias_database`, `myhostname`.
//!
//! NOT IMPLEMENTED: `-bv` (address verification),
//! VERP (`-XV`), delivery reports
//! with a single `-v`.
//!
//! SEE ALSO: postdrop(1), pickup(8), postcat(1), cleanup(8).

mod address;
mod args;
mod enqueue;
mod exit;
mod input;
mod smtp;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User};
use postern_config::{Config, DEFAULT_CONFIG_DIR};
use postern_server::tool;
use postern_util::msg::{self, Level};
use postern_util::{debug, warn};
use postern_wire::RecordType;

use crate::args::{Args, Mode};
use crate::enqueue::{Envelope, Postdrop};
use crate::exit::{EX_CONFIG, EX_DATAERR, EX_NOINPUT, EX_OSERR, EX_UNAVAILABLE, EX_USAGE, Fatal};
use crate::input::{ContentReader, FixEol};

fn main() {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let program = argv
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("sendmail")
        .to_string();
    let rest = argv.split_off(1.min(argv.len()));
    let code = match run(&program, rest) {
        Ok(code) => code,
        Err(f) => {
            if !f.reported {
                tool::say(Level::Fatal, &f.text);
            } else if tool::logging() {
                msg::log(Level::Fatal, format_args!("{}", f.text));
            }
            f.code
        }
    };
    std::process::exit(code)
}

fn run(program: &str, argv: Vec<OsString>) -> Result<i32, Fatal> {
    tool::init(program);
    let args = args::parse(program, argv).map_err(|e| Fatal::new(EX_USAGE, e.0))?;
    let verbose = args.verbose > 0 || std::env::var_os("MAIL_VERBOSE").is_some();
    // The directory to pass on to postdrop: only when chosen explicitly,
    // so that an installed set-group-id postdrop uses its own default.
    let explicit_dir = args
        .config_dir
        .clone()
        .or_else(|| std::env::var_os("MAIL_CONFIG").map(PathBuf::from));
    let config_dir = explicit_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR));
    let config =
        Config::load(&config_dir, &[]).map_err(|e| Fatal::new(EX_CONFIG, e.to_string()))?;
    tool::start_logging(&config);
    msg::set_verbose(verbose);
    for note in &args.notes {
        debug!("{note}");
    }
    match args.mode {
        Mode::Enqueue => match args.flush_one.as_deref() {
            // -qRsite, -qIqueue_id.
            Some(what) => {
                let (flag, value) = what.split_at(1);
                let flag = if flag == "R" { "-s" } else { "-i" };
                run_postqueue(&config, explicit_dir.as_deref(), &[flag, value])
            }
            None => enqueue(&args, &config, explicit_dir.as_deref(), verbose),
        },
        Mode::Mailq => run_postqueue(&config, explicit_dir.as_deref(), &["-p"]),
        Mode::NewAliases => newaliases(program, &config),
        Mode::Flush => run_postqueue(&config, explicit_dir.as_deref(), &["-f"]),
        Mode::Smtp => smtp_session(&config, explicit_dir.as_deref(), verbose),
        Mode::Daemon => start_daemon(&config, explicit_dir.as_deref()),
        Mode::Verify => Err(Fatal::new(
            EX_UNAVAILABLE,
            "-bv: address verification is not implemented".into(),
        )),
        Mode::Ignore => Ok(0),
    }
}

/// `newaliases`: check every `alias_database` the way local(8) will read
/// it (the check postalias(1) does); there is no database file to build.
fn newaliases(program: &str, config: &Config) -> Result<i32, Fatal> {
    let mut problems = 0usize;
    for spec in config.list("alias_database") {
        let checked = postern_maps::check(&spec, postern_maps::Syntax::Aliases)
            .map_err(|e| Fatal::new(EX_NOINPUT, e.to_string()))?;
        for p in &checked.problems {
            eprintln!("{program}: warning: {p}");
            warn!("{p}");
        }
        problems += checked.problems.len();
    }
    if problems > 0 {
        return Err(Fatal::new(
            EX_DATAERR,
            format!("{problems} bad alias line(s); the mail system skips them"),
        ));
    }
    Ok(0)
}

/// `-bd`: what `postern start` does, by running it (Postfix runs
/// `postfix start`).
fn start_daemon(config: &Config, explicit_dir: Option<&Path>) -> Result<i32, Fatal> {
    let program = enqueue::command_path(config, "postern");
    let mut cmd = std::process::Command::new(&program);
    if let Some(dir) = explicit_dir {
        cmd.arg("-c").arg(dir);
    }
    cmd.arg("start");
    let status = cmd
        .status()
        .map_err(|e| Fatal::new(EX_OSERR, format!("cannot run {}: {e}", program.display())))?;
    Ok(status.code().unwrap_or(1))
}

/// The login name of the real user.
/// Becomes `postqueue` with `args` (Postfix sendmail runs postqueue for
/// `-bp`, `-q`, `-qR` and `-qI` the same way): postqueue is set-group-id
/// and reaches the showq and flush services, which sendmail cannot.
fn run_postqueue(
    config: &Config,
    explicit_dir: Option<&Path>,
    args: &[&str],
) -> Result<i32, Fatal> {
    use std::os::unix::process::CommandExt;
    let program = enqueue::command_path(config, "postqueue");
    let mut cmd = std::process::Command::new(&program);
    if let Some(dir) = explicit_dir {
        cmd.arg("-c").arg(dir);
    }
    cmd.args(args);
    let e = cmd.exec();
    Err(Fatal::new(
        EX_UNAVAILABLE,
        format!("execute {}: {e}", program.display()),
    ))
}

fn login_name() -> Result<(Uid, User), Fatal> {
    let uid = Uid::current();
    match User::from_uid(uid) {
        Ok(Some(user)) => Ok((uid, user)),
        _ => Err(Fatal::new(
            EX_OSERR,
            format!("no login name found for user ID {uid}"),
        )),
    }
}

/// The user's full name: `$NAME`, else the GECOS name (the text before
/// the first comma, `&` standing for the capitalised login name).
fn full_name(user: &User) -> Option<String> {
    if let Some(name) = std::env::var_os("NAME") {
        let name = name.to_string_lossy().into_owned();
        return (!name.is_empty()).then_some(name);
    }
    let gecos = user.gecos.to_string_lossy();
    let first = gecos.split(',').next().unwrap_or_default().trim();
    if first.is_empty() {
        return None;
    }
    let mut cap = user.name.clone();
    if let Some(c) = cap.get_mut(..1) {
        c.make_ascii_uppercase();
    }
    Some(first.replace('&', &cap))
}

fn enqueue(
    args: &Args,
    config: &Config,
    explicit_dir: Option<&Path>,
    verbose: bool,
) -> Result<i32, Fatal> {
    let fix_name = config.str("sendmail_fix_line_endings");
    let fix = FixEol::parse(&fix_name).ok_or_else(|| {
        Fatal::new(
            EX_USAGE,
            format!("invalid sendmail_fix_line_endings value: {fix_name}"),
        )
    })?;
    let (uid, user) = login_name()?;
    let sender = match &args.sender {
        Some(given) => {
            let (sender, several) = address::sender(given);
            if several {
                warn!("-f option specified malformed sender: {given}");
            }
            sender
        }
        None => user.name.clone(),
    };
    let recipients = address::recipients(&args.recipients);
    if recipients.is_empty() && !args.extract {
        return Err(Fatal::new(
            EX_USAGE,
            format!(
                "{sender}({uid}): Recipient addresses must be specified on the command line \
                 or via the -t option"
            ),
        ));
    }
    let line_limit = usize::try_from(config.int("line_length_limit")).unwrap_or(usize::MAX);
    let mut reader = ContentReader::new(io::stdin().lock(), line_limit, fix, args.dot_ends);
    let who = format!("{sender}({uid})");
    let read_error =
        |e: io::Error| Fatal::new(EX_DATAERR, format!("{who}: error reading input: {e}"));

    // Read the header block first: -t without recipients on the command
    // line needs a recipient header, and it is better to say so before
    // postdrop starts.
    let header_limit = u64::try_from(config.int("header_size_limit")).unwrap_or(0);
    let mut head: Vec<(RecordType, Vec<u8>)> = Vec::new();
    let mut head_bytes: u64 = 0;
    let mut complete = false;
    loop {
        let Some((kind, data)) = reader.next_record().map_err(read_error)? else {
            complete = true;
            break;
        };
        let ends = kind == RecordType::Normal && input::ends_headers(&data);
        head_bytes = head_bytes.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        head.push((kind, data));
        if ends {
            complete = true;
            break;
        }
        if head_bytes > header_limit {
            break;
        }
    }
    if args.extract && recipients.is_empty() && !input::has_recipient_header(&head, complete) {
        return Err(Fatal::new(
            EX_USAGE,
            format!("{who}: No recipient addresses found in message header"),
        ));
    }

    let envelope = Envelope {
        sender,
        full_name: args.full_name.clone().or_else(|| full_name(&user)),
        recipients,
        extract: args.extract,
        rewrite_context: if args.gateway { "remote" } else { "local" },
        encoding: args.encoding,
        envid: args.envid.clone(),
        ret: None,
        notify: args.notify.unwrap_or(0),
        notify_each: Vec::new(),
    };
    let mut pd = Postdrop::start(&enqueue::postdrop_path(config), explicit_dir, verbose)?;
    pd.envelope(&envelope)?;
    for (kind, data) in &head {
        pd.put(*kind, data)?;
    }
    if let Err(e) = enqueue::send_content(&mut pd, || reader.next_record()) {
        pd.abort();
        return Err(read_error(e));
    }
    let id = pd.finish()?;
    debug!(
        "{id}: from=<{}>, nrcpt={}{}",
        envelope.sender,
        envelope.recipients.len(),
        if envelope.extract { " (+ headers)" } else { "" }
    );
    Ok(0)
}

fn smtp_session(config: &Config, explicit_dir: Option<&Path>, verbose: bool) -> Result<i32, Fatal> {
    let (_, user) = login_name()?;
    let line_limit = usize::try_from(config.int("line_length_limit")).unwrap_or(usize::MAX);
    let settings = smtp::Settings {
        hostname: config.str("myhostname"),
        banner: config.str("smtpd_banner"),
        size_limit: config.size("message_size_limit"),
        recipient_limit: usize::try_from(config.int("smtpd_recipient_limit")).unwrap_or(0),
        full_name: full_name(&user),
    };
    let program = enqueue::postdrop_path(config);
    let mut submit = smtp::ViaPostdrop {
        program: &program,
        config_dir: explicit_dir,
        verbose,
        line_limit,
    };
    smtp::session(
        &settings,
        &mut submit,
        io::stdin().lock(),
        io::stdout().lock(),
    )
    .map_err(|e| Fatal::new(EX_OSERR, format!("SMTP session: {e}")))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gecos_full_names() {
        let user = |name: &str, gecos: &str| User {
            name: name.into(),
            passwd: std::ffi::CString::new("x").unwrap(),
            uid: Uid::from_raw(1000),
            gid: nix::unistd::Gid::from_raw(1000),
            gecos: std::ffi::CString::new(gecos).unwrap(),
            dir: PathBuf::from("/home/x"),
            shell: PathBuf::from("/bin/sh"),
        };
        // SAFETY of the test: NAME is not set in the test environment.
        if std::env::var_os("NAME").is_none() {
            assert_eq!(
                full_name(&user("alice", "Alice Example,,,")),
                Some("Alice Example".into())
            );
            assert_eq!(
                full_name(&user("bob", "& Builder")),
                Some("Bob Builder".into())
            );
            assert_eq!(full_name(&user("carol", "")), None);
        }
    }
}
