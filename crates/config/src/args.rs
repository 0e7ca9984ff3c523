//! The options every Postern program takes: `-c DIR` and `-o name=value`.
//!
//! Postfix counterpart: the `-c` and `-o` handling that each program's
//! `main()` repeats (`MAIL_CONFIG`, `mail_conf_update`). Other options are
//! left for the program to parse, with clap or by hand.
//!
//! `sendmail` must not use this: its `-o` options (`-oi`, `-om`, ...) are
//! sendmail-compatible flags, not parameter overrides, and `-C` names its
//! configuration.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Error;
use crate::main_file::DEFAULT_CONFIG_DIR;

/// The result of [`take_common`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommonArgs {
    /// From `-c DIR`, else [`DEFAULT_CONFIG_DIR`].
    pub config_dir: PathBuf,
    /// Whether `-c` was given (a tool then ignores `MAIL_CONFIG`).
    pub config_dir_given: bool,
    /// Each `-o name=value`, as `name=value`, in order; pass these to
    /// [`crate::Config::load`].
    pub overrides: Vec<String>,
}

impl CommonArgs {
    /// The directory from `-c`, if it was given.
    pub fn given_config_dir(&self) -> Option<PathBuf> {
        self.config_dir_given.then(|| self.config_dir.clone())
    }
}

/// The configuration directory of a command-line tool: `given` (from `-c`)
/// when there is one, else `$MAIL_CONFIG`, else [`DEFAULT_CONFIG_DIR`]
/// (Postfix's rule; daemons are told theirs by master).
pub fn config_dir(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("MAIL_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR))
}

/// Remove `-c DIR`, `-cDIR`, `-o name=value` and `-oname=value` from `args`
/// and return them; everything else stays, in order.
///
/// `args[0]` is the program name and is left alone. Scanning stops at `--`,
/// which is kept. A later `-c` wins. Options are not clustered: `-vc DIR` is
/// not recognised.
///
/// Errors: `-c` or `-o` without a value, an empty `-c` value, an `-o` value
/// without `=`, or an `-o` value that is not UTF-8.
pub fn take_common(args: &mut Vec<OsString>) -> Result<CommonArgs, Error> {
    let mut common = CommonArgs {
        config_dir: PathBuf::from(DEFAULT_CONFIG_DIR),
        config_dir_given: false,
        overrides: Vec::new(),
    };
    let mut kept: Vec<OsString> = Vec::with_capacity(args.len());
    let mut iter = std::mem::take(args).into_iter();
    if let Some(program) = iter.next() {
        kept.push(program);
    }
    while let Some(arg) = iter.next() {
        if arg == "--" {
            kept.push(arg);
            kept.extend(iter.by_ref());
            break;
        }
        let (flag, attached) = match arg.as_bytes() {
            [b'-', flag @ (b'c' | b'o'), rest @ ..] => (*flag, !rest.is_empty()),
            _ => {
                kept.push(arg);
                continue;
            }
        };
        let value: OsString = if attached {
            OsStr::from_bytes(arg.as_bytes().get(2..).unwrap_or_default()).to_owned()
        } else {
            match iter.next() {
                Some(value) => value,
                None => {
                    *args = kept;
                    return Err(Error::command_line(
                        format!("-{}", flag as char),
                        "option requires an argument",
                    ));
                }
            }
        };
        if flag == b'c' {
            if value.is_empty() {
                *args = kept;
                return Err(Error::command_line("-c", "empty directory name"));
            }
            common.config_dir = PathBuf::from(value);
            common.config_dir_given = true;
        } else {
            let Some(text) = value.to_str() else {
                *args = kept;
                return Err(Error::command_line(
                    format!("-o {}", value.to_string_lossy()),
                    "not valid UTF-8",
                ));
            };
            if !text.contains('=') {
                *args = kept;
                return Err(Error::command_line(
                    format!("-o {text}"),
                    "expected name=value",
                ));
            }
            common.overrides.push(text.to_owned());
        }
    }
    *args = kept;
    Ok(common)
}

/// The value of option `flag` in a getopt-style cluster, for tools that
/// parse their other options by hand: `rest`, what follows the flag in its
/// argument (`-i4Y5L`), or else the next argument (`-i 4Y5L`).
///
/// Errors: no value, or a next argument that is not UTF-8.
pub fn option_value(
    rest: &str,
    flag: char,
    next: &mut impl Iterator<Item = OsString>,
) -> Result<String, String> {
    if !rest.is_empty() {
        return Ok(rest.to_string());
    }
    next.next()
        .and_then(|v| v.into_string().ok())
        .ok_or_else(|| format!("option requires an argument -- {flag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn takes_c_and_o() {
        let mut args = v(&[
            "postqueue",
            "-p",
            "-c",
            "/tmp/etc",
            "-o",
            "a=b",
            "-oc=d",
            "file",
            "-c/x",
            "--",
            "-o",
            "z",
        ]);
        let common = take_common(&mut args).unwrap();
        assert_eq!(common.config_dir, PathBuf::from("/x"));
        assert_eq!(common.given_config_dir(), Some(PathBuf::from("/x")));
        assert_eq!(common.overrides, ["a=b", "c=d"]);
        assert_eq!(args, v(&["postqueue", "-p", "file", "--", "-o", "z"]));
    }

    #[test]
    fn defaults() {
        let mut args = v(&["master", "-d"]);
        let common = take_common(&mut args).unwrap();
        assert_eq!(common.config_dir, PathBuf::from(DEFAULT_CONFIG_DIR));
        assert_eq!(common.given_config_dir(), None);
        assert!(common.overrides.is_empty());
        assert_eq!(args, v(&["master", "-d"]));
        let mut empty = Vec::new();
        assert!(take_common(&mut empty).is_ok());
        // argv[0] is never an option.
        let mut args = v(&["-c", "x"]);
        assert_eq!(
            take_common(&mut args).unwrap().config_dir,
            PathBuf::from(DEFAULT_CONFIG_DIR)
        );
        assert_eq!(args, v(&["-c", "x"]));
    }

    #[test]
    fn errors() {
        assert_eq!(
            take_common(&mut v(&["p", "-c"])).unwrap_err().to_string(),
            "command line: -c: option requires an argument"
        );
        assert_eq!(
            take_common(&mut v(&["p", "-o"])).unwrap_err().to_string(),
            "command line: -o: option requires an argument"
        );
        assert_eq!(
            take_common(&mut v(&["p", "-oi"])).unwrap_err().to_string(),
            "command line: -o i: expected name=value"
        );
        assert_eq!(
            take_common(&mut v(&["p", "-c", ""]))
                .unwrap_err()
                .to_string(),
            "command line: -c: empty directory name"
        );
    }

    #[test]
    fn option_values() {
        let mut next = v(&["next", "after"]).into_iter();
        assert_eq!(
            option_value("attached", 'i', &mut next).unwrap(),
            "attached"
        );
        assert_eq!(option_value("", 'i', &mut next).unwrap(), "next");
        assert_eq!(option_value("", 's', &mut next).unwrap(), "after");
        assert_eq!(
            option_value("", 's', &mut next).unwrap_err(),
            "option requires an argument -- s"
        );
    }

    #[test]
    fn non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = vec![
            OsString::from("p"),
            OsString::from_vec(b"-c/tmp/\xff".to_vec()),
        ];
        let common = take_common(&mut args).unwrap();
        assert_eq!(common.config_dir.as_os_str().len(), 6);
        let mut args = vec![
            OsString::from("p"),
            OsString::from_vec(b"-oa=\xff".to_vec()),
        ];
        assert!(take_common(&mut args).is_err());
    }
}
