//! postdrop(1): the mail posting agent (Postfix `postdrop.c`).
//!
//! SYNOPSIS: `postdrop [-rv] [-c config_dir]`
//!
//! postdrop reads one message from standard input as a stream of queue
//! records (the form sendmail(1) produces: envelope, `M`, content, `X`,
//! `E`; see [`postern_wire::Rules::Post`]), checks it record by record,
//! and writes it as a queue file into the `maildrop` queue, where pickup(8)
//! finds it. Then it tells pickup about the new file (`W` on
//! `public/pickup`); when the mail system is down the file simply waits
//! in `maildrop/` until pickup runs.
//!
//! postdrop writes the arrival time and two attributes of its own, `uid`
//! and `login` of the real user ID that ran it (Postfix pickup takes the
//! same information from the file owner). Whatever the submitter sends is
//! checked: record types per segment, record lengths (`line_length_limit`,
//! at least 4096 bytes for envelope records), the whole input against
//! `message_size_limit`, addresses (UTF-8, no control characters), and
//! attribute names against a short list (see `copy::check_attr`). Unknown
//! attributes are dropped with a warning, as Postfix does.
//!
//! With `-r`, postdrop also reports the outcome on standard output as one
//! attribute-list record (`status` = the exit status, `reason`,
//! `queue_id`), which sendmail uses to say "queued as ID" (Postfix `-r`
//! uses its attribute protocol the same way).
//!
//! SECURITY: when installed, postdrop is set-group-id `setgid_group` so
//! that it can create files in the 0730 `maildrop` directory; maildrop
//! files get mode 0744 (ready, and readable by pickup). A set-group-id
//! postdrop ignores `MAIL_CONFIG` and refuses `-o`, and `-c` with another
//! directory than the default, unless run by root, so that a user cannot point it at another spool or lift the
//! limits. In development mode it simply runs as the invoking user, who
//! owns the spool.
//!
//! DIAGNOSTICS: problems go to the log (`maillog_file` or syslog) and to
//! standard error. Exit status (sysexits.h): 0 success, 64 usage error, 65
//! malformed input, 69 message too big, 75 queue file could not be
//! written (try again later), 77 permission refused, 78 configuration
//! error. On any error the partial file is removed.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`, `line_length_limit`,
//! `message_size_limit`, `maillog_file`, `syslog_facility`,
//! `syslog_name`.
//!
//! SEE ALSO: sendmail(1), pickup(8), postcat(1).

mod copy;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use nix::unistd::{Gid, Uid, User};
use postern_config::{Config, DEFAULT_CONFIG_DIR, take_common};
use postern_queue::{Queue, QueueFileWriter};
use postern_server::tool;
use postern_util::debug;
use postern_util::msg::{self, Level};
use postern_util::sysexits::{
    EX_CONFIG, EX_DATAERR, EX_NOPERM, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE,
};
use postern_wire::attr::AttrList;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

use crate::copy::{Failure, Limits};

/// Envelope records may be longer than content lines, but not much.
const MIN_RECORD_LIMIT: u32 = 4096;

/// Options of this program.
#[derive(Debug, Default)]
struct Options {
    config_dir: Option<PathBuf>,
    overrides: Vec<String>,
    reply: bool,
    verbose: bool,
}

/// Exits with `code` after logging `text` and telling the user.
fn die(code: i32, reply: bool, text: &str) -> ! {
    tool::say(Level::Fatal, text);
    if reply {
        send_reply(code, text, "");
    }
    std::process::exit(code)
}

/// Writes the `-r` reply record to standard output.
fn send_reply(status: i32, reason: &str, queue_id: &str) {
    let mut list = AttrList::new();
    list.put_u64("status", u64::try_from(status).unwrap_or(u64::MAX))
        .put_str("reason", reason)
        .put_str("queue_id", queue_id);
    let mut out = Vec::new();
    if list.encode_record(&mut out).is_ok() {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
    }
}

fn parse_args(argv: Vec<OsString>) -> Result<Options, String> {
    let mut argv = argv;
    let common = take_common(&mut argv).map_err(|e| e.to_string())?;
    let mut opts = Options {
        config_dir: common.given_config_dir(),
        overrides: common.overrides,
        ..Options::default()
    };
    for arg in argv.iter().skip(1) {
        let Some(flags) = arg.to_str().and_then(|a| a.strip_prefix('-')) else {
            return Err(format!("unexpected argument: {}", arg.to_string_lossy()));
        };
        if flags.is_empty() {
            return Err("usage: postdrop [-rv] [-c config_dir]".into());
        }
        for flag in flags.chars() {
            match flag {
                'r' => opts.reply = true,
                'v' => opts.verbose = true,
                _ => {
                    return Err(format!(
                        "usage: postdrop [-rv] [-c config_dir] (bad option -{flag})"
                    ));
                }
            }
        }
    }
    Ok(opts)
}

fn main() {
    tool::init("postdrop");
    let opts = match parse_args(std::env::args_os().collect()) {
        Ok(o) => o,
        Err(e) => die(EX_USAGE, false, &e),
    };
    let uid = Uid::current();
    // Set-group-id: the environment and the command line come from the
    // user, who must not choose the spool or the limits.
    let privileged = Gid::current() != Gid::effective() && !uid.is_root();
    let other_dir = opts
        .config_dir
        .as_ref()
        .is_some_and(|d| d.as_path() != std::path::Path::new(DEFAULT_CONFIG_DIR));
    if privileged && (other_dir || !opts.overrides.is_empty()) {
        die(
            EX_NOPERM,
            opts.reply,
            "-c and -o are not allowed when postdrop runs set-group-id",
        );
    }
    let config_dir = match opts.config_dir.clone() {
        // The environment is the user's too: only the default will do.
        None if privileged => PathBuf::from(DEFAULT_CONFIG_DIR),
        given => postern_config::config_dir(given),
    };
    let config = match Config::load(&config_dir, &opts.overrides) {
        Ok(c) => c,
        Err(e) => die(EX_CONFIG, opts.reply, &e.to_string()),
    };
    tool::start_logging(&config);
    msg::set_verbose(opts.verbose);

    let login = User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"));
    let queue_dir = config.path("queue_directory");
    let line_limit = u32::try_from(config.int("line_length_limit")).unwrap_or(u32::MAX);
    let limits = Limits {
        max_record: line_limit.max(MIN_RECORD_LIMIT),
        max_input: config.size("message_size_limit"),
    };

    // The writer removes its file when dropped unfinished, so every error
    // path below leaves nothing behind. Signals that would kill the
    // process (the user pressing ^C at sendmail, a hangup) only set a
    // flag: the copy stops at the next read (sendmail dies too, so that
    // read sees the end of input) and the file is removed.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGHUP, SIGINT, SIGQUIT, SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            die(EX_TEMPFAIL, opts.reply, &format!("signal handler: {e}"));
        }
    }
    let outcome = (|| -> Result<(String, copy::Summary), (i32, String)> {
        let mut writer = QueueFileWriter::create(&queue_dir, Queue::Maildrop)
            .map_err(|e| (EX_TEMPFAIL, format!("uid={uid}: create maildrop file: {e}")))?;
        writer.set_extra_mode(0o044);
        // The message comes at once from standard input.
        writer.start_dir_sync();
        let chunk = usize::try_from(config.int("line_length_limit")).unwrap_or(usize::MAX);
        let setup = writer
            .set_line_chunk(chunk.min(usize::try_from(limits.max_record).unwrap_or(usize::MAX)))
            .and_then(|()| writer.time(SystemTime::now()))
            .and_then(|()| writer.attr("uid", uid.to_string().as_bytes()))
            .and_then(|()| writer.attr("login", login.as_bytes()));
        setup.map_err(|e| (EX_TEMPFAIL, format!("uid={uid}: write maildrop file: {e}")))?;
        let summary = copy::copy(io::stdin().lock(), &mut writer, uid.as_raw(), limits, &stop)
            .map_err(|f| {
                let code = match f {
                    Failure::Data(_) => EX_DATAERR,
                    Failure::TooBig => EX_UNAVAILABLE,
                    Failure::Io(_) => EX_TEMPFAIL,
                };
                (code, format!("uid={uid}: {f}"))
            })?;
        let id = writer
            .finish()
            .map_err(|e| (EX_TEMPFAIL, format!("uid={uid}: commit maildrop file: {e}")))?;
        Ok((id.to_string(), summary))
    })();
    let (id, summary) = match outcome {
        Ok(done) => done,
        Err((code, text)) => die(code, opts.reply, &text),
    };
    debug!(
        "{id}: uid={uid} from=<{}>, size={}, nrcpt={}",
        summary.sender, summary.bytes, summary.recipients
    );
    // The mail system may be down: the file waits in maildrop until
    // pickup scans it.
    if let Err(e) = postern_ipc::trigger::send(&queue_dir, postern_ipc::service::PICKUP, b"W") {
        debug!("{id}: cannot wake up pickup: {e}");
    }
    if opts.reply {
        send_reply(0, "", &id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("postdrop")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn options() {
        let o = parse_args(args(&["-r", "-c", "/tmp/x", "-v"])).unwrap();
        assert!(o.reply && o.verbose);
        assert_eq!(o.config_dir, Some(PathBuf::from("/tmp/x")));
        let o = parse_args(args(&["-rv", "-o", "a=b"])).unwrap();
        assert!(o.reply && o.verbose && o.config_dir.is_none());
        assert_eq!(o.overrides, ["a=b"]);
        assert!(parse_args(args(&["-x"])).is_err());
        assert!(parse_args(args(&["file"])).is_err());
        assert!(parse_args(args(&["-"])).is_err());
    }
}
