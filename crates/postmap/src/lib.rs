//! postmap(1) and postalias(1): query, list and check lookup tables
//! (Postfix `postmap`, `postalias`).
//!
//! SYNOPSIS:
//! `postmap [-v] [-c config_dir] [-o name=value] [-q key | -s] [type:]file ...`,
//! `postalias` the same, for `aliases(5)` files.
//!
//! Postern reads the *source* of `hash:`, `btree:`, `texthash:`, `lmdb:`
//! and `cdb:` tables directly and indexes it in memory when a daemon opens
//! the table, reloading it when the file changes; there is no `.db` file
//! to build. So `postmap FILE` does what is left of its job: it reads the
//! file exactly as a daemon would and reports every line that a daemon
//! would skip (`FILE, line N: ...`), exiting 65 when there are any
//! (with `-s` they are reported, and the entries are listed). It
//! also checks `regexp:`, `pcre:`, `cidr:` and `inline:` tables. The
//! same check runs for `newaliases` (`sendmail -bi`) over
//! `alias_database`.
//!
//! - `-q key`: look `key` up in the tables, in order, and print the first
//!   value found; exit 0 when found, 1 when not. `-q -` reads keys from
//!   standard input and prints `key value` for each key found (exit 0
//!   when at least one was found).
//! - `-s`: print every `key value` of each table (not for pattern
//!   tables).
//! - A table without `type:` has type `default_database_type` (hash).
//!
//! Keys are folded to lower case, as Postfix does without `-f`.
//!
//! DIAGNOSTICS: problems go to standard error. Exit status (sysexits.h):
//! 0 success, 1 key not found (`-q`), 64 usage error, 65 bad lines found,
//! 66 a table cannot be opened or checked, 69 the table cannot list its
//! entries (`-s`),
//! 75 a lookup failed (try again), 78 configuration error.
//!
//! SEE ALSO: sendmail(1) (`newaliases`), postconf(1) (`-m` lists the
//! table types), local(8), aliases(5).

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use postern_config::{Config, config_dir};
use postern_maps::{Maps, Syntax};
use postern_util::msg::{self, Sink};

use postern_server::tool;
use postern_util::sysexits::{
    EX_CONFIG, EX_DATAERR, EX_IOERR, EX_NOINPUT, EX_TEMPFAIL, EX_UNAVAILABLE, exit_code,
};

/// `-q`: the key was not found (not a sysexits code: Postfix's).
const EX_NOTFOUND: i32 = 1;

/// Which program this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `key value` tables.
    Postmap,
    /// `name: value` alias files.
    Postalias,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Program::Postmap => "postmap",
            Program::Postalias => "postalias",
        }
    }

    fn syntax(self) -> Syntax {
        match self {
            Program::Postmap => Syntax::Postmap,
            Program::Postalias => Syntax::Aliases,
        }
    }
}

/// Query, list or check lookup tables.
#[derive(Parser, Debug)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    override_usage = "PROGRAM [-v] [-c config_dir] [-o name=value] [-q key | -s] [type:]file ..."
)]
struct Cli {
    /// The configuration directory (default $MAIL_CONFIG, else /etc/postern).
    #[arg(short = 'c', value_name = "config_dir")]
    config_dir: Option<PathBuf>,
    /// Override a main.toml parameter.
    #[arg(short = 'o', value_name = "name=value")]
    overrides: Vec<String>,
    /// Print the value of KEY ("-": read keys from standard input).
    #[arg(short = 'q', value_name = "key", conflicts_with = "list")]
    query: Option<String>,
    /// List every entry of each table.
    #[arg(short = 's')]
    list: bool,
    /// Verbose logging.
    #[arg(short = 'v', action = ArgAction::Count)]
    verbose: u8,
    /// Print this help.
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// The tables, as [type:]file.
    #[arg(value_name = "table", required = true)]
    tables: Vec<String>,
}

struct Fatal(String, i32);

/// Runs `program` with the process's arguments.
pub fn main(program: Program) -> ExitCode {
    let argv = std::iter::once(program.name().into()).chain(std::env::args_os().skip(1));
    let cli: Cli = match tool::parse_args(argv) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(program, &cli) {
        Ok(code) => exit_code(code),
        Err(Fatal(text, code)) => {
            eprintln!("{}: fatal: {text}", program.name());
            exit_code(code)
        }
    }
}

fn run(program: Program, cli: &Cli) -> Result<i32, Fatal> {
    let dir = config_dir(cli.config_dir.clone());
    let config = Config::load(&dir, &cli.overrides).map_err(|e| Fatal(e.to_string(), EX_CONFIG))?;
    // Warnings from opening tables (-q) go to standard error.
    let _ = msg::init(&config.str("syslog_name"), program.name(), &Sink::Terminal);
    msg::set_verbose(cli.verbose > 0);
    let default_type = config.str("default_database_type");
    let specs: Vec<String> = cli
        .tables
        .iter()
        .map(|t| with_type(t, &default_type))
        .collect();
    if let Some(key) = &cli.query {
        return query(program, &specs, key);
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut problems = 0usize;
    for spec in &specs {
        let checked = postern_maps::check(spec, program.syntax())
            .map_err(|e| Fatal(e.to_string(), EX_NOINPUT))?;
        for p in &checked.problems {
            eprintln!("{}: warning: {p}", program.name());
        }
        problems += checked.problems.len();
        if cli.list {
            let Some(entries) = checked.entries else {
                return Err(Fatal(
                    format!("{spec}: table does not support listing its entries"),
                    EX_UNAVAILABLE,
                ));
            };
            for (key, value) in entries {
                let sep = if program == Program::Postalias {
                    ": "
                } else {
                    " "
                };
                writeln!(out, "{key}{sep}{value}")
                    .map_err(|e| Fatal(format!("write: {e}"), EX_IOERR))?;
            }
        }
    }
    out.flush()
        .map_err(|e| Fatal(format!("write: {e}"), EX_IOERR))?;
    // Listing is not checking: bad lines were reported, the entries shown.
    if problems > 0 && !cli.list {
        eprintln!(
            "{}: {problems} bad line{} (skipped by the mail system)",
            program.name(),
            if problems == 1 { "" } else { "s" }
        );
        return Ok(EX_DATAERR);
    }
    Ok(0)
}

/// `file` → `default_type:file`; `type:file` stays.
fn with_type(table: &str, default_type: &str) -> String {
    let has_type = table
        .split_once(':')
        .is_some_and(|(t, _)| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()));
    if has_type {
        table.to_owned()
    } else {
        format!("{default_type}:{table}")
    }
}

fn query(program: Program, specs: &[String], key: &str) -> Result<i32, Fatal> {
    let maps = Maps::open(specs, program.syntax()).map_err(|e| Fatal(e.to_string(), EX_NOINPUT))?;
    let find = |key: &str| {
        maps.lookup(key)
            .map_err(|e| Fatal(format!("{e}: lookup of {key:?} failed"), EX_TEMPFAIL))
    };
    let mut out = io::stdout().lock();
    let write_err = |e: io::Error| Fatal(format!("write: {e}"), EX_IOERR);
    if key != "-" {
        return match find(key)? {
            Some(value) => {
                writeln!(out, "{value}").map_err(write_err)?;
                Ok(0)
            }
            None => Ok(EX_NOTFOUND),
        };
    }
    let mut found = false;
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| Fatal(format!("read: {e}"), EX_IOERR))?;
        let key = line.trim();
        if key.is_empty() {
            continue;
        }
        if let Some(value) = find(key)? {
            let sep = if program == Program::Postalias {
                ": "
            } else {
                " "
            };
            writeln!(out, "{key}{sep}{value}").map_err(write_err)?;
            found = true;
        }
    }
    Ok(if found { 0 } else { EX_NOTFOUND })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["postmap", "-q", "k", "hash:/x", "/y"]).unwrap();
        assert_eq!(cli.query.as_deref(), Some("k"));
        assert_eq!(cli.tables, ["hash:/x", "/y"]);
        assert!(Cli::try_parse_from(["postmap", "-q", "k", "-s", "/x"]).is_err());
        assert!(Cli::try_parse_from(["postmap"]).is_err());
    }

    #[test]
    fn default_type() {
        assert_eq!(with_type("/etc/aliases", "hash"), "hash:/etc/aliases");
        assert_eq!(with_type("cidr:/etc/x", "hash"), "cidr:/etc/x");
        assert_eq!(with_type("inline:{a=b}", "hash"), "inline:{a=b}");
        assert_eq!(with_type("./dir:odd", "hash"), "hash:./dir:odd");
    }
}
