//! postconf(1): show and change the Postern configuration (Postfix
//! `postconf`).
//!
//! SYNOPSIS:
//! `postconf [-dhnx] [-c config_dir] [-o name=value] [parameter ...]`,
//! `postconf -e [-c config_dir] name=value ...`,
//! `postconf -X [-c config_dir] name ...`,
//! `postconf -M [-c config_dir] [service[/type] ...]`,
//! `postconf -m`.
//!
//! Without options postconf prints every parameter of `main.toml` as
//! `name = value`, sorted by name, with the value as written (`$name`
//! references unexpanded, as Postfix shows them): the setting from
//! `main.toml` or `-o`, else the built-in default. `-n` shows only the
//! parameters set explicitly, `-d` the built-in defaults (from the parameter
//! table in `crates/config/src/params.rs`, the same table every program
//! uses), `-x` expands `$name` references, `-h` prints values only. Naming
//! parameters limits the output to those; an unknown name gets
//! `postconf: warning: NAME: unknown parameter`.
//!
//! `-e name=value ...` changes `main.toml` in place, keeping its comments,
//! layout and order; new parameters go at the end. `-X name ...` removes
//! parameters (comments above a removed line stay). The new file is
//! checked as a whole first, exactly as every program would load it; if
//! it is not valid, postconf says why (file, line, parameter) and leaves
//! the file alone. Otherwise it is written to a temporary file in the
//! same directory, flushed to disk and renamed over `main.toml`, so that
//! a crash leaves the old or the new file, never half of one.
//!
//! `-M` prints the service table `master.toml` one service per line in
//! `master.cf`'s column layout (service, type, private, unpriv, chroot,
//! wakeup, maxproc, command and arguments); `-M name` or `-M name/type`
//! selects services. `-m` lists the lookup table types.
//!
//! DIAGNOSTICS: problems go to standard error. Exit status (sysexits.h):
//! 0 success, 64 usage error, 73 the file could not be written, 78
//! configuration error (including a refused edit).
//!
//! ENVIRONMENT: `MAIL_CONFIG`: the configuration directory when `-c` is
//! not given.
//!
//! SEE ALSO: postern(1), master(8), main.toml(5), master.toml(5).

mod edit;
mod services;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use postern_config::{Config, PARAMS, config_dir, params};
use postern_server::tool;
use postern_util::sysexits::{EX_CANTCREAT, EX_CONFIG, EX_IOERR, EX_USAGE, exit_code};

/// Show and change the Postern configuration (main.toml and master.toml).
#[derive(Parser, Debug)]
#[command(
    name = "postconf",
    disable_help_flag = true,
    disable_version_flag = true,
    override_usage = "postconf [-dhnx] [-c config_dir] [-o name=value] [parameter ...]\n       \
                      postconf -e [-c config_dir] name=value ...\n       \
                      postconf -X [-c config_dir] name ...\n       \
                      postconf -M [-c config_dir] [service[/type] ...]\n       \
                      postconf -m"
)]
struct Cli {
    /// The configuration directory (default $MAIL_CONFIG, else /etc/postern).
    #[arg(short = 'c', value_name = "config_dir")]
    config_dir: Option<PathBuf>,
    /// Override a main.toml parameter for this command (repeatable).
    #[arg(short = 'o', value_name = "name=value")]
    overrides: Vec<String>,
    /// Show the built-in defaults instead of the values in effect.
    #[arg(short = 'd')]
    defaults: bool,
    /// Show only the parameters set in main.toml (or with -o).
    #[arg(short = 'n')]
    non_default: bool,
    /// Show values only, without "name = ".
    #[arg(short = 'h')]
    hide_name: bool,
    /// Expand $name references in the values shown.
    #[arg(short = 'x')]
    expand: bool,
    /// Edit main.toml: set each name=value argument.
    #[arg(short = 'e')]
    edit: bool,
    /// Edit main.toml: remove each named parameter.
    #[arg(short = 'X')]
    remove: bool,
    /// Show the master.toml service table, one service per line.
    #[arg(short = 'M')]
    master: bool,
    /// List the supported lookup table types.
    #[arg(short = 'm')]
    map_types: bool,
    /// Print this help.
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Parameter names, name=value pairs (-e) or services (-M).
    #[arg(value_name = "parameter")]
    args: Vec<String>,
}

/// A fatal error: the message and the exit status.
struct Fatal(String, i32);

fn main() -> ExitCode {
    let cli: Cli = match tool::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(text, code)) => {
            eprintln!("postconf: fatal: {text}");
            exit_code(code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Fatal> {
    let modes = [cli.edit, cli.remove, cli.master, cli.map_types]
        .iter()
        .filter(|m| **m)
        .count();
    if modes > 1 || (modes == 1 && (cli.defaults || cli.non_default)) {
        return Err(Fatal(
            "specify only one of -e, -X, -M, -m, and none of them with -d or -n".into(),
            EX_USAGE,
        ));
    }
    if cli.defaults && cli.non_default {
        return Err(Fatal("specify -d or -n, not both".into(), EX_USAGE));
    }
    let dir = config_dir(cli.config_dir.clone());
    if cli.map_types {
        let mut out = io::stdout().lock();
        for t in postern_maps::TYPES {
            writeln!(out, "{t}").map_err(write_error)?;
        }
        return Ok(());
    }
    if cli.edit || cli.remove {
        if cli.args.is_empty() {
            return Err(Fatal(
                format!("-{}: no parameters given", if cli.edit { 'e' } else { 'X' }),
                EX_USAGE,
            ));
        }
        let path = dir.join("main.toml");
        let change = if cli.edit {
            let mut pairs = Vec::new();
            for arg in &cli.args {
                let Some((name, value)) = arg.split_once('=') else {
                    return Err(Fatal(
                        format!("-e: expected name=value, found {arg:?}"),
                        EX_USAGE,
                    ));
                };
                pairs.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            edit::Change::Set(pairs)
        } else {
            edit::Change::Remove(cli.args.clone())
        };
        return edit::apply(&path, &change).map_err(|e| match e {
            edit::Error::Invalid(m) => Fatal(m, EX_CONFIG),
            edit::Error::Io(m) => Fatal(m, EX_CANTCREAT),
        });
    }
    let config = if cli.defaults {
        Config::defaults()
    } else {
        Config::load(&dir, &cli.overrides).map_err(|e| Fatal(e.to_string(), EX_CONFIG))?
    };
    if cli.master {
        return services::show(&dir, &config, &cli.args).map_err(|e| match e {
            services::Error::Config(m) => Fatal(m, EX_CONFIG),
            services::Error::Write(e) => write_error(e),
        });
    }
    show_parameters(cli, &config).map_err(write_error)
}

fn write_error(e: io::Error) -> Fatal {
    Fatal(format!("write error: {e}"), EX_IOERR)
}

/// `name = value` lines (Postfix prints `name =` for an empty value).
fn show_parameters(cli: &Cli, config: &Config) -> io::Result<()> {
    let names: Vec<&str> = if cli.args.is_empty() {
        PARAMS.iter().map(|p| p.name).collect()
    } else {
        let mut known = Vec::new();
        for name in &cli.args {
            match params::lookup(name) {
                Some(p) => known.push(p.name),
                None => eprintln!("postconf: warning: {name}: unknown parameter"),
            }
        }
        known
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    for name in names {
        if cli.non_default && !config.is_explicit(name) {
            continue;
        }
        let value = if cli.expand {
            config.str(name)
        } else {
            config.raw(name).unwrap_or_default()
        };
        match (cli.hide_name, value.is_empty()) {
            (true, _) => writeln!(out, "{value}")?,
            (false, true) => writeln!(out, "{name} =")?,
            (false, false) => writeln!(out, "{name} = {value}")?,
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn clustered_flags_and_names() {
        let cli = Cli::try_parse_from(["postconf", "-nx", "-c", "/x", "mydomain"]).unwrap();
        assert!(cli.non_default && cli.expand && !cli.defaults);
        assert_eq!(cli.config_dir, Some(PathBuf::from("/x")));
        assert_eq!(cli.args, ["mydomain"]);
        let cli = Cli::try_parse_from(["postconf", "-e", "a=b", "c = d"]).unwrap();
        assert!(cli.edit);
        assert_eq!(cli.args, ["a=b", "c = d"]);
        assert!(Cli::try_parse_from(["postconf", "-Q"]).is_err());
    }
}
