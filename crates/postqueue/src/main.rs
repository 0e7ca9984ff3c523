//! postqueue(1): list and flush the mail queue (Postfix `postqueue.c`).
//!
//! SYNOPSIS:
//! `postqueue [-v] [-c config_dir] [-o name=value] -f`,
//! `... -i queue_id`, `... -j`, `... -p`, `... -s site`.
//!
//! DESCRIPTION: the user interface for queue operations that need no
//! privileges; sendmail(1) runs it for `mailq` and `-bp` (`-p`), `-q`
//! (`-f`), `-qIid` (`-i`) and `-qRsite` (`-s`).
//!
//! - `-p`: the traditional listing (see `listing`), read from the showq(8)
//!   service: queue id with `*` (active) or `!` (hold), size, arrival
//!   time, sender, then each recipient still to be delivered with the
//!   reason of its last failed attempt; `Mail queue is empty` or
//!   `-- N Kbytes in M Requests.`
//! - `-j`: the same, one JSON object per message and line.
//! - `-f`: flush: asks qmgr(8) (triggers `F`, `A`, `D`) to retry every
//!   deferred message now, ignoring its next-attempt time, and pickup(8)
//!   (`W`) to look at the maildrop queue.
//! - `-i queue_id`: asks flush(8) to deliver that message now.
//! - `-s site`: asks flush(8) to deliver the mail deferred for `site` (a
//!   domain, or an address literal `[ip]`) now; the site must be in
//!   `fast_flush_domains`.
//! - `-v`: verbose logging.
//!
//! When the mail system is down, `-p` and `-j` fail for ordinary users
//! (`Queue report unavailable - mail system is down`, status 69); root,
//! or the owner of the spool in development mode, gets the listing by
//! running `showq -S` directly, with a warning.
//!
//! SECURITY: when installed, postqueue is set-group-id `setgid_group` so
//! that it can reach the `public/` sockets. Then `-o` is refused, and so
//! is a configuration directory other than the default (`-c` or
//! `MAIL_CONFIG`) unless the user is root or the directory and its
//! `main.toml` belong to root and are writable by no one else.
//!
//! DIAGNOSTICS: problems go to standard error. Exit status (sysexits.h):
//! 0 success, 64 usage error, 69 the mail system is down or the request
//! was refused, 70 malformed answer from showq, 74 output error, 77
//! permission denied, 78 configuration error.
//!
//! ENVIRONMENT: `MAIL_CONFIG`; `TZ` for the arrival times shown.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `daemon_directory`,
//! `ipc_timeout`.
//!
//! SEE ALSO: showq(8), flush(8), qmgr(8), sendmail(1), postsuper(1).

mod listing;

use std::ffi::OsString;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::unistd::{Gid, Uid};
use postern_config::{Config, DEFAULT_CONFIG_DIR, config_dir, option_value, take_common};
use postern_ipc::flush::{self, Request, Status};
use postern_ipc::showq;
use postern_server::tool::{self, die};
use postern_util::sysexits::{
    EX_CONFIG, EX_IOERR, EX_NOPERM, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE,
};

const USAGE: &str = "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p \
                     | postqueue -s site";

/// The longest wait for a service's answer (ipc_timeout may be an hour,
/// which is no use to someone waiting at a terminal).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest wait for a busy service to take a trigger (Postfix
/// `trigger_timeout`).
const TRIGGER_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    List,
    Json,
    Flush,
    FlushFile(String),
    FlushSite(String),
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    config_dir: Option<PathBuf>,
    overrides: Vec<String>,
    verbose: bool,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut argv: Vec<OsString>) -> Result<Parsed, String> {
    if argv.iter().skip(1).any(|a| a == "--help") {
        return Ok(Parsed::Help);
    }
    let common = take_common(&mut argv).map_err(|e| e.to_string())?;
    let mut mode: Option<Mode> = None;
    let mut verbose = false;
    let set = |m: Mode, mode: &mut Option<Mode>| {
        if mode.is_some() {
            return Err(USAGE.to_string());
        }
        *mode = Some(m);
        Ok(())
    };
    let mut it = argv.into_iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(flags) = arg.to_str().and_then(|a| a.strip_prefix('-')) else {
            return Err(USAGE.to_string());
        };
        if flags.is_empty() {
            return Err(USAGE.to_string());
        }
        for (i, c) in flags.char_indices() {
            match c {
                'f' => set(Mode::Flush, &mut mode)?,
                'j' => set(Mode::Json, &mut mode)?,
                'p' => set(Mode::List, &mut mode)?,
                'v' => verbose = true,
                'i' | 's' => {
                    let value = option_value(&flags[i + 1..], c, &mut it)?;
                    let m = if c == 'i' {
                        Mode::FlushFile(value)
                    } else {
                        Mode::FlushSite(value)
                    };
                    set(m, &mut mode)?;
                    break;
                }
                _ => return Err(USAGE.to_string()),
            }
        }
    }
    let Some(mode) = mode else {
        return Err(USAGE.to_string());
    };
    Ok(Parsed::Run(Args {
        mode,
        config_dir: common.given_config_dir(),
        overrides: common.overrides,
        verbose,
    }))
}

/// Whether a set-group-id postqueue may read configuration from `dir`:
/// it and its main.toml belong to root and only root can change them.
fn trusted_dir(dir: &Path) -> bool {
    let safe = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0);
    safe(dir) && safe(&dir.join("main.toml"))
}

fn load_config(args: &Args) -> Config {
    let privileged = Gid::current() != Gid::effective() && !Uid::current().is_root();
    let dir = config_dir(args.config_dir.clone());
    if privileged {
        if !args.overrides.is_empty() {
            die(
                EX_NOPERM,
                "-o is not allowed when postqueue runs set-group-id",
            );
        }
        if dir != Path::new(DEFAULT_CONFIG_DIR) && !trusted_dir(&dir) {
            die(
                EX_NOPERM,
                &format!(
                    "{}: a non-default configuration directory must belong to root \
                     when postqueue runs set-group-id",
                    dir.display()
                ),
            );
        }
    }
    match Config::load(&dir, &args.overrides) {
        Ok(c) => c,
        Err(e) => die(EX_CONFIG, &e.to_string()),
    }
}

/// Formats a listing from `reader` to standard output.
fn format_listing<R: Read>(mut reader: showq::Reader<R>, json: bool) {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut compat = listing::Compat::default();
    let write_failed = |e: io::Error| -> ! {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // `postqueue -p | head`: not an error.
            std::process::exit(0);
        }
        die(EX_IOERR, &format!("output write error: {e}"))
    };
    loop {
        match reader.next_message() {
            Ok(Some(m)) => {
                let r = if json {
                    listing::json(&mut out, &m)
                } else {
                    compat.message(&mut out, &m)
                };
                if let Err(e) = r {
                    write_failed(e);
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = out.flush();
                die(
                    EX_SOFTWARE,
                    &format!("malformed showq server response: {e}"),
                );
            }
        }
    }
    if !json && let Err(e) = compat.finish(&mut out) {
        write_failed(e);
    }
    if let Err(e) = out.flush() {
        write_failed(e);
    }
}

/// Whether this user may read the queue directly: root, or the owner of
/// the spool (development mode).
fn may_read_spool(spool: &Path) -> bool {
    let me = Uid::effective();
    me.is_root() || std::fs::metadata(spool).is_ok_and(|m| m.uid() == me.as_raw())
}

fn show_queue(config: &Config, args: &Args, json: bool) {
    let spool = config.path("queue_directory");
    let wait = config.time("ipc_timeout").min(MAX_WAIT);
    match showq::connect(&spool, wait) {
        Ok(reader) => return format_listing(reader, json),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => die(
            EX_SOFTWARE,
            &format!(
                "Connect to the {} showq service: {e}",
                config.str("mail_name")
            ),
        ),
        Err(_) if may_read_spool(&spool) => {}
        Err(_) => die(
            EX_UNAVAILABLE,
            "Queue report unavailable - mail system is down",
        ),
    }
    eprintln!("postqueue: warning: Mail system is down -- accessing queue directly");
    let program = config.path("daemon_directory").join("showq");
    let mut cmd = Command::new(&program);
    cmd.arg("-S").arg("-c").arg(config.config_dir());
    for o in &args.overrides {
        cmd.arg("-o").arg(o);
    }
    let mut child = match cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => die(
            EX_UNAVAILABLE,
            &format!("Queue report unavailable - run {}: {e}", program.display()),
        ),
    };
    let Some(stdout) = child.stdout.take() else {
        die(EX_SOFTWARE, "showq: no output pipe");
    };
    format_listing(showq::Reader::new(stdout), json);
    match child.wait() {
        Ok(st) if st.success() => {}
        Ok(st) => die(
            EX_UNAVAILABLE,
            &format!("{} failed: {st}", program.display()),
        ),
        Err(e) => die(EX_UNAVAILABLE, &format!("wait for showq: {e}")),
    }
}

fn flush_queue(config: &Config) {
    use postern_ipc::service::{PICKUP, QMGR};
    let spool = config.path("queue_directory");
    // Postfix mail_flush_deferred and mail_flush_maildrop.
    let wait = config.time("ipc_timeout").min(TRIGGER_WAIT);
    let sent = postern_ipc::trigger::send_wait(&spool, QMGR, b"FAD", wait)
        .and_then(|()| postern_ipc::trigger::send_wait(&spool, PICKUP, b"W", wait));
    if let Err(e) = sent {
        postern_util::debug!("trigger: {e}");
        die(
            EX_UNAVAILABLE,
            "Cannot flush mail queue - mail system is down",
        );
    }
}

fn flush_request(config: &Config, req: Request) {
    let what = match &req {
        Request::SendFile(id) => {
            if postern_queue::QueueId::parse(id).is_err() {
                die(
                    EX_USAGE,
                    &format!(
                        "Cannot flush mail queue - invalid queue id: \"{}\"",
                        shorten(id)
                    ),
                );
            }
            id.clone()
        }
        Request::SendSite(site) => {
            if !flush::valid_site(site) {
                die(
                    EX_USAGE,
                    &format!(
                        "Cannot flush mail queue - invalid destination: \"{}\"",
                        shorten(site)
                    ),
                );
            }
            site.clone()
        }
    };
    let spool = config.path("queue_directory");
    let wait = config.time("ipc_timeout").min(MAX_WAIT);
    match flush::send(&spool, wait, &req) {
        Ok((Status::Ok, _)) => {}
        Ok((Status::Bad, _)) => die(
            EX_USAGE,
            &format!("Invalid request: \"{}\"", shorten(&what)),
        ),
        Ok((Status::Deny, _)) => die(
            EX_UNAVAILABLE,
            &format!(
                "Flush service is not configured for destination \"{}\"",
                shorten(&what)
            ),
        ),
        Ok((Status::Fail, _)) | Err(_) => die(
            EX_UNAVAILABLE,
            "Cannot flush mail queue - mail system is down",
        ),
    }
}

/// At most 100 characters of user input in a message, as Postfix.
fn shorten(s: &str) -> String {
    if s.chars().count() > 100 {
        format!("{}...", s.chars().take(100).collect::<String>())
    } else {
        s.to_string()
    }
}

fn main() {
    tool::init("postqueue");
    let args = match parse_args(std::env::args_os().collect()) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            println!(
                "{USAGE}\n\n\
                 -c config_dir   use main.toml in config_dir\n\
                 -o name=value   override a main.toml parameter\n\
                 -f              flush: retry all deferred mail now\n\
                 -i queue_id     deliver this message now\n\
                 -j              list the queue as JSON, one message per line\n\
                 -p              list the queue (mailq)\n\
                 -s site         deliver the mail for this site now\n\
                 -v              verbose logging"
            );
            return;
        }
        Err(e) => die(EX_USAGE, &e),
    };
    postern_util::msg::set_verbose(args.verbose);
    let config = load_config(&args);
    // A reader that goes away (`postqueue -p | head`) is not an error.
    let spool = config.path("queue_directory");
    if let Err(e) = std::env::set_current_dir(&spool) {
        die(EX_UNAVAILABLE, &format!("chdir {}: {e}", spool.display()));
    }
    match args.mode.clone() {
        Mode::List => show_queue(&config, &args, false),
        Mode::Json => show_queue(&config, &args, true),
        Mode::Flush => flush_queue(&config),
        Mode::FlushFile(id) => flush_request(&config, Request::SendFile(id)),
        Mode::FlushSite(site) => flush_request(&config, Request::SendSite(site)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Args, String> {
        let argv = std::iter::once("postqueue")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect();
        match parse_args(argv)? {
            Parsed::Run(a) => Ok(a),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn options() {
        assert_eq!(parse(&["-p"]).unwrap().mode, Mode::List);
        assert_eq!(parse(&["-j", "-v"]).unwrap().mode, Mode::Json);
        assert!(parse(&["-vf"]).unwrap().verbose);
        assert_eq!(
            parse(&["-i", "4Y5Lrq3yTsz1Qwm"]).unwrap().mode,
            Mode::FlushFile("4Y5Lrq3yTsz1Qwm".into())
        );
        assert_eq!(
            parse(&["-sexample.org"]).unwrap().mode,
            Mode::FlushSite("example.org".into())
        );
        let a = parse(&["-c", "/etc/x", "-o", "a=b", "-p"]).unwrap();
        assert_eq!(a.config_dir, Some(PathBuf::from("/etc/x")));
        assert_eq!(a.overrides, ["a=b"]);
        assert!(parse(&["-p"]).unwrap().config_dir.is_none());
        for bad in [
            &[][..],
            &["-p", "-f"],
            &["-x"],
            &["-p", "extra"],
            &["-i"],
            &["-"],
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.contains("usage") || e.contains("argument"),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(parse(&["--help"]).unwrap_err(), "help");
    }

    #[test]
    fn long_input_is_cut_in_messages() {
        assert_eq!(shorten("abc"), "abc");
        assert_eq!(shorten(&"x".repeat(150)).len(), 103);
    }
}
