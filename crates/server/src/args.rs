//! The command line master builds for a daemon (Postfix passes `-n name
//! -t transport` the same way).
//!
//! `PROGRAM [-c DIR] [-o name=value]... [-v] -n SERVICE -t TRANSPORT [-u]
//! [-j] [-g GENERATION] [-s SOCKETS] [service arguments...]`
//!
//! `-s` is the number of listening sockets (descriptors 6, 7, ...; one
//! per listen address). `-u` asks the skeleton to run as `mail_owner` (the service is
//! unprivileged), `-j` to chroot into `queue_directory` first. A daemon run
//! by hand without `-n`/`-t` is told so and exits: it needs master.

use std::ffi::OsString;
use std::path::PathBuf;

use postern_config::take_common;

/// How the listening socket is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP listener; connections are served directly.
    Inet,
    /// Unix socket listener whose clients each send one descriptor to serve.
    Pass,
    /// Unix socket listener; connections are served directly.
    Unix,
}

impl Transport {
    /// Parses `inet`, `pass` or `unix`.
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "inet" => Some(Transport::Inet),
            "pass" => Some(Transport::Pass),
            "unix" => Some(Transport::Unix),
            _ => None,
        }
    }

    /// The master.toml spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Inet => "inet",
            Transport::Pass => "pass",
            Transport::Unix => "unix",
        }
    }
}

/// Parsed daemon arguments.
#[derive(Debug, Clone)]
pub struct DaemonArgs {
    /// `-c`: configuration directory.
    pub config_dir: PathBuf,
    /// `-o name=value` overrides, in order.
    pub overrides: Vec<String>,
    /// `-n`: service name from master.toml.
    pub service: String,
    /// `-t`: transport type.
    pub transport: Transport,
    /// `-u`: drop to `mail_owner`.
    pub unpriv: bool,
    /// `-j`: chroot into `queue_directory`.
    pub chroot: bool,
    /// `-g`: master's configuration generation.
    pub generation: u32,
    /// `-s`: number of inherited listening sockets.
    pub sockets: usize,
    /// `-v`: verbose logging.
    pub verbose: bool,
    /// Everything else, for the service itself.
    pub rest: Vec<String>,
}

/// Parses a daemon's argv (with the program name first).
pub fn parse(argv: Vec<OsString>) -> Result<DaemonArgs, String> {
    let mut argv = argv;
    let common = take_common(&mut argv).map_err(|e| e.to_string())?;
    let mut service = None;
    let mut transport = None;
    let mut unpriv = false;
    let mut chroot = false;
    let mut generation = 0;
    let mut verbose = false;
    let mut sockets = 1;
    let mut rest = Vec::new();
    let mut it = argv.into_iter().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument is not UTF-8: {}", a.to_string_lossy()))?;
        let mut value = |flag: &str| -> Result<String, String> {
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| format!("option {flag} needs a value"))
        };
        match arg.as_str() {
            "-n" => service = Some(value("-n")?),
            "-t" => {
                let t = value("-t")?;
                transport = Some(
                    Transport::parse(&t).ok_or_else(|| format!("unknown transport type: {t}"))?,
                );
            }
            "-g" => {
                let g = value("-g")?;
                generation = g.parse().map_err(|_| format!("bad generation: {g}"))?;
            }
            "-s" => {
                let n = value("-s")?;
                sockets = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("bad socket count: {n}"))?;
            }
            "-u" => unpriv = true,
            "-j" => chroot = true,
            "-v" => verbose = true,
            _ => rest.push(arg),
        }
    }
    let (Some(service), Some(transport)) = (service, transport) else {
        return Err(
            "this program is a Postern daemon: it is started by master, \
                    not by hand (missing -n SERVICE -t TRANSPORT)"
                .to_string(),
        );
    };
    Ok(DaemonArgs {
        config_dir: common.config_dir,
        overrides: common.overrides,
        service,
        transport,
        unpriv,
        chroot,
        generation,
        sockets,
        verbose,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<OsString> {
        std::iter::once("smtpd")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn parses_master_command_line() {
        let a = parse(v(&[
            "-c",
            "/tmp/etc",
            "-o",
            "max_use=5",
            "-n",
            "smtp",
            "-t",
            "inet",
            "-u",
            "-g",
            "3",
            "-x",
            "extra",
        ]))
        .unwrap();
        assert_eq!(a.config_dir, PathBuf::from("/tmp/etc"));
        assert_eq!(a.overrides, vec!["max_use=5".to_string()]);
        assert_eq!(a.service, "smtp");
        assert_eq!(a.transport, Transport::Inet);
        assert!(a.unpriv && !a.chroot);
        assert_eq!(a.generation, 3);
        assert_eq!(a.rest, vec!["-x".to_string(), "extra".to_string()]);
    }

    #[test]
    fn refuses_hand_start_and_bad_values() {
        assert!(parse(v(&[])).unwrap_err().contains("started by master"));
        assert!(
            parse(v(&["-n", "x", "-t", "fifo"]))
                .unwrap_err()
                .contains("fifo")
        );
        assert!(parse(v(&["-n"])).unwrap_err().contains("-n needs a value"));
    }
}
