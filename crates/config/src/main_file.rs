//! `main.toml` and `-o name=value` overrides → a validated [`Config`].
//!
//! Postfix counterparts: `global/mail_conf.c` (reading `main.cf`, applying
//! `-o`), `mail_conf_*.c` (typed lookups with bounds) and
//! `mail_params.c:mail_params_init` (computed defaults of `myhostname` and
//! `mydomain`).
//!
//! `main.toml` holds flat `name = value` lines only. Values may be native
//! TOML (`message_size_limit = 10240000`, `disable_vrfy_command = true`,
//! `mydestination = ["a", "b"]`) or Postfix-style strings (`"10240000"`,
//! `"yes"`, `"a, b"`). Everything is checked at load time: unknown names,
//! wrong TOML types, `$name` expansion (unknown names, loops) and the
//! expanded value against the parameter's [`Kind`]. After that the typed
//! accessors cannot fail.
//!
//! DIAGNOSTICS: every [`Error`] names the file and line (or the `-o`
//! option), the parameter and what was expected. Panics: the accessors panic
//! when given a name that is not in [`crate::params::PARAMS`], or the wrong
//! accessor for a parameter's kind. Both are programming errors, never
//! configuration errors.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ipnet::IpNet;
use toml::de::DeValue;

use crate::error::{Error, Origin, line_of, parse_toml};
use crate::expand::{self, Lookup};
use crate::params::{self, Kind, PARAMS, Param};
use crate::value::{self, ValueError};

/// Where Postern programs look for `main.toml` and `master.toml` unless
/// given `-c DIR`.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/postern";

/// Where an explicit setting came from.
#[derive(Clone, Debug)]
enum At {
    File { path: PathBuf, line: usize },
    CommandLine { option: String },
}

/// A parameter set in `main.toml` or with `-o`.
#[derive(Clone, Debug)]
struct Setting {
    raw: String,
    at: At,
    /// Order of appearance, so that errors are reported in input order.
    seq: usize,
}

/// A validated value.
#[derive(Clone, Debug)]
enum Typed {
    Bool(bool),
    Int(i64),
    Time(Duration),
    Size(u64),
    List(Vec<String>),
    Nets(Vec<IpNet>),
    Text,
}

#[derive(Clone, Debug)]
struct Value {
    expanded: String,
    typed: Typed,
}

/// The effective configuration: built-in defaults, then `main.toml`, then
/// `-o` overrides, all validated.
#[derive(Clone, Debug)]
pub struct Config {
    dir: PathBuf,
    file: Option<PathBuf>,
    explicit: BTreeMap<&'static str, Setting>,
    /// Per-service parameters (`smtp_destination_concurrency_limit`, see
    /// [`params::PER_SERVICE`]) set explicitly, with their values.
    dynamic: BTreeMap<String, (Setting, i64)>,
    /// Effective (unexpanded) defaults of the computed parameters.
    computed: BTreeMap<&'static str, String>,
    /// One entry per row of `PARAMS`, same order.
    values: Vec<Value>,
}

/// Unexpanded values as seen by the expander.
struct RawView<'a> {
    explicit: &'a BTreeMap<&'static str, Setting>,
    computed: &'a BTreeMap<&'static str, String>,
}

impl<'a> RawView<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        let param = params::lookup(name)?;
        if let Some(setting) = self.explicit.get(param.name) {
            return Some(&setting.raw);
        }
        if let Some(value) = self.computed.get(param.name) {
            return Some(value);
        }
        Some(param.default)
    }
}

impl Lookup for RawView<'_> {
    fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(Cow::Borrowed)
    }

    fn is_literal(&self, name: &str) -> bool {
        params::lookup(name).is_some_and(|p| p.kind == Kind::Raw)
    }
}

/// A `Config` expands `$name` with its own unexpanded values, so that text
/// such as `master.toml` arguments can be expanded with
/// [`expand::expand_str`].
impl Lookup for Config {
    fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
        self.view().get(name).map(Cow::Borrowed)
    }

    fn is_literal(&self, name: &str) -> bool {
        params::lookup(name).is_some_and(|p| p.kind == Kind::Raw)
    }
}

/// The system hostname (`gethostname(2)`), or `localhost` if it is not
/// available or not UTF-8.
fn system_hostname() -> &'static str {
    static HOSTNAME: OnceLock<String> = OnceLock::new();
    HOSTNAME.get_or_init(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// `mydomain`'s default: `myhostname` minus its first label when what
/// remains still contains a dot, else `localdomain`
/// (`mail_params.c:check_mydomainname`).
fn domain_of(hostname: &str) -> &str {
    match hostname.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest,
        _ => "localdomain",
    }
}

fn article(toml_type: &str) -> String {
    match toml_type {
        "integer" | "array" => format!("an {toml_type}"),
        _ => format!("a {toml_type}"),
    }
}

const NO_TABLES: &str = "tables are not allowed in main.toml; write flat \"name = value\" lines";

/// Convert a TOML value to the parameter's raw Postfix-syntax text.
fn toml_to_raw(param: &Param, value: &DeValue<'_>) -> Result<String, String> {
    let wrong = |found: &DeValue<'_>| {
        format!(
            "expected {}, found {}",
            param.kind.expected(),
            article(found.type_str())
        )
    };
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i)
            if matches!(
                param.kind,
                Kind::Int { .. } | Kind::Size | Kind::Time { .. }
            ) =>
        {
            i64::from_str_radix(i.as_str(), i.radix())
                .map(|n| n.to_string())
                .map_err(|_| format!("expected {}, found {i}", param.kind.expected()))
        }
        DeValue::Boolean(b) if param.kind == Kind::Bool => {
            Ok(if *b { "yes" } else { "no" }.to_owned())
        }
        DeValue::Array(items) if matches!(param.kind, Kind::List | Kind::NetList) => {
            let mut words = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => words.push(s.to_string()),
                    DeValue::Table(_) => return Err(NO_TABLES.to_owned()),
                    other => {
                        return Err(format!(
                            "expected {} (an array of strings), found an array containing {}",
                            param.kind.expected(),
                            article(other.type_str())
                        ));
                    }
                }
            }
            Ok(words.join(", "))
        }
        DeValue::Table(_) => Err(NO_TABLES.to_owned()),
        DeValue::Array(items) if items.iter().any(|i| i.get_ref().is_table()) => {
            Err(NO_TABLES.to_owned())
        }
        other => Err(wrong(other)),
    }
}

/// Check an expanded value against its parameter's kind.
fn check(param: &Param, expanded: &str) -> Result<Typed, ValueError> {
    if expanded.contains('\0') {
        return Err(ValueError::new("text without NUL characters", expanded));
    }
    let typed = match param.kind {
        Kind::Bool => Typed::Bool(value::parse_bool(expanded)?),
        Kind::Int { min, max } => Typed::Int(value::parse_int(expanded, min, max)?),
        Kind::Time { min_secs } => {
            let time = param.parse_time(expanded)?;
            if time.as_secs() < min_secs {
                return Err(ValueError::new(
                    format!("a time of at least {min_secs}s"),
                    expanded,
                ));
            }
            Typed::Time(time)
        }
        Kind::Size => Typed::Size(value::parse_size(expanded)?),
        Kind::List => Typed::List(value::split_list(expanded)),
        Kind::NetList => Typed::Nets(value::parse_netlist(expanded)?),
        Kind::Str | Kind::Path | Kind::Raw => Typed::Text,
    };
    param.check_extra(expanded)?;
    Ok(typed)
}

/// Parse `main.toml` text into explicit settings.
fn settings_from_toml(text: &str, path: &Path) -> Result<Settings, Error> {
    let doc = parse_toml(text, path)?;
    let mut entries: Vec<_> = doc.get_ref().iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut settings = BTreeMap::new();
    let mut dynamic = BTreeMap::new();
    for (seq, (key, value)) in entries.into_iter().enumerate() {
        let line = line_of(text, key.span().start);
        let name: &str = key.get_ref();
        let err = |message: String| Error::file(path, Some(line), Some(name), message);
        if value.get_ref().is_table() {
            return Err(err(NO_TABLES.to_owned()));
        }
        let at = At::File {
            path: path.to_path_buf(),
            line,
        };
        if params::lookup(name).is_none()
            && let Some((_, default)) = params::per_service(name)
        {
            let raw = toml_to_raw(default, value.get_ref()).map_err(err)?;
            dynamic.insert(name.to_owned(), Setting { raw, at, seq });
            continue;
        }
        let param = params::lookup(name).ok_or_else(|| err("unknown parameter".to_owned()))?;
        let raw = toml_to_raw(param, value.get_ref()).map_err(err)?;
        settings.insert(
            param.name,
            Setting {
                raw,
                at: At::File {
                    path: path.to_path_buf(),
                    line,
                },
                seq,
            },
        );
    }
    Ok((settings, dynamic))
}

/// Explicit settings: parameters of the table, and per-service ones.
type Settings = (BTreeMap<&'static str, Setting>, BTreeMap<String, Setting>);

/// Add `name=value` overrides (the argument of `-o`) to `settings`.
fn apply_overrides((settings, dynamic): &mut Settings, overrides: &[String]) -> Result<(), Error> {
    let first = settings
        .values()
        .chain(dynamic.values())
        .map(|s| s.seq + 1)
        .max()
        .unwrap_or(0);
    for (seq, arg) in (first..).zip(overrides) {
        let option = format!("-o {arg}");
        let (name, raw) = arg
            .split_once('=')
            .ok_or_else(|| Error::command_line(option.clone(), "expected name=value"))?;
        if params::lookup(name.trim()).is_none() && params::per_service(name.trim()).is_some() {
            dynamic.insert(
                name.trim().to_owned(),
                Setting {
                    raw: raw.trim().to_owned(),
                    at: At::CommandLine { option },
                    seq,
                },
            );
            continue;
        }
        let param = params::lookup(name.trim())
            .ok_or_else(|| Error::command_line(option.clone(), "unknown parameter"))?;
        settings.insert(
            param.name,
            Setting {
                raw: raw.trim().to_owned(),
                at: At::CommandLine { option },
                seq,
            },
        );
    }
    Ok(())
}

impl Setting {
    fn error(&self, name: &str, message: String) -> Error {
        match &self.at {
            At::File { path, line } => Error::file(path.clone(), Some(*line), Some(name), message),
            At::CommandLine { option } => Error::command_line(option.clone(), message),
        }
    }
}

impl Config {
    /// Read `dir/main.toml`, apply `overrides` (`name=value`, from `-o`)
    /// and validate everything. A missing file is an error naming it.
    pub fn load(dir: &Path, overrides: &[String]) -> Result<Config, Error> {
        let path = dir.join("main.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::file(&path, None, None, format!("cannot read: {e}")))?;
        let mut settings = settings_from_toml(&text, &path)?;
        apply_overrides(&mut settings, overrides)?;
        Config::build(dir.to_path_buf(), Some(path), settings)
    }

    /// Like [`Config::load`], with the text of `main.toml` given; `origin`
    /// is its path, used in errors, and its parent directory becomes
    /// [`Config::config_dir`].
    pub fn parse(text: &str, origin: &Path, overrides: &[String]) -> Result<Config, Error> {
        let mut settings = settings_from_toml(text, origin)?;
        apply_overrides(&mut settings, overrides)?;
        let dir = origin.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::build(dir, Some(origin.to_path_buf()), settings)
    }

    /// The built-in defaults only, with [`DEFAULT_CONFIG_DIR`] as the
    /// configuration directory.
    ///
    /// # Panics
    ///
    /// Only if the built-in parameter table is inconsistent, which the unit
    /// tests rule out.
    pub fn defaults() -> Config {
        match Config::build(
            PathBuf::from(DEFAULT_CONFIG_DIR),
            None,
            (BTreeMap::new(), BTreeMap::new()),
        ) {
            Ok(config) => config,
            Err(e) => panic!("postern-config: the built-in defaults are invalid: {e}"),
        }
    }

    /// A copy of this configuration with more `name=value` overrides on top
    /// (as from `-o` in a `master.toml` service's `args`), validated again.
    pub fn with_overrides(&self, overrides: &[String]) -> Result<Config, Error> {
        let dynamic = self
            .dynamic
            .iter()
            .map(|(n, (s, _))| (n.clone(), s.clone()))
            .collect();
        let mut settings = (self.explicit.clone(), dynamic);
        apply_overrides(&mut settings, overrides)?;
        Config::build(self.dir.clone(), self.file.clone(), settings)
    }

    fn build(
        dir: PathBuf,
        file: Option<PathBuf>,
        (explicit, dynamic_settings): Settings,
    ) -> Result<Config, Error> {
        let mut computed = BTreeMap::new();
        let host = system_hostname();
        let myhostname = if host.contains('.') {
            expand::escape(host)
        } else if explicit.contains_key("mydomain") {
            format!("{}.$mydomain", expand::escape(host))
        } else {
            format!("{}.localdomain", expand::escape(host))
        };
        computed.insert("myhostname", myhostname);
        let mydomain = if explicit.contains_key("mydomain") {
            "localdomain".to_owned()
        } else {
            let view = RawView {
                explicit: &explicit,
                computed: &computed,
            };
            match expand::expand_param_within("mydomain", "myhostname", &view) {
                Ok(hostname) => expand::escape(domain_of(&hostname)),
                // myhostname does not expand. Make mydomain refer to it so
                // that the validation below reports the problem at the
                // first setting (in input order) that runs into it.
                Err(_) => "$myhostname".to_owned(),
            }
        };
        computed.insert("mydomain", mydomain);

        let view = RawView {
            explicit: &explicit,
            computed: &computed,
        };
        // Explicit settings first, in input order, so that the first error
        // reported is the first mistake in the file.
        let mut order: Vec<(&'static str, &Setting)> =
            explicit.iter().map(|(name, s)| (*name, s)).collect();
        order.sort_by_key(|(_, s)| s.seq);
        let mut values: Vec<Option<Value>> = vec![None; PARAMS.len()];
        for (name, setting) in order {
            let (i, param) = param_at(name);
            let value = evaluate(param, &view).map_err(|message| setting.error(name, message))?;
            values[i] = Some(value);
        }
        let mut done = Vec::with_capacity(PARAMS.len());
        for (param, slot) in PARAMS.iter().zip(values) {
            let value = match slot {
                Some(value) => value,
                None => evaluate(param, &view).map_err(|message| {
                    builtin_error(
                        file.as_deref(),
                        param.name,
                        format!("default value {:?}: {message}", param.default),
                    )
                })?,
            };
            done.push(value);
        }
        let mut dynamic = BTreeMap::new();
        let mut order: Vec<_> = dynamic_settings.into_iter().collect();
        order.sort_by_key(|(_, s)| s.seq);
        for (name, setting) in order {
            let n = match params::per_service(&name) {
                Some((_, default)) => evaluate_as(default, &setting.raw, &view)
                    .map_err(|message| setting.error(&name, message))?,
                None => return Err(setting.error(&name, "unknown parameter".to_owned())),
            };
            dynamic.insert(name, (setting, n));
        }
        Ok(Config {
            dir,
            file,
            explicit,
            dynamic,
            computed,
            values: done,
        })
    }

    /// The directory that `main.toml` and `master.toml` were read from.
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// The `main.toml` file this configuration was read from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn value(&self, name: &str) -> (&'static Param, &Value) {
        let (i, param) = param_at(name);
        match self.values.get(i) {
            Some(value) => (param, value),
            None => panic!("postern-config: no value for parameter {name:?}"),
        }
    }

    /// The fully expanded value of `name`, as text. For [`Kind::Raw`]
    /// parameters this is the unexpanded value.
    ///
    /// # Panics
    ///
    /// If `name` is not in the parameter table (a programming error).
    pub fn str(&self, name: &str) -> String {
        self.value(name).1.expanded.clone()
    }

    /// The value of a [`Kind::Bool`] parameter.
    ///
    /// # Panics
    ///
    /// If `name` is not in the table or is not a `Bool` (programming errors).
    pub fn bool(&self, name: &str) -> bool {
        match self.value(name) {
            (
                _,
                Value {
                    typed: Typed::Bool(b),
                    ..
                },
            ) => *b,
            (param, _) => wrong_kind(param, "bool"),
        }
    }

    /// The value of a [`Kind::Int`] parameter.
    ///
    /// # Panics
    ///
    /// If `name` is not in the table or is not an `Int` (programming errors).
    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            (
                _,
                Value {
                    typed: Typed::Int(n),
                    ..
                },
            ) => *n,
            (param, _) => wrong_kind(param, "int"),
        }
    }

    /// The value of a [`Kind::Time`] parameter.
    ///
    /// # Panics
    ///
    /// If `name` is not in the table or is not a `Time` (programming errors).
    pub fn time(&self, name: &str) -> Duration {
        match self.value(name) {
            (
                _,
                Value {
                    typed: Typed::Time(t),
                    ..
                },
            ) => *t,
            (param, _) => wrong_kind(param, "time"),
        }
    }

    /// The value of a [`Kind::Size`] parameter, in bytes.
    ///
    /// # Panics
    ///
    /// If `name` is not in the table or is not a `Size` (programming errors).
    pub fn size(&self, name: &str) -> u64 {
        match self.value(name) {
            (
                _,
                Value {
                    typed: Typed::Size(s),
                    ..
                },
            ) => *s,
            (param, _) => wrong_kind(param, "size"),
        }
    }

    /// The expanded value of `name` split as a Postfix list (see
    /// [`value::split_list`]). Works for every kind.
    ///
    /// # Panics
    ///
    /// If `name` is not in the parameter table (a programming error).
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            (
                _,
                Value {
                    typed: Typed::List(l),
                    ..
                },
            ) => l.clone(),
            (_, value) => value::split_list(&value.expanded),
        }
    }

    /// The networks of a [`Kind::NetList`] parameter.
    ///
    /// # Panics
    ///
    /// If `name` is not in the table or is not a `NetList` (programming
    /// errors).
    pub fn networks(&self, name: &str) -> Vec<IpNet> {
        match self.value(name) {
            (
                _,
                Value {
                    typed: Typed::Nets(n),
                    ..
                },
            ) => n.clone(),
            (param, _) => wrong_kind(param, "networks"),
        }
    }

    /// The expanded value of `name` as a path.
    ///
    /// # Panics
    ///
    /// If `name` is not in the parameter table (a programming error).
    pub fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(&self.value(name).1.expanded)
    }

    /// The unexpanded effective value of `name` (explicit setting, else
    /// default, with computed defaults filled in), or `None` if there is no
    /// such parameter. `Config::defaults().raw(name)` is what `postconf -d`
    /// shows.
    pub fn raw(&self, name: &str) -> Option<String> {
        self.view().get(name).map(str::to_owned)
    }

    /// Whether `name` was set in `main.toml` or with `-o` (for `postconf -n`).
    pub fn is_explicit(&self, name: &str) -> bool {
        params::lookup(name).is_some_and(|p| self.explicit.contains_key(p.name))
            || self.dynamic.contains_key(name)
    }

    /// The value of the per-service parameter `<service><suffix>` (see
    /// [`params::PER_SERVICE`], e.g. `("smtp",
    /// "_destination_concurrency_limit")`): the table's own row if there
    /// is one (`local_destination_recipient_limit`), else the explicit
    /// setting, else the default parameter's value.
    ///
    /// # Panics
    ///
    /// If `suffix` is not in [`params::PER_SERVICE`] (a programming error).
    pub fn service_int(&self, service: &str, suffix: &str) -> i64 {
        let name = format!("{service}{suffix}");
        if params::lookup(&name).is_some() {
            return self.int(&name);
        }
        if let Some((_, n)) = self.dynamic.get(&name) {
            return *n;
        }
        match params::PER_SERVICE.iter().find(|(s, _)| *s == suffix) {
            Some((_, default)) => self.int(default),
            None => panic!("postern-config: {suffix:?} is not a per-service parameter suffix"),
        }
    }

    /// Checks that every per-service parameter set names one of
    /// `services` (the `master.toml` services); the error names the file,
    /// line and parameter of the first that does not.
    pub fn check_services<'a>(
        &self,
        services: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), Error> {
        let mut order: Vec<_> = self.dynamic.iter().collect();
        order.sort_by_key(|(_, (s, _))| s.seq);
        for (name, (setting, _)) in order {
            let Some((service, _)) = params::per_service(name) else {
                continue;
            };
            if !services.clone().into_iter().any(|s| s == service) {
                return Err(setting.error(
                    name,
                    format!("unknown parameter (no service {service:?} in master.toml)"),
                ));
            }
        }
        Ok(())
    }

    /// Every explicitly set parameter with its unexpanded value, sorted by
    /// name.
    pub fn explicit(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .explicit
            .iter()
            .map(|(name, s)| ((*name).to_owned(), s.raw.clone()))
            .chain(
                self.dynamic
                    .iter()
                    .map(|(name, (s, _))| (name.clone(), s.raw.clone())),
            )
            .collect();
        all.sort();
        all
    }

    /// Whether this machine should use IPv4 and IPv6, from `inet_protocols`.
    pub fn inet_protocols(&self) -> (bool, bool) {
        let mut v4 = false;
        let mut v6 = false;
        for word in self.list("inet_protocols") {
            match word.to_ascii_lowercase().as_str() {
                "all" => (v4, v6) = (true, true),
                "ipv4" => v4 = true,
                "ipv6" => v6 = true,
                _ => {}
            }
        }
        (v4, v6)
    }

    /// The addresses that `inet_interfaces` names, filtered by
    /// `inet_protocols`: `all` becomes `0.0.0.0` and `::`, `loopback-only`
    /// becomes `127.0.0.1` and `::1`. Duplicates are removed.
    pub fn inet_interfaces(&self) -> Vec<IpAddr> {
        let (v4, v6) = self.inet_protocols();
        let mut out: Vec<IpAddr> = Vec::new();
        let mut add = |addr: IpAddr| {
            if ((addr.is_ipv4() && v4) || (addr.is_ipv6() && v6)) && !out.contains(&addr) {
                out.push(addr);
            }
        };
        for word in self.list("inet_interfaces") {
            if word.eq_ignore_ascii_case("all") {
                add(IpAddr::from([0, 0, 0, 0]));
                add(IpAddr::from([0u16; 8]));
            } else if word.eq_ignore_ascii_case("loopback-only") {
                add(IpAddr::from([127, 0, 0, 1]));
                add(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16]));
            } else if let Some(addr) = params::parse_interface_addr(&word) {
                add(addr);
            }
        }
        out
    }

    fn view(&self) -> RawView<'_> {
        RawView {
            explicit: &self.explicit,
            computed: &self.computed,
        }
    }
}

fn param_at(name: &str) -> (usize, &'static Param) {
    match params::index(name).and_then(|i| PARAMS.get(i).map(|p| (i, p))) {
        Some(found) => found,
        None => panic!("postern-config: parameter {name:?} is not in the parameter table"),
    }
}

fn wrong_kind(param: &Param, accessor: &str) -> ! {
    panic!(
        "postern-config: Config::{accessor}({:?}) called on a parameter of kind {:?}",
        param.name, param.kind
    )
}

fn builtin_error(file: Option<&Path>, name: &str, message: String) -> Error {
    Error {
        origin: match file {
            Some(path) => Origin::File(path.to_path_buf()),
            None => Origin::Builtin,
        },
        line: None,
        key: Some(name.to_owned()),
        message,
    }
}

/// Expand and check one parameter; the error is the message only.
/// The integer value of `raw`, expanded and checked as `param` (a
/// per-service parameter checked like its default).
fn evaluate_as(param: &Param, raw: &str, view: &RawView<'_>) -> Result<i64, String> {
    let expanded = expand::expand_str(raw, view).map_err(|e| e.to_string())?;
    match check(param, &expanded).map_err(|e| e.to_string())? {
        Typed::Int(n) => Ok(n),
        _ => Err(format!("expected {}", param.kind.expected())),
    }
}

fn evaluate(param: &Param, view: &RawView<'_>) -> Result<Value, String> {
    let expanded = expand::expand_param(param.name, view).map_err(|e| e.to_string())?;
    let typed = check(param, &expanded).map_err(|e| e.to_string())?;
    Ok(Value { expanded, typed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/postern/main.toml";

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(text, Path::new(FILE), &[])
    }

    fn parse_o(text: &str, overrides: &[&str]) -> Result<Config, Error> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::parse(text, Path::new(FILE), &overrides)
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::defaults();
        assert_eq!(c.config_dir(), Path::new(DEFAULT_CONFIG_DIR));
        assert_eq!(c.size("message_size_limit"), 10_240_000);
        assert_eq!(
            c.time("maximal_queue_lifetime"),
            Duration::from_secs(5 * 86_400)
        );
        assert_eq!(c.time("delay_warning_time"), Duration::ZERO);
        assert!(c.bool("disable_vrfy_command"));
        assert_eq!(c.int("smtpd_recipient_limit"), 1000);
        assert_eq!(c.str("mail_name"), "Postern");
        assert_eq!(c.str("myorigin"), c.str("myhostname"));
        assert!(c.str("myhostname").contains('.'));
        assert_eq!(c.networks("mynetworks").len(), 3);
        assert_eq!(
            c.path("queue_directory"),
            PathBuf::from("/var/spool/postern")
        );
        assert!(c.explicit().is_empty());
        assert!(!c.is_explicit("myhostname"));
        assert_eq!(c.raw("myorigin").as_deref(), Some("$myhostname"));
        assert_eq!(c.raw("nonexistent"), None);
        assert_eq!(
            c.list("smtpd_relay_restrictions"),
            [
                "permit_mynetworks",
                "permit_sasl_authenticated",
                "defer_unauth_destination"
            ]
        );
        let host = c.str("myhostname");
        assert_eq!(
            c.list("mydestination"),
            [
                host,
                format!("localhost.{}", c.str("mydomain")),
                "localhost".into()
            ]
        );
    }

    #[test]
    fn myorigin_follows_myhostname_and_o_overrides_file() {
        let c = parse("myhostname = \"mail.example.com\"\n").unwrap();
        assert_eq!(c.str("myorigin"), "mail.example.com");
        assert_eq!(c.str("mydomain"), "example.com");
        assert_eq!(c.list("mydestination")[1], "localhost.example.com");
        assert_eq!(c.str("smtpd_banner"), "mail.example.com ESMTP Postern");
        assert!(c.is_explicit("myhostname"));
        assert!(!c.is_explicit("myorigin"));
        assert_eq!(c.config_dir(), Path::new("/etc/postern"));

        let c = parse_o(
            "myhostname = \"mail.example.com\"\nmessage_size_limit = 5\n",
            &["myhostname=mx.example.org", "message_size_limit = 7"],
        )
        .unwrap();
        assert_eq!(c.str("myorigin"), "mx.example.org");
        assert_eq!(c.size("message_size_limit"), 7);
        assert_eq!(
            c.explicit(),
            [
                ("message_size_limit".to_owned(), "7".to_owned()),
                ("myhostname".to_owned(), "mx.example.org".to_owned())
            ]
        );
        let c2 = c.with_overrides(&["myorigin=example.org".into()]).unwrap();
        assert_eq!(c2.str("myorigin"), "example.org");
        assert_eq!(c.str("myorigin"), "mx.example.org");
    }

    #[test]
    fn mydomain_and_myhostname() {
        let c = parse("myhostname = \"example.com\"").unwrap();
        assert_eq!(c.str("mydomain"), "localdomain");
        let c = parse("mydomain = \"example.net\"\nmyhostname = \"mx.$mydomain\"").unwrap();
        assert_eq!(c.str("myhostname"), "mx.example.net");
        assert_eq!(
            err("myhostname = \"mx.$mydomain\""),
            "/etc/postern/main.toml:1: myhostname: expansion loop: myhostname -> mydomain -> myhostname"
        );
        assert_eq!(
            err("\nmyhostname = \"$nosuch\""),
            "/etc/postern/main.toml:2: myhostname: unknown parameter $nosuch"
        );
    }

    #[test]
    fn per_service_parameters() {
        let c = parse_o(
            "default_destination_concurrency_limit = 7\n\
             smtp_destination_concurrency_limit = \"$default_destination_concurrency_limit\"\n\
             relay_destination_recipient_limit = 5\n",
            &["lmtp_destination_recipient_limit=9"],
        )
        .unwrap();
        let cl = "_destination_concurrency_limit";
        let rl = "_destination_recipient_limit";
        assert_eq!(c.service_int("smtp", cl), 7);
        assert_eq!(c.service_int("other", cl), 7);
        assert_eq!(c.service_int("relay", rl), 5);
        assert_eq!(c.service_int("lmtp", rl), 9);
        assert_eq!(c.service_int("smtp", rl), 50);
        // The table's own rows and defaults win.
        assert_eq!(c.service_int("local", cl), 2);
        assert_eq!(c.service_int("local", rl), 1);
        assert!(c.is_explicit("relay_destination_recipient_limit"));
        assert!(
            c.explicit()
                .iter()
                .any(|(n, v)| n == "lmtp_destination_recipient_limit" && v == "9")
        );
        assert!(c.check_services(["smtp", "relay", "lmtp"]).is_ok());
        assert!(c.check_services(["smtp", "relay"]).is_err());
        assert_eq!(
            err("x_destination_concurrency_limit = \"many\""),
            "/etc/postern/main.toml:1: x_destination_concurrency_limit: expected an integer from 0 to 2147483647, found \"many\""
        );
        assert_eq!(
            err("_destination_concurrency_limit = 1"),
            "/etc/postern/main.toml:1: _destination_concurrency_limit: unknown parameter"
        );
        let o = Config::parse(
            "",
            Path::new(FILE),
            &["smtp_destination_rate_delay=1".into()],
        );
        assert!(o.is_err());
    }

    #[test]
    fn native_and_postfix_values() {
        let c = parse(
            r#"
message_size_limit = 20480000
mailbox_size_limit = "0"
disable_vrfy_command = true
swap_bangpath = "no"
mydestination = ["example.com", "$myhostname"]
relay_domains = "a.example, b.example c.example"
max_idle = 60
maximal_queue_lifetime = 2
smtpd_timeout = "5m"
mynetworks = ["10.0.0.0/8", "[2001:db8::]/32"]
default_process_limit = 0x10
mailbox_command = "/usr/bin/procmail -a $EXTENSION"
"#,
        )
        .unwrap();
        assert_eq!(c.size("message_size_limit"), 20_480_000);
        assert_eq!(c.size("mailbox_size_limit"), 0);
        assert!(c.bool("disable_vrfy_command"));
        assert!(!c.bool("swap_bangpath"));
        assert_eq!(
            c.list("mydestination"),
            ["example.com".to_owned(), c.str("myhostname")]
        );
        assert_eq!(
            c.raw("mydestination").as_deref(),
            Some("example.com, $myhostname")
        );
        assert_eq!(
            c.list("relay_domains"),
            ["a.example", "b.example", "c.example"]
        );
        assert_eq!(c.time("max_idle"), Duration::from_secs(60));
        assert_eq!(
            c.time("maximal_queue_lifetime"),
            Duration::from_secs(2 * 86_400)
        );
        assert_eq!(c.time("smtpd_timeout"), Duration::from_secs(300));
        assert_eq!(c.networks("mynetworks").len(), 2);
        assert_eq!(c.int("default_process_limit"), 16);
        assert_eq!(c.str("mailbox_command"), "/usr/bin/procmail -a $EXTENSION");
    }

    #[test]
    fn errors_name_file_line_key_and_expectation() {
        assert_eq!(
            err("# comment\n\nmessage_size_limit = \"ten\"\n"),
            "/etc/postern/main.toml:3: message_size_limit: expected a size in bytes, found \"ten\""
        );
        assert_eq!(
            err("myhostname = \"a\"\nno_such_thing = 1\n"),
            "/etc/postern/main.toml:2: no_such_thing: unknown parameter"
        );
        assert_eq!(
            err("message_size_limit = true"),
            "/etc/postern/main.toml:1: message_size_limit: expected a size in bytes, found a boolean"
        );
        assert_eq!(
            err("myhostname = 5"),
            "/etc/postern/main.toml:1: myhostname: expected a string, found an integer"
        );
        assert_eq!(
            err("mydestination = [1, 2]"),
            "/etc/postern/main.toml:1: mydestination: expected a list of words separated by commas or spaces (an array of strings), found an array containing an integer"
        );
        assert_eq!(
            err("smtpd_timeout = 1.5"),
            "/etc/postern/main.toml:1: smtpd_timeout: expected a time (a number with an optional unit s, m, h, d or w), found a float"
        );
        assert_eq!(
            err("\n\nsmtpd_timeout = \"soon\""),
            "/etc/postern/main.toml:3: smtpd_timeout: expected a time (a number with an optional unit s, m, h, d or w), found \"soon\""
        );
        assert_eq!(
            err("smtpd_timeout = \"0\""),
            "/etc/postern/main.toml:1: smtpd_timeout: expected a time of at least 1s, found \"0\""
        );
        assert_eq!(
            err("disable_vrfy_command = \"maybe\""),
            "/etc/postern/main.toml:1: disable_vrfy_command: expected yes or no, found \"maybe\""
        );
        assert_eq!(
            err("default_process_limit = 0"),
            "/etc/postern/main.toml:1: default_process_limit: expected an integer from 1 to 2147483647, found \"0\""
        );
        assert_eq!(
            err("default_process_limit = 99999999999"),
            "/etc/postern/main.toml:1: default_process_limit: expected an integer from 1 to 2147483647, found \"99999999999\""
        );
        assert_eq!(
            err("mynetworks = \"127.0.0.0/8 10.0.0.0/33\""),
            "/etc/postern/main.toml:1: mynetworks: expected a network address (a.b.c.d/n, a.b.c.d, [ipv6]/n, ipv6/n or [ipv6]), found \"10.0.0.0/33\""
        );
        assert_eq!(
            err("myhostname = \"x.y\"\n[smtpd]\ntimeout = 5\n"),
            "/etc/postern/main.toml:2: smtpd: tables are not allowed in main.toml; write flat \"name = value\" lines"
        );
        assert_eq!(
            err("smtpd.timeout = 5\n"),
            "/etc/postern/main.toml:1: smtpd: tables are not allowed in main.toml; write flat \"name = value\" lines"
        );
        assert_eq!(
            err("mydestination = { a = 1 }\n"),
            "/etc/postern/main.toml:1: mydestination: tables are not allowed in main.toml; write flat \"name = value\" lines"
        );
        assert_eq!(
            err("queue_directory = \"spool\""),
            "/etc/postern/main.toml:1: queue_directory: expected an absolute path name, found \"spool\""
        );
        assert_eq!(
            err("inet_protocols = \"ipv4, ipv5\""),
            "/etc/postern/main.toml:1: inet_protocols: expected all, ipv4 or ipv6, found \"ipv5\""
        );
        assert_eq!(
            err("inet_interfaces = \"all, eth0\""),
            "/etc/postern/main.toml:1: inet_interfaces: expected all, loopback-only or IP addresses, found \"eth0\""
        );
        assert_eq!(
            err("mail_name = \"a\\u0000b\""),
            "/etc/postern/main.toml:1: mail_name: expected text without NUL characters, found \"a\\0b\""
        );
    }

    #[test]
    fn toml_syntax_error_has_line() {
        let e = parse("myhostname = \"a.b\"\n\nmail_name = \n").unwrap_err();
        assert_eq!(e.origin, Origin::File(PathBuf::from(FILE)));
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string()
                .starts_with("/etc/postern/main.toml:3: TOML syntax error: "),
            "{e}"
        );
        let e = parse("a = 1\na = 2\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn expansion_errors_name_the_key() {
        assert_eq!(
            err("myorigin = \"$nosuch\""),
            "/etc/postern/main.toml:1: myorigin: unknown parameter $nosuch"
        );
        assert_eq!(
            err("myorigin = \"$myhostname\"\nmyhostname = \"$myorigin\""),
            "/etc/postern/main.toml:1: myorigin: expansion loop: myorigin -> myhostname -> myorigin"
        );
        assert_eq!(
            err("smtpd_banner = \"cost: $ 5\""),
            "/etc/postern/main.toml:1: smtpd_banner: '$' must be followed by a parameter name, '{', '(' or '$' (write $$ for a literal '$')"
        );
        let c = parse("smtpd_banner = \"$myhostname $$5 ${relayhost:direct} ${mail_name?named}\"")
            .unwrap();
        assert_eq!(
            c.str("smtpd_banner"),
            format!("{} $5 direct named", c.str("myhostname"))
        );
    }

    #[test]
    fn bad_overrides() {
        let e = parse_o("", &["message_size_limit=ten"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "command line: -o message_size_limit=ten: expected a size in bytes, found \"ten\""
        );
        assert_eq!(
            e.origin,
            Origin::CommandLine("-o message_size_limit=ten".into())
        );
        assert_eq!(
            parse_o("", &["nosuch=1"]).unwrap_err().to_string(),
            "command line: -o nosuch=1: unknown parameter"
        );
        assert_eq!(
            parse_o("", &["message_size_limit"])
                .unwrap_err()
                .to_string(),
            "command line: -o message_size_limit: expected name=value"
        );
        assert_eq!(
            parse_o("", &["myorigin=$nosuch"]).unwrap_err().to_string(),
            "command line: -o myorigin=$nosuch: unknown parameter $nosuch"
        );
    }

    #[test]
    fn load_reads_dir_main_toml() {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::load(dir.path(), &[]).unwrap_err();
        let path = dir.path().join("main.toml");
        assert_eq!(e.origin, Origin::File(path.clone()));
        assert!(
            e.to_string()
                .starts_with(&format!("{}: cannot read: ", path.display()))
        );
        std::fs::write(&path, "mail_name = \"Test\"\n").unwrap();
        let c = Config::load(dir.path(), &["relayhost=[smarthost]".into()]).unwrap();
        assert_eq!(c.str("mail_name"), "Test");
        assert_eq!(c.str("relayhost"), "[smarthost]");
        assert_eq!(c.config_dir(), dir.path());
        assert_eq!(c.file(), Some(path.as_path()));
        std::fs::write(&path, "\nmail_name = 3\n").unwrap();
        let e = Config::load(dir.path(), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:2: mail_name: expected a string, found an integer",
                path.display()
            )
        );
    }

    #[test]
    fn interfaces_and_protocols() {
        let c = parse("inet_interfaces = \"127.0.0.1, ::1, [::2]\"").unwrap();
        assert_eq!(c.inet_interfaces().len(), 3);
        let c = parse("inet_interfaces = \"all\"\ninet_protocols = \"ipv4\"").unwrap();
        assert_eq!(c.inet_interfaces(), [IpAddr::from([0, 0, 0, 0])]);
        let c = parse("inet_interfaces = \"loopback-only\"\ninet_protocols = \"ipv6\"").unwrap();
        assert_eq!(
            c.inet_interfaces(),
            [IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16])]
        );
    }

    #[test]
    #[should_panic(expected = "not in the parameter table")]
    fn unknown_accessor_name_panics() {
        Config::defaults().str("no_such_parameter");
    }

    #[test]
    #[should_panic(expected = "called on a parameter of kind")]
    fn wrong_accessor_panics() {
        Config::defaults().time("mail_name");
    }
}
