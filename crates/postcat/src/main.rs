//! postcat(1): show queue file contents (Postfix `postcat.c`).
//!
//! SYNOPSIS: `postcat [-bdehoqv] [-c config_dir] [-s offset] [files...]`
//!
//! DESCRIPTION: postcat prints the named queue files in human-readable
//! form (see [`render`] for the shape). Without file names it reads
//! standard input. By default it shows the envelope and the message, as
//! if `-beh` were given.
//!
//! - `-b`: body content, from the first non-header line to the end of the
//!   message;
//! - `-c config_dir`: the configuration directory (for `-q`);
//! - `-d`: print the decimal type of each record;
//! - `-e`: envelope records and segment markers;
//! - `-h`: header content, up to the first non-header line;
//! - `-o`: print the offset of each record;
//! - `-q`: the arguments are queue ids: look for them in the `incoming`,
//!   `active`, `deferred`, `hold`, `maildrop` and `corrupt` queues;
//! - `-r`: accepted for compatibility (Postern queue files have no pointer
//!   records, so they are always printed in file order);
//! - `-s offset`: start at this file offset;
//! - `-v`: name content records too (`regular_text: ...`).
//!
//! Options are parsed by hand like Postfix getopt (`-beh`, `-c dir`,
//! `-cdir`); a hand parser keeps this tool free of dependencies.
//!
//! DIAGNOSTICS: problems go to standard error. A damaged or truncated
//! file is printed up to the damage, then postcat says where the damage
//! is and exits with status 1. It never trusts the file.
//!
//! ENVIRONMENT: `MAIL_CONFIG`; `TZ` for the times shown.
//!
//! CONFIGURATION PARAMETERS: `queue_directory`.
//!
//! SEE ALSO: sendmail(1), mailq(1), postdrop(1).

mod render;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use postern_config::{Config, config_dir, option_value};
use postern_queue::{DEFAULT_MAX_FILE_LEN, Queue, QueueId};

use crate::render::Options;

const USAGE: &str = "usage: postcat [-b (body text)] [-c config_dir] [-d (decimal record type)] \
                     [-e (envelope records)] [-h (header text)] [-o (offsets)] [-q (access queue)] \
                     [-s offset] [-v] [file(s)...]";

/// Where to look with `-q`, in order.
const QUEUES: [Queue; 6] = [
    Queue::Incoming,
    Queue::Active,
    Queue::Deferred,
    Queue::Hold,
    Queue::Maildrop,
    Queue::Corrupt,
];

#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    opts: Options,
    config_dir: Option<PathBuf>,
    search: bool,
    files: Vec<OsString>,
}

fn parse_args(argv: Vec<OsString>) -> Result<Args, String> {
    let (mut env, mut head, mut body) = (false, false, false);
    let mut a = Args::default();
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let bytes = arg.as_encoded_bytes();
        if bytes == b"--" {
            break;
        }
        if bytes.len() < 2 || bytes.first() != Some(&b'-') {
            a.files.push(arg);
            break;
        }
        let flags = arg.to_str().ok_or_else(|| USAGE.to_string())?;
        for (i, c) in flags.char_indices().skip(1) {
            match c {
                'b' => body = true,
                'd' => a.opts.decimal = true,
                'e' => env = true,
                'h' => head = true,
                'o' => a.opts.offsets = true,
                'q' => a.search = true,
                'r' => {}
                'v' => a.opts.verbose = true,
                'c' | 's' => {
                    let rest = flags.get(i + 1..).unwrap_or_default();
                    let value = option_value(rest, c, &mut it)?;
                    if c == 'c' {
                        a.config_dir = Some(PathBuf::from(value));
                    } else {
                        a.opts.start = value.parse().map_err(|_| format!("bad offset: {value}"))?;
                    }
                    break;
                }
                _ => return Err(USAGE.to_string()),
            }
        }
    }
    a.files.extend(it);
    if !(env || head || body) {
        (env, head, body) = (true, true, true);
    }
    a.opts.envelope = env;
    a.opts.header = head;
    a.opts.body = body;
    Ok(a)
}

/// Reads a file, refusing sizes no queue file has.
fn read_file(path: &std::path::Path) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(DEFAULT_MAX_FILE_LEN.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > DEFAULT_MAX_FILE_LEN {
        return Err(io::Error::other("file too large for a queue file"));
    }
    Ok(bytes)
}

fn fatal(text: &str) -> ! {
    let _ = io::stdout().flush();
    eprintln!("postcat: fatal: {text}");
    std::process::exit(1)
}

/// Prints one file; a damaged file ends the program with status 1.
fn show(bytes: &[u8], name: &str, opts: &Options, tz: &jiff::tz::TimeZone) {
    let mut out = Vec::new();
    let result = render::render(bytes, name, opts, tz, &mut out);
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        fatal(&format!("write: {e}"));
    }
    drop(stdout);
    if let Err(e) = result {
        fatal(&format!("{name}: {e}"));
    }
}

fn main() {
    let args = match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => fatal(&e),
    };
    let tz = postern_util::time::local_zone();
    if args.files.is_empty() {
        let mut bytes = Vec::new();
        if let Err(e) = io::stdin()
            .lock()
            .take(DEFAULT_MAX_FILE_LEN)
            .read_to_end(&mut bytes)
        {
            fatal(&format!("read stdin: {e}"));
        }
        show(&bytes, "stdin", &args.opts, &tz);
        return;
    }
    if args.search {
        let dir = config_dir(args.config_dir.clone());
        let config = Config::load(&dir, &[]).unwrap_or_else(|e| fatal(&e.to_string()));
        let queue_dir = config.path("queue_directory");
        for file in &args.files {
            let text = file.to_string_lossy();
            let id = QueueId::parse(&text)
                .unwrap_or_else(|_| fatal(&format!("bad mail queue ID: {text}")));
            let found = QUEUES.iter().find_map(|&q| {
                read_file(&id.path(&queue_dir, q))
                    .ok()
                    .map(|bytes| (q, bytes))
            });
            let Some((queue, bytes)) = found else {
                fatal(&format!("open queue file {id}: not found in any queue"));
            };
            show(&bytes, &format!("{queue}/{id}"), &args.opts, &tz);
        }
        return;
    }
    for file in &args.files {
        let name = file.to_string_lossy();
        let bytes =
            read_file(file.as_ref()).unwrap_or_else(|e| fatal(&format!("open {name}: {e}")));
        show(&bytes, &name, &args.opts, &tz);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(OsString::from).collect())
    }

    #[test]
    fn options() {
        let a = p(&["file"]).unwrap();
        assert!(a.opts.envelope && a.opts.header && a.opts.body);
        assert_eq!(a.files, ["file"]);
        let a = p(&["-bh", "-o", "-q", "-c", "/etc/x", "ID1", "ID2"]).unwrap();
        assert!(!a.opts.envelope && a.opts.header && a.opts.body && a.opts.offsets);
        assert!(a.search);
        assert_eq!(a.config_dir, Some(PathBuf::from("/etc/x")));
        assert_eq!(a.files, ["ID1", "ID2"]);
        let a = p(&["-es100", "-c/x", "f"]).unwrap();
        assert!(a.opts.envelope && !a.opts.body);
        assert_eq!(a.opts.start, 100);
        assert_eq!(a.config_dir, Some(PathBuf::from("/x")));
        assert!(p(&["-z"]).is_err());
        assert!(p(&["-c"]).is_err());
        assert!(p(&["-s", "x"]).is_err());
        assert_eq!(p(&["--", "-e"]).unwrap().files, ["-e"]);
    }
}
