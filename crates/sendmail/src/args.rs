//! The sendmail command line, parsed by hand like Postfix `sendmail.c`
//! (getopt with `"+A:B:C:F:GIL:N:O:R:UV:X:b:c:e:f:h:imno:p:r:q:tvx"`,
//! plus the special cases Postfix handles before getopt).
//!
//! Options cluster (`-ti`), values may be attached or separate (`-fuser`,
//! `-f user`, `-oi`, `-o i`), option parsing stops at the first word that
//! is not an option or after `--`, and an option letter nobody knows is
//! ignored, as every program that calls sendmail expects. Deviations from
//! Postfix, on purpose: `-c` names the configuration directory (Postfix
//! ignores `-c`; Postern's other commands spell it `-c`), `-n` is ignored
//! instead of refused, and `-X` takes a value and ignores it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// What the command is asked to do (Postfix `SM_MODE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read a message and queue it (the default; `-bm`).
    Enqueue,
    /// List the queue (`mailq`, `-bp`).
    Mailq,
    /// Rebuild the alias databases (`newaliases`, `-bi`, `-I`).
    NewAliases,
    /// Ask the queue manager to flush the queue (`-q`).
    Flush,
    /// SMTP on standard input and output (`-bs`).
    Smtp,
    /// Start the mail system (`-bd`).
    Daemon,
    /// Address verification (`-bv`).
    Verify,
    /// Nothing to do (`-bh`, `-bH`, `-qINTERVAL`).
    Ignore,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    /// The mode of operation.
    pub(crate) mode: Mode,
    /// `-C`/`-c`: configuration directory (a `main.toml` path names its
    /// directory).
    pub(crate) config_dir: Option<PathBuf>,
    /// `-t`: take recipients from the message headers.
    pub(crate) extract: bool,
    /// A line with only `.` ends the message (cleared by `-i`, `-oi`).
    pub(crate) dot_ends: bool,
    /// `-f`/`-r`: the envelope sender, as given.
    pub(crate) sender: Option<String>,
    /// `-F`: the sender's full name.
    pub(crate) full_name: Option<String>,
    /// Number of `-v` options.
    pub(crate) verbose: u32,
    /// `-B`: `7bit` or `8bit`.
    pub(crate) encoding: Option<&'static str>,
    /// `-V`: DSN envelope id.
    pub(crate) envid: Option<String>,
    /// `-N`: DSN notify bits (never 1, success 2, delay 4, failure 8).
    pub(crate) notify: Option<u8>,
    /// `-G`: gateway submission (rewrite in the remote context).
    pub(crate) gateway: bool,
    /// `-qR`/`-qI`: a flush of one site or one message (not implemented).
    pub(crate) flush_one: Option<String>,
    /// The recipient arguments, as given.
    pub(crate) recipients: Vec<String>,
    /// Notes about ignored or bad option values, for the log.
    pub(crate) notes: Vec<String>,
}

/// A usage error (`EX_USAGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

/// Option letters that take a value.
const WITH_VALUE: &[u8] = b"ABCFLNORVXbcefhoprq";

/// Parses `-N` (Postfix `dsn_notify_mask`): `never`, or a list of
/// `success`, `delay`, `failure`.
pub(crate) fn parse_notify(text: &str) -> Option<u8> {
    let mut bits = 0u8;
    for word in text.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        bits |= match word.to_ascii_lowercase().as_str() {
            "never" => 1,
            "success" => 2,
            "delay" => 4,
            "failure" => 8,
            _ => return None,
        };
    }
    // NEVER cannot be combined with anything else.
    (bits != 0 && (bits == 1 || bits & 1 == 0)).then_some(bits)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses the arguments after the program name; `program` is the base
/// name of argv\[0\] (`mailq` and `newaliases` select their mode).
pub(crate) fn parse(program: &str, args: Vec<OsString>) -> Result<Args, UsageError> {
    let mut a = Args {
        mode: match program {
            "mailq" => Mode::Mailq,
            "newaliases" => Mode::NewAliases,
            _ => Mode::Enqueue,
        },
        config_dir: None,
        extract: false,
        dot_ends: true,
        sender: None,
        full_name: None,
        verbose: 0,
        encoding: None,
        envid: None,
        notify: None,
        gateway: false,
        flush_one: None,
        recipients: Vec::new(),
        notes: Vec::new(),
    };
    let args: Vec<Vec<u8>> = args.into_iter().map(OsStringExt::into_vec).collect();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == b"--" {
            break;
        }
        // Not getopt compatible: a lone -q flushes the queue.
        if arg == b"-q" {
            a.mode = Mode::Flush;
            continue;
        }
        if arg == b"-XV" {
            a.notes.push("-XV (VERP) is not supported; ignored".into());
            continue;
        }
        let Some(cluster) = arg.strip_prefix(b"-").filter(|c| !c.is_empty()) else {
            i -= 1;
            break;
        };
        let mut pos = 0;
        while let Some(&opt) = cluster.get(pos) {
            pos += 1;
            if !WITH_VALUE.contains(&opt) {
                flag(&mut a, opt);
                continue;
            }
            let value: Vec<u8> = if pos < cluster.len() {
                let v = cluster.get(pos..).unwrap_or_default().to_vec();
                pos = cluster.len();
                v
            } else if let Some(next) = args.get(i) {
                i += 1;
                next.clone()
            } else {
                return Err(UsageError(format!(
                    "option requires an argument -- {}",
                    char::from(opt)
                )));
            };
            option(&mut a, opt, &value)?;
        }
    }
    a.recipients = args
        .get(i..)
        .unwrap_or_default()
        .iter()
        .map(|r| text(r))
        .collect();
    if a.extract && a.mode != Mode::Enqueue {
        return Err(UsageError("-t can be used only in delivery mode".into()));
    }
    if a.flush_one.is_some() && a.mode != Mode::Enqueue {
        return Err(UsageError(
            "-qR and -qI can be used only in delivery mode".into(),
        ));
    }
    if !a.recipients.is_empty() {
        let what = match a.mode {
            Mode::Mailq => Some("display queue mode"),
            Mode::Flush => Some("flush queue mode"),
            Mode::NewAliases => Some("alias initialization mode"),
            Mode::Smtp => Some("stand-alone mode"),
            Mode::Daemon => Some("daemon mode"),
            Mode::Enqueue | Mode::Verify | Mode::Ignore => None,
        };
        if let Some(what) = what {
            return Err(UsageError(format!("{what} requires no recipient")));
        }
    }
    Ok(a)
}

/// An option without a value.
fn flag(a: &mut Args, opt: u8) {
    match opt {
        b'G' => a.gateway = true,
        b'I' => a.mode = Mode::NewAliases,
        b'i' => a.dot_ends = false,
        b't' => a.extract = true,
        b'v' => a.verbose += 1,
        // -m, -n, -U, -x and any unknown letter: ignored, as Postfix
        // ignores them (programs pass all sorts of flags).
        other => a
            .notes
            .push(format!("-{} option ignored", char::from(other))),
    }
}

/// An option with its value.
fn option(a: &mut Args, opt: u8, value: &[u8]) -> Result<(), UsageError> {
    let first = value.first().copied();
    match opt {
        b'b' => match first {
            Some(b'd') => a.mode = Mode::Daemon,
            Some(b'h' | b'H') => a.mode = Mode::Ignore,
            Some(b'i') => a.mode = Mode::NewAliases,
            Some(b'm') => a.mode = Mode::Enqueue,
            Some(b'p') => a.mode = Mode::Mailq,
            Some(b's') => a.mode = Mode::Smtp,
            Some(b'v') => a.mode = Mode::Verify,
            _ => return Err(UsageError(format!("unsupported: -b{}", text(value)))),
        },
        b'B' => match value {
            b"8BITMIME" => a.encoding = Some("8bit"),
            b"7BIT" => a.encoding = Some("7bit"),
            _ => return Err(UsageError("-B option needs 8BITMIME or 7BIT".into())),
        },
        b'C' | b'c' => {
            let path = PathBuf::from(OsString::from_vec(value.to_vec()));
            let dir = if path.file_name().is_some_and(|n| n == "main.toml") {
                path.parent().map(PathBuf::from).unwrap_or_default()
            } else {
                path
            };
            a.config_dir = Some(dir);
        }
        b'F' => a.full_name = Some(text(value)),
        b'N' => match parse_notify(&text(value)) {
            Some(bits) => a.notify = Some(bits),
            None => a.notes.push("bad -N option value -- ignored".into()),
        },
        b'V' => {
            if value.len() > 100 {
                a.notes.push("too long -V option value -- ignored".into());
            } else if !value.iter().all(|b| (0x20..0x7f).contains(b)) {
                a.notes
                    .push("bad syntax in -V option value -- ignored".into());
            } else {
                a.envid = Some(text(value));
            }
        }
        b'f' | b'r' => a.sender = Some(text(value)),
        b'o' => match first {
            Some(b'i') => a.dot_ends = false,
            // -oA alias database, -o7, -o8, -om and anything else.
            _ => a.notes.push(format!("-o{} option ignored", text(value))),
        },
        b'q' => match first {
            Some(d) if d.is_ascii_digit() => {
                if a.mode != Mode::Daemon {
                    a.mode = Mode::Ignore;
                }
            }
            Some(b'R' | b'I') if value.len() > 1 => a.flush_one = Some(text(value)),
            Some(b'R') => return Err(UsageError("specify: -qRsitename".into())),
            Some(b'I') => return Err(UsageError("specify: -qIqueueid".into())),
            _ => {
                return Err(UsageError(format!(
                    "-q{} is not implemented",
                    text(value.get(..1).unwrap_or_default())
                )));
            }
        },
        // -A, -e, -h, -L, -O, -p, -R, -X: accepted and ignored.
        other => a.notes.push(format!(
            "-{} {} option ignored",
            char::from(other),
            text(value)
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[&str]) -> Result<Args, UsageError> {
        parse("sendmail", list.iter().map(OsString::from).collect())
    }

    fn ok(list: &[&str]) -> Args {
        p(list).unwrap()
    }

    #[test]
    fn defaults() {
        let a = ok(&["bob@example.org"]);
        assert_eq!(a.mode, Mode::Enqueue);
        assert!(a.dot_ends && !a.extract);
        assert_eq!(a.recipients, ["bob@example.org"]);
        assert_eq!(a.sender, None);
    }

    #[test]
    fn cron_mutt_php_and_git_command_lines() {
        // cron: sendmail -FCronDaemon -i -B8BITMIME -oem user
        let a = ok(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "user"]);
        assert_eq!(a.full_name.as_deref(), Some("CronDaemon"));
        assert!(!a.dot_ends);
        assert_eq!(a.encoding, Some("8bit"));
        assert_eq!(a.recipients, ["user"]);
        // mutt: sendmail -oem -oi -- a@b c@d
        let a = ok(&["-oem", "-oi", "--", "a@b", "c@d"]);
        assert!(!a.dot_ends);
        assert_eq!(a.recipients, ["a@b", "c@d"]);
        // PHP mail(): sendmail -t -i
        let a = ok(&["-t", "-i"]);
        assert!(a.extract && !a.dot_ends && a.recipients.is_empty());
        // git send-email: sendmail -i -f me@x a@b
        let a = ok(&["-i", "-f", "me@x", "a@b"]);
        assert_eq!(a.sender.as_deref(), Some("me@x"));
        // mailx/s-nail: sendmail -i -- a@b
        assert_eq!(ok(&["-i", "--", "a@b"]).recipients, ["a@b"]);
    }

    #[test]
    fn clusters_and_attached_values() {
        let a = ok(&["-tif", "me@x", "-F", "Me Myself", "-rother@x"]);
        assert!(a.extract && !a.dot_ends);
        assert_eq!(a.sender.as_deref(), Some("other@x"));
        assert_eq!(a.full_name.as_deref(), Some("Me Myself"));
        let a = ok(&["-o", "i", "-vv"]);
        assert!(!a.dot_ends);
        assert_eq!(a.verbose, 2);
        assert_eq!(ok(&["-f<>"]).sender.as_deref(), Some("<>"));
        assert_eq!(ok(&["-f", ""]).sender.as_deref(), Some(""));
    }

    #[test]
    fn parsing_stops_at_the_first_recipient() {
        let a = ok(&["-i", "a@b", "-t"]);
        assert!(!a.extract);
        assert_eq!(a.recipients, ["a@b", "-t"]);
    }

    #[test]
    fn modes() {
        assert_eq!(ok(&["-bp"]).mode, Mode::Mailq);
        assert_eq!(ok(&["-bi"]).mode, Mode::NewAliases);
        assert_eq!(ok(&["-I"]).mode, Mode::NewAliases);
        assert_eq!(ok(&["-bs"]).mode, Mode::Smtp);
        assert_eq!(ok(&["-bm", "a"]).mode, Mode::Enqueue);
        assert_eq!(ok(&["-bd"]).mode, Mode::Daemon);
        assert_eq!(ok(&["-bv", "a"]).mode, Mode::Verify);
        assert_eq!(ok(&["-bh"]).mode, Mode::Ignore);
        assert_eq!(ok(&["-q"]).mode, Mode::Flush);
        assert_eq!(ok(&["-q30m"]).mode, Mode::Ignore);
        assert_eq!(ok(&["-qIABC"]).flush_one.as_deref(), Some("IABC"));
        let mailq = parse("mailq", vec![]).unwrap();
        assert_eq!(mailq.mode, Mode::Mailq);
        let na = parse("newaliases", vec![]).unwrap();
        assert_eq!(na.mode, Mode::NewAliases);
        // A later option wins, as in Postfix ("newaliases -bp").
        let q = parse("newaliases", vec!["-bp".into()]).unwrap();
        assert_eq!(q.mode, Mode::Mailq);
    }

    #[test]
    fn ignored_options_do_no_harm() {
        let a = ok(&[
            "-m",
            "-n",
            "-U",
            "-x",
            "-h",
            "20",
            "-L",
            "label",
            "-R",
            "hdrs",
            "-X",
            "/tmp/log",
            "-Ac",
            "-ew",
            "-Ox=y",
            "-pfoo",
            "-Z",
            "-oA/etc/aliases",
            "-o7",
            "a@b",
        ]);
        assert_eq!(a.mode, Mode::Enqueue);
        assert_eq!(a.recipients, ["a@b"]);
        assert!(a.dot_ends);
        assert!(!a.notes.is_empty());
    }

    #[test]
    fn dsn_options() {
        let a = ok(&["-N", "success,delay", "-V", "env-1", "a"]);
        assert_eq!(a.notify, Some(6));
        assert_eq!(a.envid.as_deref(), Some("env-1"));
        assert_eq!(ok(&["-Nnever", "a"]).notify, Some(1));
        assert_eq!(ok(&["-Nnever,success", "a"]).notify, None);
        assert_eq!(ok(&["-Nbogus", "a"]).notify, None);
        assert_eq!(ok(&["-V", "bad\u{1}", "a"]).envid, None);
        assert_eq!(parse_notify("failure, delay"), Some(12));
    }

    #[test]
    fn config_directory() {
        assert_eq!(
            ok(&["-C", "/etc/x/main.toml"]).config_dir,
            Some(PathBuf::from("/etc/x"))
        );
        assert_eq!(ok(&["-c/etc/y"]).config_dir, Some(PathBuf::from("/etc/y")));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["-f"][..],
            &["-bz"],
            &["-B", "BINARY"],
            &["-bp", "a@b"],
            &["-q", "a@b"],
            &["-bs", "a@b"],
            &["-t", "-bp"],
            &["-qR"],
            &["-qX"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            p(&["-f"]).unwrap_err().0,
            "option requires an argument -- f"
        );
    }
}
