//! `master.toml` → the service table that master(8) runs.
//!
//! Postfix counterpart: `master/master_ent.c` reading `master.cf`. Each
//! service is one TOML table; the keys follow `master.cf`'s columns:
//!
//! ```toml
//! [smtp]
//! type = "inet"              # inet | unix | pass
//! listen = "127.0.0.1:2525"  # inet only; see below
//! private = false            # default true; must be false for inet
//! unpriv = true              # default true
//! chroot = false             # default false
//! wakeup = "60s"             # unix only; 0 = none
//! maxproc = 100              # default $default_process_limit; 0 = unlimited
//! command = "smtpd"          # under daemon_directory, or an absolute path
//! args = ["-o", "smtpd_timeout=60s"]
//! ```
//!
//! * The table name is the service name (`[A-Za-z0-9._-]+`). Postfix keys
//!   services by name *and* type (`smtp inet ... smtpd` next to
//!   `smtp unix ... smtp`); TOML table names must be unique, so a table may
//!   set `service = "smtp"` to use another service name than its table name.
//! * `listen` (inet only) is `"ip:port"`, `"[ipv6]:port"`, or `"port"`,
//!   which means every address in `inet_interfaces` (`all` gives `0.0.0.0`
//!   and `[::]` as `inet_protocols` allows; master must set `IPV6_V6ONLY`
//!   on the latter). It may also be a TOML integer port or an array of
//!   these forms. A port is a number or one of a few well-known names
//!   (`smtp`, `submission`, `submissions`, `smtps`, `pop3`, `pop3s`, `imap`,
//!   `imaps`, `nntp`, `nntps`). Without `listen`, the service name is the
//!   port, as in `master.cf`.
//! * unix and pass services listen on `private/<name>` (or `public/<name>`
//!   with `private = false`) under `queue_directory`.
//! * `chroot` defaults to false, unlike Postfix's `y`: a chroot needs a
//!   prepared jail, and Postern does not set one up yet.
//! * `$name` expansion applies to `listen`, `args`, `wakeup` and `maxproc`
//!   strings. `-o name=value` pairs in `args` are validated against the main
//!   configuration, so a bad override is refused when master starts.
//!
//! DIAGNOSTICS: errors name `master.toml`, the line and `service.key`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use crate::error::{Error, line_of, parse_toml};
use crate::expand;
use crate::main_file::Config;
use crate::value;

/// The transport a service listens on (`master.cf`'s type column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// A TCP listener.
    Inet,
    /// A UNIX-domain socket that receives connections passed by another
    /// process (Postfix's `pass`).
    Pass,
    /// A UNIX-domain stream socket.
    Unix,
}

impl ServiceKind {
    /// The name used in `master.toml` and passed to daemons.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceKind::Inet => "inet",
            ServiceKind::Pass => "pass",
            ServiceKind::Unix => "unix",
        }
    }
}

/// Where a service listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// TCP addresses (inet services).
    Inet(Vec<SocketAddr>),
    /// A socket path relative to `queue_directory`, e.g. `private/qmgr`.
    Unix(PathBuf),
}

/// One service of `master.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The service name (the table name, or its `service` key).
    pub name: String,
    /// The transport type.
    pub kind: ServiceKind,
    /// Where it listens.
    pub listen: Listen,
    /// Whether the socket is in `private/` (only for unix and pass).
    pub private: bool,
    /// Whether the daemon runs as `mail_owner` rather than root.
    pub unpriv: bool,
    /// Whether the daemon chroots to `queue_directory`.
    pub chroot: bool,
    /// How often master wakes the service up (unix only).
    pub wakeup: Option<Duration>,
    /// The process limit; 0 means unlimited.
    pub maxproc: u32,
    /// The program: a name under `daemon_directory`, or an absolute path.
    pub command: String,
    /// The program's arguments, `$name`-expanded.
    pub args: Vec<String>,
    /// The line of the service's table header.
    pub line: usize,
}

/// The parsed `master.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterTable {
    /// The services, in file order.
    pub services: Vec<Service>,
    /// The file they were read from.
    pub file: PathBuf,
}

const KEYS: &[&str] = &[
    "args", "chroot", "command", "listen", "maxproc", "private", "service", "type", "unpriv",
    "wakeup",
];

const LISTEN_EXPECTED: &str = "\"ip:port\", \"[ipv6]:port\" or \"port\"";

/// Ports for the well-known service names that Postern programs use.
const PORT_NAMES: &[(&str, u16)] = &[
    ("imap", 143),
    ("imaps", 993),
    ("nntp", 119),
    ("nntps", 563),
    ("pop3", 110),
    ("pop3s", 995),
    ("smtp", 25),
    ("smtps", 465),
    ("submission", 587),
    ("submissions", 465),
];

fn parse_port(text: &str) -> Result<u16, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!(
                "expected a port number from 1 to 65535, found {text:?}"
            )),
        };
    }
    PORT_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, port)| *port)
        .ok_or_else(|| {
            format!("expected a port number or a well-known service name, found {text:?}")
        })
}

fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parse one (expanded) listen value.
fn parse_listen(text: &str, cfg: &Config) -> Result<Vec<SocketAddr>, String> {
    let trimmed = text.trim();
    let bad = || format!("expected {LISTEN_EXPECTED}, found {text:?}");
    let (ip, port): (IpAddr, &str) = if let Some(rest) = trimmed.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = after.strip_prefix(':').ok_or_else(bad)?;
        (addr.parse().map_err(|_| bad())?, port)
    } else if let Some((host, port)) = trimmed.rsplit_once(':') {
        if host.contains(':') {
            return Err(format!(
                "write IPv6 addresses in brackets, as \"[::1]:25\"; found {text:?}"
            ));
        }
        let ip: Ipv4Addr = host.parse().map_err(|_| bad())?;
        (IpAddr::V4(ip), port)
    } else {
        let port = parse_port(trimmed)?;
        let addrs: Vec<SocketAddr> = cfg
            .inet_interfaces()
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if addrs.is_empty() {
            return Err(
                "inet_interfaces and inet_protocols leave no address to listen on".to_owned(),
            );
        }
        return Ok(addrs);
    };
    let port = parse_port(port)?;
    let (v4, v6) = cfg.inet_protocols();
    if (ip.is_ipv4() && !v4) || (ip.is_ipv6() && !v6) {
        return Err(format!(
            "{ip} is of a protocol that inet_protocols disables"
        ));
    }
    Ok(vec![SocketAddr::new(ip, port)])
}

/// The keys of one service table, with their lines.
struct Fields<'t, 'i> {
    origin: &'t Path,
    service: &'t str,
    line: usize,
    values: BTreeMap<&'t str, (&'t DeValue<'i>, usize)>,
}

impl<'t, 'i> Fields<'t, 'i> {
    fn error(&self, key: &str, line: usize, message: impl Into<String>) -> Error {
        Error::file(
            self.origin,
            Some(line),
            Some(&format!("{}.{key}", self.service)),
            message,
        )
    }

    fn get(&self, key: &str) -> Option<(&'t DeValue<'i>, usize)> {
        self.values.get(key).copied()
    }

    fn wrong_type(&self, key: &str, line: usize, expected: &str, found: &DeValue<'_>) -> Error {
        let found = found.type_str();
        let article = if matches!(found, "integer" | "array") {
            "an"
        } else {
            "a"
        };
        self.error(
            key,
            line,
            format!("expected {expected}, found {article} {found}"),
        )
    }

    fn string(&self, key: &str) -> Result<Option<(String, usize)>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some((DeValue::String(s), line)) => Ok(Some((s.to_string(), line))),
            Some((other, line)) => Err(self.wrong_type(key, line, "a string", other)),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<(bool, usize)>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some((DeValue::Boolean(b), line)) => Ok(Some((*b, line))),
            Some((DeValue::String(s), line)) => {
                let parsed = match s.trim() {
                    "y" | "Y" => Ok(true),
                    "n" | "N" => Ok(false),
                    other => value::parse_bool(other),
                };
                parsed.map(|b| Some((b, line))).map_err(|_| {
                    self.error(key, line, format!("expected true or false, found {s:?}"))
                })
            }
            Some((other, line)) => Err(self.wrong_type(key, line, "true or false", other)),
        }
    }

    /// A string (expanded) or integer value, as text.
    fn scalar(
        &self,
        key: &str,
        cfg: &Config,
        expected: &str,
    ) -> Result<Option<(String, usize)>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some((DeValue::Integer(i), line)) => i64::from_str_radix(i.as_str(), i.radix())
                .map(|n| Some((n.to_string(), line)))
                .map_err(|_| self.error(key, line, format!("expected {expected}, found {i}"))),
            Some((DeValue::String(s), line)) => expand::expand_str(s, cfg)
                .map(|text| Some((text, line)))
                .map_err(|e| self.error(key, line, e.to_string())),
            Some((other, line)) => Err(self.wrong_type(key, line, expected, other)),
        }
    }
}

impl MasterTable {
    /// Read and validate `dir/master.toml`. `cfg` supplies `$name`
    /// expansion, `inet_interfaces`, `inet_protocols` and
    /// `default_process_limit`, and validates `-o` overrides in `args`.
    pub fn load(dir: &Path, cfg: &Config) -> Result<MasterTable, Error> {
        let path = dir.join("master.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::file(&path, None, None, format!("cannot read: {e}")))?;
        MasterTable::parse(&text, &path, cfg)
    }

    /// Like [`MasterTable::load`], with the text given; `origin` is its path
    /// for errors.
    pub fn parse(text: &str, origin: &Path, cfg: &Config) -> Result<MasterTable, Error> {
        let doc = parse_toml(text, origin)?;
        let mut entries: Vec<_> = doc.get_ref().iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);

        let mut services: Vec<Service> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let line = line_of(text, key.span().start);
            let table_name: &str = key.get_ref();
            let DeValue::Table(table) = value.get_ref() else {
                return Err(Error::file(
                    origin,
                    Some(line),
                    Some(table_name),
                    "expected a [service] table; every top-level key of master.toml is a service",
                ));
            };
            if !valid_service_name(table_name) {
                return Err(Error::file(
                    origin,
                    Some(line),
                    Some(table_name),
                    "service names may contain only letters, digits, '.', '_' and '-'",
                ));
            }
            let mut values = BTreeMap::new();
            for (k, v) in table.iter() {
                let k_line = line_of(text, k.span().start);
                let k_name: &str = k.get_ref();
                if !KEYS.contains(&k_name) {
                    return Err(Error::file(
                        origin,
                        Some(k_line),
                        Some(&format!("{table_name}.{k_name}")),
                        format!("unknown key (expected one of {})", KEYS.join(", ")),
                    ));
                }
                values.insert(k_name, (v.get_ref(), k_line));
            }
            let fields = Fields {
                origin,
                service: table_name,
                line,
                values,
            };
            services.push(parse_service(&fields, cfg)?);
        }
        check_conflicts(&services, origin)?;
        // main.toml may name services (smtp_destination_concurrency_limit);
        // they must exist here.
        cfg.check_services(services.iter().map(|s| s.name.as_str()))?;
        Ok(MasterTable {
            services,
            file: origin.to_path_buf(),
        })
    }

    /// The service with this name and kind.
    pub fn service(&self, name: &str, kind: ServiceKind) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.name == name && s.kind == kind)
    }
}

fn parse_service(f: &Fields<'_, '_>, cfg: &Config) -> Result<Service, Error> {
    let name = match f.string("service")? {
        None => f.service.to_owned(),
        Some((name, _)) if valid_service_name(&name) => name,
        Some((_, line)) => {
            return Err(f.error(
                "service",
                line,
                "service names may contain only letters, digits, '.', '_' and '-'",
            ));
        }
    };

    let kind = match f.string("type")? {
        None => return Err(f.error("type", f.line, "missing (inet, unix or pass)")),
        Some((t, line)) => match t.as_str() {
            "inet" => ServiceKind::Inet,
            "unix" => ServiceKind::Unix,
            "pass" => ServiceKind::Pass,
            _ => {
                return Err(f.error(
                    "type",
                    line,
                    format!("expected inet, unix or pass, found {t:?}"),
                ));
            }
        },
    };

    let command = match f.string("command")? {
        None => return Err(f.error("command", f.line, "missing (a program name)")),
        Some((c, line)) => {
            let ok = !c.is_empty()
                && !c.chars().any(|ch| ch.is_whitespace() || ch == '\0')
                && (c.starts_with('/') || !c.contains('/'));
            if !ok {
                return Err(f.error(
                    "command",
                    line,
                    format!("expected a program name without '/' or an absolute path, found {c:?}"),
                ));
            }
            c
        }
    };

    let private = match f.boolean("private")? {
        Some((true, line)) if kind == ServiceKind::Inet => {
            return Err(f.error("private", line, "must be false for inet services"));
        }
        Some((p, _)) => p,
        None => kind != ServiceKind::Inet,
    };
    let unpriv = f.boolean("unpriv")?.is_none_or(|(b, _)| b);
    let chroot = f.boolean("chroot")?.is_some_and(|(b, _)| b);

    let wakeup = match f.scalar("wakeup", cfg, value::TIME_EXPECTED)? {
        None => None,
        Some((text, line)) => {
            let time =
                value::parse_time(&text).map_err(|e| f.error("wakeup", line, e.to_string()))?;
            if time.is_zero() {
                None
            } else if kind != ServiceKind::Unix {
                return Err(f.error("wakeup", line, "is only for unix services"));
            } else {
                Some(time)
            }
        }
    };

    let maxproc_expected = "a process limit from 0 (unlimited) to 4294967295";
    let maxproc = match f.scalar("maxproc", cfg, maxproc_expected)? {
        None => u32::try_from(cfg.int("default_process_limit")).unwrap_or(u32::MAX),
        Some((text, line)) => text.trim().parse::<u32>().map_err(|_| {
            f.error(
                "maxproc",
                line,
                format!("expected {maxproc_expected}, found {text:?}"),
            )
        })?,
    };

    let args = match f.get("args") {
        None => Vec::new(),
        Some((DeValue::Array(items), line)) => {
            let mut args = Vec::with_capacity(items.len());
            for item in items.iter() {
                let DeValue::String(s) = item.get_ref() else {
                    return Err(f.wrong_type("args", line, "an array of strings", item.get_ref()));
                };
                let arg =
                    expand::expand_str(s, cfg).map_err(|e| f.error("args", line, e.to_string()))?;
                args.push(arg);
            }
            check_overrides(f, line, &args, cfg)?;
            args
        }
        Some((other, line)) => {
            return Err(f.wrong_type("args", line, "an array of strings", other));
        }
    };

    let listen = match (kind, f.get("listen")) {
        (ServiceKind::Inet, None) => Listen::Inet(parse_listen(&name, cfg).map_err(|e| {
            f.error(
                "listen",
                f.line,
                format!("missing, and the service name is not a port: {e}"),
            )
        })?),
        (ServiceKind::Inet, Some((value, line))) => {
            let texts: Vec<String> = match value {
                DeValue::Array(items) => {
                    let mut texts = Vec::with_capacity(items.len());
                    for item in items.iter() {
                        texts.push(listen_text(f, line, item.get_ref(), cfg)?);
                    }
                    texts
                }
                other => vec![listen_text(f, line, other, cfg)?],
            };
            if texts.is_empty() {
                return Err(f.error(
                    "listen",
                    line,
                    format!("expected {LISTEN_EXPECTED}, found an empty array"),
                ));
            }
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for text in texts {
                for addr in parse_listen(&text, cfg).map_err(|e| f.error("listen", line, e))? {
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
            }
            Listen::Inet(addrs)
        }
        (_, Some((_, line))) => {
            return Err(f.error(
                "listen",
                line,
                "is only for inet services; unix and pass services listen on private/NAME or public/NAME",
            ));
        }
        (_, None) => {
            let class = if private { "private" } else { "public" };
            Listen::Unix(Path::new(class).join(&name))
        }
    };

    Ok(Service {
        name,
        kind,
        listen,
        private,
        unpriv,
        chroot,
        wakeup,
        maxproc,
        command,
        args,
        line: f.line,
    })
}

/// One element of `listen`, as expanded text.
fn listen_text(
    f: &Fields<'_, '_>,
    line: usize,
    value: &DeValue<'_>,
    cfg: &Config,
) -> Result<String, Error> {
    match value {
        DeValue::String(s) => {
            expand::expand_str(s, cfg).map_err(|e| f.error("listen", line, e.to_string()))
        }
        DeValue::Integer(i) => Ok(i.to_string()),
        other => Err(f.wrong_type("listen", line, LISTEN_EXPECTED, other)),
    }
}

/// Validate `-o name=value` (and `-oname=value`) pairs in `args` against
/// the main configuration.
fn check_overrides(
    f: &Fields<'_, '_>,
    line: usize,
    args: &[String],
    cfg: &Config,
) -> Result<(), Error> {
    let mut overrides = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == "-o" {
            match iter.next() {
                Some(pair) => overrides.push(pair.clone()),
                None => return Err(f.error("args", line, "-o needs a name=value argument")),
            }
        } else if let Some(pair) = arg.strip_prefix("-o") {
            overrides.push(pair.to_owned());
        }
    }
    for pair in &overrides {
        if let Err(e) = cfg.with_overrides(std::slice::from_ref(pair)) {
            let overridden = pair.split_once('=').map(|(n, _)| n.trim());
            let message = match &e.key {
                Some(key) if Some(key.as_str()) != overridden => {
                    format!("-o {pair}: {key}: {}", e.message)
                }
                _ => format!("-o {pair}: {}", e.message),
            };
            return Err(f.error("args", line, message));
        }
    }
    if !overrides.is_empty() {
        cfg.with_overrides(&overrides).map_err(|e| {
            f.error(
                "args",
                line,
                format!("-o {}: {}", overrides.join(" -o "), e.message),
            )
        })?;
    }
    Ok(())
}

fn check_conflicts(services: &[Service], origin: &Path) -> Result<(), Error> {
    let mut seen: BTreeMap<(&str, ServiceKind), usize> = BTreeMap::new();
    let mut sockets: BTreeMap<&Path, (&str, usize)> = BTreeMap::new();
    let mut ports: BTreeMap<SocketAddr, (&str, usize)> = BTreeMap::new();
    for s in services {
        if let Some(first) = seen.insert((&s.name, s.kind), s.line) {
            return Err(Error::file(
                origin,
                Some(s.line),
                Some(&s.name),
                format!(
                    "service {} of type {} is already defined at line {first}",
                    s.name,
                    s.kind.as_str()
                ),
            ));
        }
        match &s.listen {
            Listen::Unix(path) => {
                if let Some((other, line)) = sockets.insert(path, (&s.name, s.line)) {
                    return Err(Error::file(
                        origin,
                        Some(s.line),
                        Some(&s.name),
                        format!(
                            "socket {} is already used by service {other} at line {line}",
                            path.display()
                        ),
                    ));
                }
            }
            Listen::Inet(addrs) => {
                for addr in addrs {
                    if let Some((other, line)) = ports.insert(*addr, (&s.name, s.line)) {
                        return Err(Error::file(
                            origin,
                            Some(s.line),
                            Some(&format!("{}.listen", s.name)),
                            format!("{addr} is already used by service {other} at line {line}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/postern/master.toml";

    fn cfg(main: &str) -> Config {
        Config::parse(main, Path::new("/etc/postern/main.toml"), &[]).unwrap()
    }

    fn parse_with(main: &str, text: &str) -> Result<MasterTable, Error> {
        MasterTable::parse(text, Path::new(FILE), &cfg(main))
    }

    fn parse(text: &str) -> Result<MasterTable, Error> {
        parse_with("", text)
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(t) => panic!("accepted: {text}\n{t:?}"),
            Err(e) => e.to_string(),
        }
    }

    const HAPPY: &str = r#"
# Postern master.toml
[smtp]
type = "inet"
listen = "127.0.0.1:2525"
private = false
unpriv = true
chroot = false
maxproc = 100
command = "smtpd"
args = ["-o", "smtpd_timeout=60s", "-osmtpd_banner=$myhostname hi"]

[pickup]
type = "unix"
wakeup = "60s"
maxproc = 1
command = "pickup"

[qmgr]
type = "unix"
private = false
wakeup = 300
maxproc = "1"
command = "qmgr"

[smtp-out]
service = "smtp"
type = "unix"
command = "/usr/local/libexec/smtp"

[submission]
type = "inet"
listen = ["[::1]:587", 2587]
command = "smtpd"
"#;

    #[test]
    fn per_service_parameters_must_name_a_service() {
        let table = "[relay]\ntype = \"unix\"\ncommand = \"smtp\"\n";
        let ok = parse_with("relay_destination_concurrency_limit = 3", table);
        assert!(ok.is_ok(), "{ok:?}");
        let e = parse_with(
            "myhostname = \"a.example\"\nnosuch_destination_recipient_limit = 3",
            table,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/postern/main.toml:2: nosuch_destination_recipient_limit: unknown parameter (no service \"nosuch\" in master.toml)"
        );
    }

    #[test]
    fn happy_path() {
        let t = parse_with(
            "myhostname = \"mx.example.com\"\ninet_interfaces = \"127.0.0.1\"",
            HAPPY,
        )
        .unwrap();
        assert_eq!(t.file, PathBuf::from(FILE));
        let names: Vec<_> = t
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("smtp", ServiceKind::Inet),
                ("pickup", ServiceKind::Unix),
                ("qmgr", ServiceKind::Unix),
                ("smtp", ServiceKind::Unix),
                ("submission", ServiceKind::Inet),
            ]
        );
        let smtp = &t.services[0];
        assert_eq!(smtp.line, 3);
        assert_eq!(
            smtp.listen,
            Listen::Inet(vec!["127.0.0.1:2525".parse().unwrap()])
        );
        assert!(!smtp.private && smtp.unpriv && !smtp.chroot);
        assert_eq!(smtp.maxproc, 100);
        assert_eq!(smtp.command, "smtpd");
        assert_eq!(
            smtp.args,
            [
                "-o",
                "smtpd_timeout=60s",
                "-osmtpd_banner=mx.example.com hi"
            ]
        );
        assert_eq!(smtp.wakeup, None);

        let pickup = t.service("pickup", ServiceKind::Unix).unwrap();
        assert_eq!(pickup.listen, Listen::Unix(PathBuf::from("private/pickup")));
        assert!(pickup.private);
        assert_eq!(pickup.wakeup, Some(Duration::from_secs(60)));
        assert_eq!(pickup.maxproc, 1);

        let qmgr = &t.services[2];
        assert_eq!(qmgr.listen, Listen::Unix(PathBuf::from("public/qmgr")));
        assert_eq!(qmgr.wakeup, Some(Duration::from_secs(300)));
        assert_eq!(qmgr.maxproc, 1);

        let out = t.service("smtp", ServiceKind::Unix).unwrap();
        assert_eq!(out.listen, Listen::Unix(PathBuf::from("private/smtp")));
        assert_eq!(out.maxproc, 100);
        assert_eq!(out.command, "/usr/local/libexec/smtp");

        let sub = &t.services[4];
        assert_eq!(
            sub.listen,
            Listen::Inet(vec![
                "[::1]:587".parse().unwrap(),
                "127.0.0.1:2587".parse().unwrap()
            ])
        );
        assert_eq!(ServiceKind::Pass.as_str(), "pass");
    }

    #[test]
    fn port_only_listen_uses_inet_interfaces() {
        let t = parse_with(
            "inet_interfaces = \"127.0.0.1, ::1\"",
            "[smtp]\ntype = \"inet\"\nlisten = \"2525\"\ncommand = \"smtpd\"\n",
        )
        .unwrap();
        assert_eq!(
            t.services[0].listen,
            Listen::Inet(vec![
                "127.0.0.1:2525".parse().unwrap(),
                "[::1]:2525".parse().unwrap()
            ])
        );
        let t = parse_with(
            "inet_interfaces = \"all\"\ndefault_process_limit = 7",
            "[smtp]\ntype = \"inet\"\ncommand = \"smtpd\"\n",
        )
        .unwrap();
        assert_eq!(
            t.services[0].listen,
            Listen::Inet(vec![
                "0.0.0.0:25".parse().unwrap(),
                "[::]:25".parse().unwrap()
            ])
        );
        assert_eq!(t.services[0].maxproc, 7);
        let t = parse_with(
            "inet_interfaces = \"all\"\ninet_protocols = \"ipv4\"\nsmtpd_recipient_limit = 2525",
            "[x]\ntype = \"inet\"\nlisten = \"$smtpd_recipient_limit\"\ncommand = \"smtpd\"\n",
        )
        .unwrap();
        assert_eq!(
            t.services[0].listen,
            Listen::Inet(vec!["0.0.0.0:2525".parse().unwrap()])
        );
    }

    #[test]
    fn errors() {
        let base = "type = \"unix\"\ncommand = \"x\"\n";
        assert_eq!(
            err(&format!("[a]\n{base}colour = 1\n")),
            "/etc/postern/master.toml:4: a.colour: unknown key (expected one of args, chroot, command, listen, maxproc, private, service, type, unpriv, wakeup)"
        );
        assert_eq!(
            err("[a]\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:1: a.type: missing (inet, unix or pass)"
        );
        assert_eq!(
            err("\n[a]\ntype = \"unix\"\n"),
            "/etc/postern/master.toml:2: a.command: missing (a program name)"
        );
        assert_eq!(
            err("[a]\ntype = \"fifo\"\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:2: a.type: expected inet, unix or pass, found \"fifo\""
        );
        assert_eq!(
            err("[a]\ntype = 1\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:2: a.type: expected a string, found an integer"
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = \"127.0.0.1:x\"\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:3: a.listen: expected a port number or a well-known service name, found \"x\""
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = \"127.0.0.1:0\"\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:3: a.listen: expected a port number from 1 to 65535, found \"0\""
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = \"999.0.0.1:25\"\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:3: a.listen: expected \"ip:port\", \"[ipv6]:port\" or \"port\", found \"999.0.0.1:25\""
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = \"::1:25\"\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:3: a.listen: write IPv6 addresses in brackets, as \"[::1]:25\"; found \"::1:25\""
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = 70000\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:3: a.listen: expected a port number from 1 to 65535, found \"70000\""
        );
        assert_eq!(
            err("[mystery]\ntype = \"inet\"\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:1: mystery.listen: missing, and the service name is not a port: expected a port number or a well-known service name, found \"mystery\""
        );
        assert_eq!(
            err(&format!("[a]\n{base}listen = \"25\"\n")),
            "/etc/postern/master.toml:4: a.listen: is only for inet services; unix and pass services listen on private/NAME or public/NAME"
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = \"25\"\nprivate = true\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:4: a.private: must be false for inet services"
        );
        assert_eq!(
            err(
                "[a]\ntype = \"inet\"\nlisten = \"127.0.0.1:25\"\ncommand = \"x\"\n[b]\ntype = \"inet\"\nlisten = \"127.0.0.1:25\"\ncommand = \"y\"\n"
            ),
            "/etc/postern/master.toml:5: b.listen: 127.0.0.1:25 is already used by service a at line 1"
        );
        assert_eq!(
            err(&format!("[a]\n{base}[b]\nservice = \"a\"\n{base}")),
            "/etc/postern/master.toml:4: a: service a of type unix is already defined at line 1"
        );
        assert_eq!(
            err(&format!(
                "[a]\n{base}[b]\nservice = \"a\"\ntype = \"pass\"\ncommand = \"y\"\n"
            )),
            "/etc/postern/master.toml:4: a: socket private/a is already used by service a at line 1"
        );
        assert_eq!(
            err(&format!("[\"a/b\"]\n{base}")),
            "/etc/postern/master.toml:1: a/b: service names may contain only letters, digits, '.', '_' and '-'"
        );
        assert_eq!(
            err(&format!("[\"..\"]\n{base}")),
            "/etc/postern/master.toml:1: ..: service names may contain only letters, digits, '.', '_' and '-'"
        );
        assert_eq!(
            err(&format!("[a]\n{base}service = \"x y\"\n")),
            "/etc/postern/master.toml:4: a.service: service names may contain only letters, digits, '.', '_' and '-'"
        );
        assert_eq!(
            err("top = 1\n"),
            "/etc/postern/master.toml:1: top: expected a [service] table; every top-level key of master.toml is a service"
        );
        assert_eq!(
            err("[a]\ntype = \"unix\"\ncommand = \"bin/x\"\n"),
            "/etc/postern/master.toml:3: a.command: expected a program name without '/' or an absolute path, found \"bin/x\""
        );
        assert_eq!(
            err(&format!("[a]\n{base}wakeup = \"soon\"\n")),
            "/etc/postern/master.toml:4: a.wakeup: expected a time (a number with an optional unit s, m, h, d or w), found \"soon\""
        );
        assert_eq!(
            err("[a]\ntype = \"inet\"\nlisten = \"25\"\nwakeup = 60\ncommand = \"x\"\n"),
            "/etc/postern/master.toml:4: a.wakeup: is only for unix services"
        );
        assert_eq!(
            err(&format!("[a]\n{base}maxproc = -1\n")),
            "/etc/postern/master.toml:4: a.maxproc: expected a process limit from 0 (unlimited) to 4294967295, found \"-1\""
        );
        assert_eq!(
            err(&format!("[a]\n{base}maxproc = \"$nosuch\"\n")),
            "/etc/postern/master.toml:4: a.maxproc: unknown parameter $nosuch"
        );
        assert_eq!(
            err(&format!("[a]\n{base}chroot = \"sometimes\"\n")),
            "/etc/postern/master.toml:4: a.chroot: expected true or false, found \"sometimes\""
        );
        assert_eq!(
            err(&format!("[a]\n{base}args = \"-v\"\n")),
            "/etc/postern/master.toml:4: a.args: expected an array of strings, found a string"
        );
        assert_eq!(
            err(&format!("[a]\n{base}args = [\"$nosuch\"]\n")),
            "/etc/postern/master.toml:4: a.args: unknown parameter $nosuch"
        );
        assert_eq!(
            err(&format!(
                "[a]\n{base}\nargs = [\"-o\", \"smtpd_timeout=soon\"]\n"
            )),
            "/etc/postern/master.toml:5: a.args: -o smtpd_timeout=soon: expected a time (a number with an optional unit s, m, h, d or w), found \"soon\""
        );
        assert_eq!(
            err(&format!("[a]\n{base}args = [\"-onosuch=1\"]\n")),
            "/etc/postern/master.toml:4: a.args: -o nosuch=1: unknown parameter"
        );
        assert_eq!(
            err(&format!("[a]\n{base}args = [\"-v\", \"-o\"]\n")),
            "/etc/postern/master.toml:4: a.args: -o needs a name=value argument"
        );
        assert_eq!(
            err(&format!(
                "[a]\n{base}args = [\"-o\", \"myhostname=$$myorigin\"]\n"
            )),
            "/etc/postern/master.toml:4: a.args: -o myhostname=$myorigin: expansion loop: myhostname -> myorigin -> myhostname"
        );
        let e = parse("[a]\ntype = \"unix\"\ncommand = \n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("TOML syntax error"), "{e}");
    }

    #[test]
    fn protocol_filtering() {
        let e = parse_with(
            "inet_protocols = \"ipv4\"",
            "[a]\ntype = \"inet\"\nlisten = \"[::1]:25\"\ncommand = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/postern/master.toml:3: a.listen: ::1 is of a protocol that inet_protocols disables"
        );
        let e = parse_with(
            "inet_protocols = \"ipv4\"\ninet_interfaces = \"::1\"",
            "[a]\ntype = \"inet\"\nlisten = \"25\"\ncommand = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/postern/master.toml:3: a.listen: inet_interfaces and inet_protocols leave no address to listen on"
        );
    }

    #[test]
    fn load_reads_master_toml() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::defaults();
        let e = MasterTable::load(dir.path(), &c).unwrap_err();
        assert!(e.to_string().contains("master.toml: cannot read"), "{e}");
        std::fs::write(
            dir.path().join("master.toml"),
            "[qmgr]\ntype = \"unix\"\ncommand = \"qmgr\"\n",
        )
        .unwrap();
        let t = MasterTable::load(dir.path(), &c).unwrap();
        assert_eq!(t.services.len(), 1);
        assert_eq!(t.file, dir.path().join("master.toml"));
    }
}
