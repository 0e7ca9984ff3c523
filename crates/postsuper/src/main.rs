//! postsuper(1): queue maintenance for the administrator (Postfix
//! `postsuper.c`).
//!
//! SYNOPSIS: `postsuper [-psv] [-c config_dir] [-o name=value]
//! [-d queue_id] [-h queue_id] [-H queue_id] [-r queue_id] [queue ...]`
//!
//! DESCRIPTION: postsuper changes the queue; only root and `mail_owner`
//! (or, in development mode, the owner of the spool) may run it. As root it does
//! its work as `mail_owner`, like the daemons. The options may be
//! combined and repeated; `queue_id` may be `ALL` (upper case: every
//! message in the queues) or `-` (queue ids from standard input, one per
//! line). The queues default per operation as in Postfix:
//!
//! - `-d queue_id`: delete the message (and its `bounce`, `defer` and
//!   `trace` logs, before its queue file) from `hold`, `incoming`,
//!   `active`, `deferred` or `maildrop`;
//! - `-h queue_id`: put it on hold (from `incoming`, `active`,
//!   `deferred`; never from `maildrop`, which is not sanitized yet);
//! - `-H queue_id`: release it from `hold` into `deferred`;
//! - `-r queue_id`: requeue it: it goes back through pickup(8) and
//!   cleanup(8) as a new message, so that address rewriting and tables
//!   apply again (see `ops::requeue_one` for what is kept);
//! - `-s`: check and repair the spool: files in subdirectories (hashed
//!   queues) move up to their queue, names that do not match the file's
//!   inode number are fixed (with the message's logs), files that are not
//!   queue ids go to `corrupt`, non-files are removed;
//! - `-p`: remove temporary files left by crashed writers: not ready,
//!   five minutes old and held by no live writer (writers hold a lock on
//!   their file, see `postern_queue::in_use`), or a day old where the
//!   lock cannot be checked (Postfix's rule); a locked file never;
//! - `-v`: verbose logging.
//!
//! Without an operation, `-s` and `-p` are done. Operations on named
//! messages are refused after `-s` renamed files to match their inode
//! numbers (the ids given may name other messages now). Files of a
//! running system are changed with rename(2) and unlink(2) and each
//! directory is fsynced after a change, so a message is never left half
//! deleted; the structure check is best run while the system is down.
//!
//! DIAGNOSTICS: each message changed is reported (`ID: removed`, `ID:
//! placed on hold`, ...), then a summary (`Deleted: 3 messages`,
//! `Requeued: ...`, `Placed on hold: ...`, `Released from hold: ...`,
//! `Renamed to match inode number: ...`), on standard error and in the
//! mail log. Exit status (sysexits.h): 0 success, 64 usage error, 74 a
//! spool operation failed, 77 not allowed, 78 configuration error.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `mail_owner`,
//! `development_mode`.
//!
//! SEE ALSO: postqueue(1), postcat(1), qmgr(8), pickup(8).

mod ops;

use std::ffi::OsString;
use std::io::{self, BufRead};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use postern_config::{Config, config_dir, option_value, take_common};
use postern_queue::{Queue, QueueId};
use postern_server::tool::{self, die};
use postern_util::msg::{self, Level};
use postern_util::privs;
use postern_util::sysexits::{EX_CONFIG, EX_IOERR, EX_NOPERM, EX_USAGE};

use crate::ops::{Counts, DEFAULT_QUEUES, HOLD_QUEUES, Mass, RELEASE_QUEUES, Report};

const USAGE: &str = "usage: postsuper [-c config_dir] [-o name=value] [-d queue_id (delete)] \
                     [-h queue_id (hold)] [-H queue_id (un-hold)] [-p (purge temporary files)] \
                     [-r queue_id (requeue)] [-s (structure fix)] [-v (verbose)] [queue...]";

/// Longest queue id line read from standard input.
const MAX_LINE: usize = 1024;

/// Reports on standard error and in the mail log, as Postfix's msg_info.
struct Out;

impl Report for Out {
    fn info(&mut self, text: &str) {
        tool::say(Level::Info, text);
    }

    fn warn(&mut self, text: &str) {
        tool::say(Level::Warning, text);
    }
}

#[derive(Debug, Default)]
struct Args {
    config_dir: Option<std::path::PathBuf>,
    overrides: Vec<String>,
    delete: Vec<String>,
    hold: Vec<String>,
    release: Vec<String>,
    requeue: Vec<String>,
    structure: bool,
    purge: bool,
    verbose: bool,
    queues: Vec<Queue>,
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
    let mut a = Args {
        config_dir: common.given_config_dir(),
        overrides: common.overrides,
        ..Args::default()
    };
    let mut it = argv.into_iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let arg = arg.into_string().map_err(|_| USAGE.to_string())?;
        if arg == "--" {
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            // The first queue name ends the options (Postfix getopt).
            a.queues.push(queue_name(&arg)?);
            break;
        };
        for (i, c) in flags.char_indices() {
            match c {
                's' => a.structure = true,
                'p' => a.purge = true,
                'v' => a.verbose = true,
                'd' | 'h' | 'H' | 'r' => {
                    let value = option_value(&flags[i + 1..], c, &mut it)?;
                    match c {
                        'd' => a.delete.push(value),
                        'h' => a.hold.push(value),
                        'H' => a.release.push(value),
                        _ => a.requeue.push(value),
                    }
                    break;
                }
                _ => return Err(USAGE.to_string()),
            }
        }
    }
    for q in it {
        let q = q.into_string().map_err(|_| USAGE.to_string())?;
        a.queues.push(queue_name(&q)?);
    }
    Ok(Parsed::Run(a))
}

fn queue_name(name: &str) -> Result<Queue, String> {
    match Queue::from_dir_name(name) {
        Some(q) if q != Queue::Corrupt => Ok(q),
        _ => Err(format!("invalid directory name: {name}")),
    }
}

/// Whether this user may change the queue: root, `mail_owner` (who owns
/// the queue files anyway), or in development mode the spool's owner
/// (everything runs as that user).
fn allowed(config: &Config) -> bool {
    let me = nix::unistd::Uid::current();
    if me.is_root() {
        return true;
    }
    if privs::lookup_user(&config.str("mail_owner")).is_ok_and(|o| o.uid == me) {
        return true;
    }
    let spool = config.path("queue_directory");
    config.bool("development_mode")
        && std::fs::metadata(spool).is_ok_and(|m| m.uid() == me.as_raw())
}

/// The ids named by `names` (`-` reads standard input); `ALL` is
/// handled by the caller. Bad ids are warned about and skipped.
fn named_ids(names: &[String], out: &mut Out) -> Vec<QueueId> {
    let mut ids = Vec::new();
    let mut push = |name: &str, out: &mut Out| match QueueId::parse(name) {
        Ok(id) => ids.push(id),
        Err(_) => out.warn(&format!(
            "invalid mail queue id: {}",
            name.chars().take(100).collect::<String>()
        )),
    };
    for name in names {
        match name.as_str() {
            "ALL" => {}
            "-" => {
                let stdin = io::stdin();
                for line in stdin.lock().split(b'\n') {
                    let Ok(line) = line else { break };
                    if line.len() > MAX_LINE {
                        out.warn("queue id line too long: skipped");
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if !text.is_empty() {
                        push(text, out);
                    }
                }
            }
            other => push(other, out),
        }
    }
    ids
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn main() {
    tool::init("postsuper");
    let args = match parse_args(std::env::args_os().collect()) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => die(EX_USAGE, &e),
    };
    let dir = config_dir(args.config_dir.clone());
    let config = match Config::load(&dir, &args.overrides) {
        Ok(c) => c,
        Err(e) => die(EX_CONFIG, &e.to_string()),
    };
    if !allowed(&config) {
        die(
            EX_NOPERM,
            "use of this command is reserved for the superuser",
        );
    }
    tool::start_logging(&config);
    msg::set_verbose(args.verbose);
    let spool = config.path("queue_directory");
    if let Err(e) = std::env::set_current_dir(&spool) {
        die(EX_IOERR, &format!("chdir {}: {e}", spool.display()));
    }
    // Files are changed as the owner of the queue, like the daemons do,
    // so that a compromised spool cannot lead root astray.
    if privs::is_root() && !config.bool("development_mode") {
        let owner = match privs::lookup_user(&config.str("mail_owner")) {
            Ok(o) => o,
            Err(e) => die(EX_CONFIG, &format!("mail_owner: {e}")),
        };
        if let Err(e) = privs::drop_to(&owner, None) {
            die(
                EX_NOPERM,
                &format!("drop privileges to {}: {e}", owner.name),
            );
        }
    }
    let code = match run(&spool, &args) {
        Ok(()) => 0,
        Err(e) => die(EX_IOERR, &e.to_string()),
    };
    std::process::exit(code)
}

fn run(spool: &Path, args: &Args) -> io::Result<()> {
    let mut out = Out;
    let mut counts = Counts::default();
    let all = |names: &[String], what: &str, out: &mut Out| {
        let all = names.iter().any(|n| n == "ALL");
        if all && names.len() > 1 {
            out.warn(&format!(
                "option \"-{what} ALL\" will ignore other command line queue IDs"
            ));
        }
        all
    };
    let mass = Mass {
        structure: args.structure,
        purge: args.purge,
        delete_all: all(&args.delete, "d", &mut out),
        requeue_all: all(&args.requeue, "r", &mut out),
        hold_all: all(&args.hold, "h", &mut out),
        release_all: all(&args.release, "H", &mut out),
    };
    let named = |names: &[String]| names.iter().any(|n| n != "ALL");
    let by_id =
        named(&args.delete) || named(&args.hold) || named(&args.release) || named(&args.requeue);
    let mut mass = mass;
    if mass == Mass::default() && !by_id {
        mass.structure = true;
        mass.purge = true;
    }
    let given = (!args.queues.is_empty()).then_some(args.queues.as_slice());
    let any_mass = mass != Mass::default();
    if any_mass {
        // One pass per kind of ALL, each over its own default queues.
        let general = Mass {
            hold_all: false,
            release_all: false,
            ..mass
        };
        if general != Mass::default() {
            ops::super_pass(
                spool,
                given.unwrap_or(&DEFAULT_QUEUES),
                general,
                &mut counts,
                &mut out,
            )?;
        }
        if mass.hold_all {
            let m = Mass {
                hold_all: true,
                ..Mass::default()
            };
            ops::super_pass(
                spool,
                given.unwrap_or(&HOLD_QUEUES),
                m,
                &mut counts,
                &mut out,
            )?;
        }
        if mass.release_all {
            let m = Mass {
                release_all: true,
                ..Mass::default()
            };
            ops::super_pass(
                spool,
                given.unwrap_or(&RELEASE_QUEUES),
                m,
                &mut counts,
                &mut out,
            )?;
        }
    }
    if by_id && counts.renamed > 0 {
        out.warn("QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS");
        die(EX_IOERR, "CHECK YOUR QUEUE IDS AND RE-ISSUE THE COMMAND");
    }
    if !mass.delete_all {
        for id in named_ids(&args.delete, &mut out) {
            if ops::delete_one(spool, given.unwrap_or(&DEFAULT_QUEUES), &id, &mut out)? {
                counts.deleted += 1;
            }
        }
    }
    if !mass.requeue_all {
        for id in named_ids(&args.requeue, &mut out) {
            if ops::requeue_one(spool, given.unwrap_or(&DEFAULT_QUEUES), &id, &mut out)? {
                counts.requeued += 1;
            }
        }
    }
    if !mass.hold_all {
        for id in named_ids(&args.hold, &mut out) {
            if ops::hold_one(spool, given.unwrap_or(&HOLD_QUEUES), &id, &mut out)? {
                counts.held += 1;
            }
        }
    }
    if !mass.release_all {
        for id in named_ids(&args.release, &mut out) {
            if ops::release_one(spool, given.unwrap_or(&RELEASE_QUEUES), &id, &mut out)? {
                counts.released += 1;
            }
        }
    }
    // Tell pickup and qmgr at once rather than at their next wakeup; a
    // system that is down finds the files when it starts.
    use postern_ipc::service::{PICKUP, QMGR};
    if counts.requeued > 0 {
        let _ = postern_ipc::trigger::send(spool, PICKUP, b"W");
    }
    if counts.released > 0 {
        let _ = postern_ipc::trigger::send(spool, QMGR, b"D");
    }
    let summary = [
        (counts.requeued, "Requeued"),
        (counts.deleted, "Deleted"),
        (counts.held, "Placed on hold"),
        (counts.released, "Released from hold"),
        (counts.renamed, "Renamed to match inode number"),
    ];
    for (n, what) in summary {
        if n > 0 {
            out.info(&format!("{what}: {n} message{}", plural(n)));
        }
    }
    if counts.renamed > 0 {
        out.warn("QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Args, String> {
        let argv = std::iter::once("postsuper")
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
        let a = parse(&[
            "-d", "ALL", "-dX", "-h", "-", "-H", "Y", "-r", "Z", "-spv", "deferred", "hold",
        ])
        .unwrap();
        assert_eq!(a.delete, ["ALL", "X"]);
        assert_eq!(a.hold, ["-"]);
        assert_eq!(a.release, ["Y"]);
        assert_eq!(a.requeue, ["Z"]);
        assert!(a.structure && a.purge && a.verbose);
        assert_eq!(a.queues, [Queue::Deferred, Queue::Hold]);
        assert!(parse(&["-x"]).is_err());
        assert!(parse(&["-d"]).is_err());
        assert!(
            parse(&["-s", "nonsense"])
                .unwrap_err()
                .contains("invalid directory name")
        );
        assert!(parse(&["-s", "corrupt"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap_err(), "help");
        let a = parse(&["-c", "/etc/x", "-o", "a=b", "-s"]).unwrap();
        assert_eq!(a.config_dir.as_deref(), Some(Path::new("/etc/x")));
    }
}
