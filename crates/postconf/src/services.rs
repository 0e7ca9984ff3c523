//! `postconf -M`: the service table in `master.cf`'s one-line form
//! (Postfix `postconf_master.c`).
//!
//! Columns start where Postfix puts them (0, 11, 17, 25, 33, 41, 49, 57):
//! service, type, private, unpriv, chroot, wakeup, maxproc, then the
//! command and its arguments. Values are the ones in effect (`y`/`n`, a
//! wakeup in seconds or `-` for none, the process limit with `0` for no
//! limit), since `master.toml` has no `-` placeholders. An inet service is
//! shown by its name; its listen addresses are in `master.toml`.

use std::io::{self, Write};
use std::path::Path;

use postern_config::{Config, MasterTable, Service};

/// Why nothing or not everything was shown.
#[derive(Debug)]
pub(crate) enum Error {
    /// master.toml could not be loaded.
    Config(String),
    /// Standard output failed.
    Write(io::Error),
}

const COLUMNS: [usize; 7] = [11, 17, 25, 33, 41, 49, 57];

/// One service as a `master.cf` line.
pub(crate) fn line(s: &Service) -> String {
    let yn = |b: bool| if b { "y" } else { "n" }.to_owned();
    let fields = [
        s.name.clone(),
        s.kind.as_str().to_owned(),
        yn(s.private),
        yn(s.unpriv),
        yn(s.chroot),
        s.wakeup
            .map(|w| w.as_secs().to_string())
            .unwrap_or_else(|| "-".into()),
        s.maxproc.to_string(),
    ];
    let mut out = String::new();
    for (field, goal) in fields.iter().zip(COLUMNS) {
        out.push_str(field);
        // At least one space, else pad to the next column.
        out.push(' ');
        while out.len() < goal {
            out.push(' ');
        }
    }
    out.push_str(&s.command);
    for arg in &s.args {
        out.push(' ');
        out.push_str(arg);
    }
    out
}

/// Prints the services of `dir/master.toml` that match `filters`
/// (`name` or `name/type`; none means all).
pub(crate) fn show(dir: &Path, config: &Config, filters: &[String]) -> Result<(), Error> {
    let table = MasterTable::load(dir, config).map_err(|e| Error::Config(e.to_string()))?;
    let matches = |s: &Service, f: &str| match f.split_once('/') {
        Some((name, kind)) => s.name == name && s.kind.as_str() == kind,
        None => s.name == f,
    };
    for f in filters {
        if !table.services.iter().any(|s| matches(s, f)) {
            eprintln!("postconf: warning: {f}: unknown service");
        }
    }
    let mut out = io::stdout().lock();
    for s in &table.services {
        if filters.is_empty() || filters.iter().any(|f| matches(s, f)) {
            writeln!(out, "{}", line(s)).map_err(Error::Write)?;
        }
    }
    out.flush().map_err(Error::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_columns() {
        let cfg = Config::parse("", Path::new("/etc/postern/main.toml"), &[]).unwrap();
        let table = MasterTable::parse(
            "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:2525\"\nprivate = false\n\
             command = \"smtpd\"\nargs = [\"-o\", \"smtpd_timeout=60s\"]\n\
             [pickup]\ntype = \"unix\"\nprivate = false\nwakeup = \"60s\"\nmaxproc = 1\n\
             command = \"pickup\"\n",
            Path::new("/etc/postern/master.toml"),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            line(&table.services[0]),
            "smtp       inet  n       y       n       -       100     smtpd -o smtpd_timeout=60s"
        );
        assert_eq!(
            line(&table.services[1]),
            "pickup     unix  n       y       n       60      1       pickup"
        );
    }
}
