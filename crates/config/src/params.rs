//! The parameter table: every `main.toml` parameter, its type, default and
//! documentation, in one place.
//!
//! Postfix counterpart: `global/mail_params.h` (the `VAR_*`/`DEF_*` pairs),
//! the `CONFIG_*_TABLE`s in `mail_params.c` and in each daemon's `main()`,
//! and `proto/postconf.proto` for the text. Names, meanings and defaults are
//! Postfix's unless the row's `doc` says otherwise, so that an
//! administrator's Postfix knowledge carries over. `postconf -d` and the
//! `main.toml(5)` man page are generated from this table, so they cannot
//! drift from the code.
//!
//! Defaults are strings in Postfix syntax and may refer to other parameters
//! (`$myhostname`). Two defaults are computed at run time (see
//! [`Param::is_computed`]): `myhostname` and `mydomain`; for those the table
//! holds the fallback and [`crate::Config::defaults`]`.raw(name)` gives the
//! value in effect.

use std::time::Duration;

use crate::value::{self, ValueError};

/// Largest value of a [`Kind::Int`] parameter (Postfix's `int`).
const INT_MAX: i64 = i32::MAX as i64;

/// The type of a parameter's value, after `$name` expansion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `yes`/`no` (also `true`/`false`).
    Bool,
    /// A decimal integer within `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A time: a number with an optional unit `s`, `m`, `h`, `d` or `w`. A
    /// bare number is in the unit of the parameter's default value (as in
    /// Postfix), which is seconds unless the row's doc says otherwise.
    Time {
        /// Smallest allowed value, in seconds.
        min_secs: u64,
    },
    /// A size in bytes (a plain decimal number).
    Size,
    /// Free text.
    Str,
    /// A list of words separated by commas and/or whitespace.
    List,
    /// A file or directory name.
    Path,
    /// A list of networks: `a.b.c.d/n`, `a.b.c.d`, `[v6]/n`, `[v6]`, `v6/n`.
    NetList,
    /// Free text that is *not* `$name`-expanded at load time, because its
    /// `$` macros belong to the program that uses it (Postfix's
    /// `CONFIG_RAW_TABLE`, e.g. `mailbox_command` with `$user`).
    Raw,
}

impl Kind {
    /// What a valid value looks like, for error messages ("expected ...").
    pub fn expected(&self) -> String {
        match *self {
            Kind::Bool => "yes or no".into(),
            Kind::Int { min, max } if max == i64::MAX => format!("an integer of at least {min}"),
            Kind::Int { min, max } => format!("an integer from {min} to {max}"),
            Kind::Time { .. } => value::TIME_EXPECTED.into(),
            Kind::Size => "a size in bytes".into(),
            Kind::Str | Kind::Raw => "a string".into(),
            Kind::List => "a list of words separated by commas or spaces".into(),
            Kind::Path => "a path name".into(),
            Kind::NetList => "a list of networks (a.b.c.d/n or [ipv6]/n)".into(),
        }
    }
}

/// One row of the parameter table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// The parameter name, as in Postfix when the meaning matches.
    pub name: &'static str,
    /// The type of its value.
    pub kind: Kind,
    /// The default value, unexpanded, in Postfix syntax.
    pub default: &'static str,
    /// One-line documentation (for `postconf` and the man page).
    pub doc: &'static str,
}

/// Parameters whose default is computed at run time rather than taken from
/// [`Param::default`].
const COMPUTED: &[&str] = &["mydomain", "myhostname"];

/// Paths that must be absolute.
const ABSOLUTE_PATHS: &[&str] = &[
    "command_directory",
    "daemon_directory",
    "data_directory",
    "queue_directory",
];

impl Param {
    /// Whether the default is computed at run time (`myhostname` from the
    /// system hostname, `mydomain` from `myhostname`); [`Param::default`] is
    /// then only the fallback.
    pub fn is_computed(&self) -> bool {
        COMPUTED.contains(&self.name)
    }

    /// The unit of a bare number for a [`Kind::Time`] parameter: the unit
    /// letter of its default value (`'d'` for `5d`), else `'s'`.
    pub fn time_unit(&self) -> char {
        self.default
            .chars()
            .last()
            .filter(|c| matches!(c, 's' | 'm' | 'h' | 'd' | 'w'))
            .unwrap_or('s')
    }

    /// Parse a time value for this parameter (see [`Param::time_unit`]).
    pub fn parse_time(&self, text: &str) -> Result<Duration, ValueError> {
        value::parse_time_unit(text, self.time_unit())
    }

    /// Checks beyond the kind, on the expanded value: fixed keyword sets and
    /// absolute paths. Returns a complete "expected ..." error.
    pub(crate) fn check_extra(&self, expanded: &str) -> Result<(), ValueError> {
        let words = |allowed: &[&str], what: &str| {
            for word in value::split_list(expanded) {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&word)) {
                    return Err(ValueError::new(what, &word));
                }
            }
            Ok(())
        };
        match self.name {
            "inet_protocols" => words(&["all", "ipv4", "ipv6"], "all, ipv4 or ipv6"),
            "smtpd_forbid_bare_newline" => words(
                &["normalize", "yes", "reject", "no"],
                "normalize, yes, reject or no",
            ),
            "inet_interfaces" => {
                for word in value::split_list(expanded) {
                    if !word.eq_ignore_ascii_case("all")
                        && !word.eq_ignore_ascii_case("loopback-only")
                        && parse_interface_addr(&word).is_none()
                    {
                        return Err(ValueError::new("all, loopback-only or IP addresses", &word));
                    }
                }
                Ok(())
            }
            name if ABSOLUTE_PATHS.contains(&name) && !expanded.starts_with('/') => {
                Err(ValueError::new("an absolute path name", expanded))
            }
            _ => Ok(()),
        }
    }
}

/// An IP address in `inet_interfaces`: plain or in brackets.
pub(crate) fn parse_interface_addr(word: &str) -> Option<std::net::IpAddr> {
    let inner = word
        .strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .unwrap_or(word);
    inner.parse().ok()
}

/// Parameters that exist once per `master.toml` service, named
/// `<service><suffix>` (Postfix's `transport_destination_concurrency_limit`
/// and friends): the suffix and the parameter that gives the default.
/// Names in [`PARAMS`] (`local_destination_recipient_limit`) take
/// precedence, with their own defaults. main.toml accepts any such name;
/// loading `master.toml` checks that the service exists
/// ([`crate::Config::check_services`]).
pub static PER_SERVICE: &[(&str, &str)] = &[
    (
        "_destination_concurrency_limit",
        "default_destination_concurrency_limit",
    ),
    (
        "_destination_recipient_limit",
        "default_destination_recipient_limit",
    ),
];

/// Splits a per-service parameter name (see [`PER_SERVICE`]) into the
/// service name and the parameter giving its default.
pub fn per_service(name: &str) -> Option<(&str, &'static Param)> {
    PER_SERVICE.iter().find_map(|(suffix, default)| {
        let service = name.strip_suffix(suffix)?;
        let ok = !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Some((service, lookup(default)?))
        } else {
            None
        }
    })
}

/// Find a parameter by name.
pub fn lookup(name: &str) -> Option<&'static Param> {
    index(name).and_then(|i| PARAMS.get(i))
}

/// Position of `name` in [`PARAMS`].
pub(crate) fn index(name: &str) -> Option<usize> {
    PARAMS.binary_search_by(|p| p.name.cmp(name)).ok()
}

/// Every parameter, sorted by name.
pub static PARAMS: &[Param] = &[
    Param {
        name: "2bounce_notice_recipient",
        kind: Kind::Str,
        default: "postmaster",
        doc: "Who gets undeliverable bounces (double bounces) when notify_classes has bounce or 2bounce.",
    },
    Param {
        name: "alias_database",
        kind: Kind::List,
        default: "hash:/etc/aliases",
        doc: "The alias databases that newaliases(1) rebuilds. Postfix's default is system dependent; Postern uses hash:/etc/aliases.",
    },
    Param {
        name: "alias_maps",
        kind: Kind::List,
        default: "hash:/etc/aliases",
        doc: "Lookup tables with the aliases that local(8) expands. Postfix's default is system dependent; Postern uses hash:/etc/aliases.",
    },
    Param {
        name: "allow_mail_to_commands",
        kind: Kind::List,
        default: "alias, forward",
        doc: "Where local(8) may deliver to \"|command\" targets: any of alias, forward, include (:include: files).",
    },
    Param {
        name: "allow_mail_to_files",
        kind: Kind::List,
        default: "alias, forward",
        doc: "Where local(8) may deliver to /file/name targets: any of alias, forward, include (:include: files).",
    },
    Param {
        name: "allow_percent_hack",
        kind: Kind::Bool,
        default: "yes",
        doc: "Let trivial-rewrite(8) rewrite \"user%domain\" into \"user@domain\".",
    },
    Param {
        name: "always_add_missing_headers",
        kind: Kind::Bool,
        default: "no",
        doc: "Let cleanup(8) add a missing From:, Date: and Message-ID: header to mail from the network too; by default only local submissions get them.",
    },
    Param {
        name: "append_dot_mydomain",
        kind: Kind::Bool,
        default: "no",
        doc: "Let trivial-rewrite(8) append \".$mydomain\" to domains without a dot (Postfix 3.0 and later default no).",
    },
    Param {
        name: "body_checks",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables with patterns that cleanup(8) matches against each line of the message body.",
    },
    Param {
        name: "bounce_notice_recipient",
        kind: Kind::Str,
        default: "postmaster",
        doc: "Who gets a copy of the headers of bounced mail when notify_classes has bounce.",
    },
    Param {
        name: "bounce_queue_lifetime",
        kind: Kind::Time { min_secs: 0 },
        default: "5d",
        doc: "How long a bounce message may stay queued before it is considered undeliverable. A bare number means days; 0 means one delivery attempt.",
    },
    Param {
        name: "bounce_size_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "50000",
        doc: "The maximal amount of original message text, in bytes, sent in a non-delivery notification.",
    },
    Param {
        name: "canonical_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables that cleanup(8) uses to rewrite sender and recipient addresses in the envelope and headers.",
    },
    Param {
        name: "command_directory",
        kind: Kind::Path,
        default: "/usr/sbin",
        doc: "The directory with the administrative commands (postconf, postqueue, postsuper, ...).",
    },
    Param {
        name: "command_time_limit",
        kind: Kind::Time { min_secs: 1 },
        default: "1000s",
        doc: "How long local(8) lets a command run when it delivers to one (alias, .forward, mailbox_command).",
    },
    Param {
        name: "daemon_directory",
        kind: Kind::Path,
        default: "/usr/libexec/postern",
        doc: "The directory with the daemon programs that master(8) runs; master.toml commands without a '/' are looked up here.",
    },
    Param {
        name: "daemon_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "18000s",
        doc: "How long a daemon may take to handle one request before it terminates itself (watchdog).",
    },
    Param {
        name: "data_directory",
        kind: Kind::Path,
        default: "/var/lib/postern",
        doc: "The directory with writable data files that are not queue files (caches, random seed).",
    },
    Param {
        name: "default_database_type",
        kind: Kind::Str,
        default: "hash",
        doc: "The table type that postmap(1) and postalias(1) assume for a file named without \"type:\". Postern reads the source text of hash, btree, texthash, lmdb and cdb tables directly, so these types are equivalent.",
    },
    Param {
        name: "default_destination_concurrency_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "20",
        doc: "The default maximal number of parallel deliveries to one destination, across messages; 0 means no limit. Per transport: <service>_destination_concurrency_limit for any master.toml service.",
    },
    Param {
        name: "default_destination_recipient_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "50",
        doc: "The default maximal number of recipients per delivery request; 0 means no limit. Per transport: <service>_destination_recipient_limit for any master.toml service; with 1, concurrency limits are per recipient.",
    },
    Param {
        name: "default_privs",
        kind: Kind::Str,
        default: "nobody",
        doc: "The user that local(8) runs as when delivering to a command or file on behalf of an alias or a root-owned .forward.",
    },
    Param {
        name: "default_process_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "100",
        doc: "The default maximal number of processes of one master.toml service (its maxproc).",
    },
    Param {
        name: "default_transport",
        kind: Kind::Str,
        default: "smtp",
        doc: "The transport for destinations that are not local, virtual or relay domains, when transport_maps has no entry.",
    },
    Param {
        name: "delay_notice_recipient",
        kind: Kind::Str,
        default: "postmaster",
        doc: "Who gets a copy of the headers of delayed mail when notify_classes has delay.",
    },
    Param {
        name: "delay_warning_time",
        kind: Kind::Time { min_secs: 0 },
        default: "0h",
        doc: "How long a message must be queued before the sender gets a \"delayed mail\" notice. A bare number means hours; 0 disables the notice.",
    },
    Param {
        name: "deliver_lock_attempts",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "20",
        doc: "How often a delivery agent tries to lock a mailbox file before it defers the delivery.",
    },
    Param {
        name: "deliver_lock_delay",
        kind: Kind::Time { min_secs: 0 },
        default: "1s",
        doc: "The pause between attempts to lock a mailbox file.",
    },
    Param {
        name: "development_mode",
        kind: Kind::Bool,
        default: "no",
        doc: "Run every service as the user who started master and accept that user, even root, as the owner of the spool; for make run and tests only. (Postern only.)",
    },
    Param {
        name: "disable_mime_output_conversion",
        kind: Kind::Bool,
        default: "no",
        doc: "Let smtp(8) send 8-bit mail as it is to a server that does not announce 8BITMIME, instead of converting 8-bit MIME parts to quoted-printable.",
    },
    Param {
        name: "disable_vrfy_command",
        kind: Kind::Bool,
        default: "yes",
        doc: "Refuse the SMTP VRFY command in smtpd(8). Postern's default is yes (Postfix's is no): VRFY lets anyone harvest addresses.",
    },
    Param {
        name: "double_bounce_sender",
        kind: Kind::Str,
        default: "double-bounce",
        doc: "The sender (local part, qualified with $myhostname) of postmaster notifications; mail from it that cannot be delivered is discarded, never bounced again.",
    },
    Param {
        name: "duplicate_filter_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "1000",
        doc: "The maximal number of addresses that cleanup(8) remembers when it removes duplicate recipients; 0 means no limit.",
    },
    Param {
        name: "fallback_relay",
        kind: Kind::List,
        default: "",
        doc: "Obsolete name of smtp_fallback_relay (its default).",
    },
    Param {
        name: "fast_flush_domains",
        kind: Kind::List,
        default: "$relay_domains",
        doc: "Destinations whose deferred mail postqueue -s (sendmail -qR) may flush through flush(8).",
    },
    Param {
        name: "forward_path",
        kind: Kind::Raw,
        default: "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
        doc: "Where local(8) looks for a user's .forward file; the first that exists is used. Its $home, $user, $extension, ... macros are expanded by local(8), not at load time.",
    },
    Param {
        name: "header_checks",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables with patterns that cleanup(8) matches against each message header.",
    },
    Param {
        name: "header_size_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "102400",
        doc: "The maximal amount of memory, in bytes, that cleanup(8) uses for one message header.",
    },
    Param {
        name: "home_mailbox",
        kind: Kind::Str,
        default: "",
        doc: "The mailbox file (or Maildir when it ends in '/') relative to the user's home directory; empty means mail_spool_directory.",
    },
    Param {
        name: "hop_count_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "50",
        doc: "The maximal number of Received: headers before a message is returned as looping.",
    },
    Param {
        name: "inet_interfaces",
        kind: Kind::List,
        default: "all",
        doc: "The network addresses that inet services listen on when master.toml gives only a port: \"all\", \"loopback-only\", or IP addresses.",
    },
    Param {
        name: "inet_protocols",
        kind: Kind::List,
        default: "all",
        doc: "The IP protocols to use: \"all\", \"ipv4\", \"ipv6\", or \"ipv4, ipv6\".",
    },
    Param {
        name: "ipc_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "3600s",
        doc: "The time limit for sending or receiving information over an internal communication channel.",
    },
    Param {
        name: "line_length_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "2048",
        doc: "Longer lines in a message are broken into pieces of this many bytes by smtpd(8), cleanup(8) and sendmail.",
    },
    Param {
        name: "lmtp_connect_timeout",
        kind: Kind::Time { min_secs: 0 },
        default: "0s",
        doc: "The lmtp(8) client's time limit for completing a TCP connection; 0 means the system limit.",
    },
    Param {
        name: "lmtp_data_done_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "600s",
        doc: "The lmtp(8) client's time limit for the replies to the final \".\" of DATA.",
    },
    Param {
        name: "lmtp_data_init_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "120s",
        doc: "The lmtp(8) client's time limit for the server's reply to DATA.",
    },
    Param {
        name: "lmtp_data_xfer_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "180s",
        doc: "The lmtp(8) client's time limit for sending the message content.",
    },
    Param {
        name: "lmtp_lhlo_name",
        kind: Kind::Str,
        default: "$myhostname",
        doc: "The hostname that the lmtp(8) client sends in LHLO.",
    },
    Param {
        name: "lmtp_lhlo_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The lmtp(8) client's time limit for the greeting and the reply to LHLO.",
    },
    Param {
        name: "lmtp_mail_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The lmtp(8) client's time limit for the reply to MAIL FROM.",
    },
    Param {
        name: "lmtp_quit_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The lmtp(8) client's time limit for the reply to QUIT.",
    },
    Param {
        name: "lmtp_rcpt_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The lmtp(8) client's time limit for the reply to RCPT TO.",
    },
    Param {
        name: "lmtp_starttls_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The lmtp(8) client's time limit for the TLS handshake after STARTTLS.",
    },
    Param {
        name: "lmtp_tcp_port",
        kind: Kind::Str,
        default: "24",
        doc: "The default TCP port of an lmtp(8) next hop given as inet:host without a port.",
    },
    Param {
        name: "lmtp_tls_CAfile",
        kind: Kind::Path,
        default: "",
        doc: "PEM file with the CA certificates the lmtp(8) client trusts at lmtp_tls_security_level = verify or secure; empty means the system bundle (/etc/ssl/certs/ca-certificates.crt).",
    },
    Param {
        name: "lmtp_tls_loglevel",
        kind: Kind::Int { min: 0, max: 4 },
        default: "0",
        doc: "How much the lmtp(8) client logs about TLS: 0 only failures, 1 and more also a summary line (\"Verified TLS connection established to ...\") for each handshake.",
    },
    Param {
        name: "lmtp_tls_mandatory_protocols",
        kind: Kind::Str,
        default: ">=TLSv1",
        doc: "The TLS protocols the lmtp(8) client uses when TLS is mandatory (encrypt and above), in Postfix syntax; only TLSv1.2 and TLSv1.3 are implemented.",
    },
    Param {
        name: "lmtp_tls_policy_maps",
        kind: Kind::List,
        default: "",
        doc: "Per-destination TLS policy for lmtp(8): tables keyed by the next hop without its inet: or unix: prefix (host:port, [host]:port, /path, as Postfix looks them up) with values \"level [match=name:name...]\" as in Postfix; other attributes are ignored.",
    },
    Param {
        name: "lmtp_tls_protocols",
        kind: Kind::Str,
        default: ">=TLSv1",
        doc: "The TLS protocols the lmtp(8) client uses with opportunistic TLS (may), in Postfix syntax; only TLSv1.2 and TLSv1.3 are implemented.",
    },
    Param {
        name: "lmtp_tls_secure_cert_match",
        kind: Kind::Str,
        default: "nexthop",
        doc: "The names a server certificate must match at lmtp_tls_security_level = secure, with the words of smtp_tls_secure_cert_match; nexthop is the host of an inet: next hop, or $myhostname for unix: (LMTP has no MX lookups, so secure is verify by the next-hop name).",
    },
    Param {
        name: "lmtp_tls_security_level",
        kind: Kind::Str,
        default: "",
        doc: "LMTP TLS security level of the lmtp(8) client: empty or none, may (opportunistic; treated as none for unix: next hops, as Postfix does), encrypt (TLS required, any certificate), verify (CA-signed, server host name), secure (CA-signed, next-hop name); dane is may and dane-only defers, as LMTP does no DNSSEC lookups.",
    },
    Param {
        name: "lmtp_tls_verify_cert_match",
        kind: Kind::Str,
        default: "hostname",
        doc: "The names a server certificate must match at lmtp_tls_security_level = verify, with the words of smtp_tls_secure_cert_match.",
    },
    Param {
        name: "local_destination_concurrency_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "2",
        doc: "The maximal number of parallel deliveries to one local recipient (the local transport's destination is the recipient).",
    },
    Param {
        name: "local_destination_recipient_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "1",
        doc: "The maximal number of recipients per delivery request to the local transport (1: concurrency limits are per recipient).",
    },
    Param {
        name: "local_recipient_maps",
        kind: Kind::List,
        default: "proxy:unix:passwd.byname $alias_maps",
        doc: "Lookup tables with all names and addresses of local recipients; smtpd(8) rejects other local recipients. Empty disables the check.",
    },
    Param {
        name: "local_transport",
        kind: Kind::Str,
        default: "local:$myhostname",
        doc: "The transport (and optional next-hop) for domains in mydestination.",
    },
    Param {
        name: "luser_relay",
        kind: Kind::Raw,
        default: "",
        doc: "Where local(8) sends mail for unknown local recipients; empty bounces it. Its $user, $domain, ... macros are expanded by local(8), not at load time.",
    },
    Param {
        name: "mail_name",
        kind: Kind::Str,
        default: "Postern",
        doc: "The mail system name shown in the SMTP greeting and in notifications.",
    },
    Param {
        name: "mail_owner",
        kind: Kind::Str,
        default: "postern",
        doc: "The user that owns the queue and runs most daemons.",
    },
    Param {
        name: "mail_spool_directory",
        kind: Kind::Path,
        default: "/var/mail",
        doc: "The directory with UNIX-style mailboxes for local(8).",
    },
    Param {
        name: "mailbox_command",
        kind: Kind::Raw,
        default: "",
        doc: "A command that local(8) runs to deliver to a local mailbox instead of writing it itself. Its $user, $extension, ... macros are expanded by local(8), not at load time.",
    },
    Param {
        name: "mailbox_size_limit",
        kind: Kind::Size,
        default: "51200000",
        doc: "The maximal size in bytes of a mailbox or Maildir file that local(8) writes; 0 means no limit.",
    },
    Param {
        name: "maillog_file",
        kind: Kind::Path,
        default: "",
        doc: "A file to log to instead of syslog; empty means syslog.",
    },
    Param {
        name: "max_idle",
        kind: Kind::Time { min_secs: 1 },
        default: "100s",
        doc: "How long a daemon waits for its next request before it exits.",
    },
    Param {
        name: "max_use",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "100",
        doc: "How many requests a daemon handles before it exits.",
    },
    Param {
        name: "maximal_backoff_time",
        kind: Kind::Time { min_secs: 1 },
        default: "4000s",
        doc: "The longest time between delivery attempts of a deferred message.",
    },
    Param {
        name: "maximal_queue_lifetime",
        kind: Kind::Time { min_secs: 0 },
        default: "5d",
        doc: "How long a message may stay queued before it is returned as undeliverable. A bare number means days; 0 means one delivery attempt.",
    },
    Param {
        name: "message_size_limit",
        kind: Kind::Size,
        default: "10240000",
        doc: "The maximal size in bytes of a message, including envelope information; 0 means no limit.",
    },
    Param {
        name: "minimal_backoff_time",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The shortest time between delivery attempts of a deferred message.",
    },
    Param {
        name: "mydestination",
        kind: Kind::List,
        default: "$myhostname, localhost.$mydomain, localhost",
        doc: "The domains that this machine delivers locally with local_transport.",
    },
    Param {
        name: "mydomain",
        kind: Kind::Str,
        default: "localdomain",
        doc: "The internet domain of this mail system. Default: $myhostname minus its first label if what remains still has a dot, else \"localdomain\" (the table value is the fallback).",
    },
    Param {
        name: "myhostname",
        kind: Kind::Str,
        default: "localhost.localdomain",
        doc: "The fully-qualified hostname of this mail system. Default: the system hostname, with \".$mydomain\" (or \".localdomain\" when mydomain is not set) appended if it has no dot (the table value is the fallback).",
    },
    Param {
        name: "mynetworks",
        kind: Kind::NetList,
        default: "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
        doc: "The trusted networks whose clients may relay (permit_mynetworks). The default is what Postfix's mynetworks_style = host gives for loopback.",
    },
    Param {
        name: "myorigin",
        kind: Kind::Str,
        default: "$myhostname",
        doc: "The domain appended to unqualified sender addresses of locally posted mail.",
    },
    Param {
        name: "notify_classes",
        kind: Kind::List,
        default: "resource, software",
        doc: "Which kinds of problems are reported to the postmaster (bounce, 2bounce, data, delay, policy, protocol, resource, software).",
    },
    Param {
        name: "parent_domain_matches_subdomains",
        kind: Kind::List,
        default: "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, relay_domains, smtpd_access_maps",
        doc: "The features whose \"domain.tld\" patterns also match subdomains \"sub.domain.tld\" (others need an explicit \".domain.tld\" pattern).",
    },
    Param {
        name: "process_id_directory",
        kind: Kind::Path,
        default: "pid",
        doc: "The directory, relative to queue_directory, with the master's lock and pid files.",
    },
    Param {
        name: "qmgr_message_active_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "20000",
        doc: "The maximal number of messages in the active queue.",
    },
    Param {
        name: "queue_directory",
        kind: Kind::Path,
        default: "/var/spool/postern",
        doc: "The root of the mail queue.",
    },
    Param {
        name: "queue_run_delay",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "How often qmgr(8) scans the deferred queue.",
    },
    Param {
        name: "recipient_canonical_maps",
        kind: Kind::List,
        default: "",
        doc: "Like canonical_maps, for recipient addresses only.",
    },
    Param {
        name: "recipient_delimiter",
        kind: Kind::Str,
        default: "",
        doc: "The characters that separate a user name from an address extension (user+foo); empty disables extensions.",
    },
    Param {
        name: "relay_domains",
        kind: Kind::List,
        default: "",
        doc: "Domains (not local, not virtual) that smtpd(8) accepts mail for and relays (Postfix 3.0 compatibility default: empty).",
    },
    Param {
        name: "relay_recipient_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables with all addresses in relay_domains that smtpd(8) accepts; other recipients there are rejected with 550 5.1.1. Empty accepts every recipient in relay_domains.",
    },
    Param {
        name: "relay_transport",
        kind: Kind::Str,
        default: "relay",
        doc: "The transport for relay_domains, when transport_maps has no entry.",
    },
    Param {
        name: "relayhost",
        kind: Kind::Str,
        default: "",
        doc: "The next-hop for non-local mail; empty means direct delivery via DNS MX.",
    },
    Param {
        name: "sender_canonical_maps",
        kind: Kind::List,
        default: "",
        doc: "Like canonical_maps, for sender addresses only.",
    },
    Param {
        name: "sendmail_fix_line_endings",
        kind: Kind::Str,
        default: "always",
        doc: "How sendmail(1) converts <CR><LF> line endings of a message to <LF>: always, strict (only when the first line ends in <CR><LF>) or never.",
    },
    Param {
        name: "service_throttle_time",
        kind: Kind::Time { min_secs: 1 },
        default: "60s",
        doc: "How long master(8) waits before starting a service again after it failed to start.",
    },
    Param {
        name: "setgid_group",
        kind: Kind::Str,
        default: "postdrop",
        doc: "The group that owns the maildrop queue and that postdrop and postqueue run with.",
    },
    Param {
        name: "smtp_connect_timeout",
        kind: Kind::Time { min_secs: 0 },
        default: "30s",
        doc: "The smtp(8) client's time limit for completing a TCP connection; 0 means the system limit.",
    },
    Param {
        name: "smtp_connection_cache_on_demand",
        kind: Kind::Bool,
        default: "yes",
        doc: "Let smtp(8) keep a session that ended cleanly for the next message to the same next hop. Postern keeps at most one idle session per smtp process (Postfix keeps them in scache when a destination has a backlog).",
    },
    Param {
        name: "smtp_connection_cache_time_limit",
        kind: Kind::Time { min_secs: 0 },
        default: "2s",
        doc: "How long smtp(8) keeps an idle session open for reuse; 0 disables reuse.",
    },
    Param {
        name: "smtp_connection_reuse_time_limit",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "How long after it was opened smtp(8) may still reuse a session.",
    },
    Param {
        name: "smtp_data_done_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "600s",
        doc: "The smtp(8) client's time limit for the server's reply to the final \".\" of DATA.",
    },
    Param {
        name: "smtp_data_init_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "120s",
        doc: "The smtp(8) client's time limit for the server's reply to DATA.",
    },
    Param {
        name: "smtp_data_xfer_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "180s",
        doc: "The smtp(8) client's time limit for sending the message content.",
    },
    Param {
        name: "smtp_dns_resolver_address",
        kind: Kind::List,
        default: "",
        doc: "Postern extension: DNS servers (ip, ip:port, [ipv6]:port) that smtp(8) asks for MX, A/AAAA and TLSA records; empty means those of /etc/resolv.conf.",
    },
    Param {
        name: "smtp_dns_support_level",
        kind: Kind::Str,
        default: "",
        doc: "How smtp(8) uses the DNS: empty or enabled (plain lookups), or dnssec: trust the AD bit of the resolver in smtp_dns_resolver_address (it must be a local validating resolver) for DANE (smtp_tls_security_level = dane).",
    },
    Param {
        name: "smtp_fallback_relay",
        kind: Kind::List,
        default: "$fallback_relay",
        doc: "Hosts ([host]:port or host:port, as a next hop) that smtp(8) tries when the destination's own mail servers cannot be reached or defer.",
    },
    Param {
        name: "smtp_helo_name",
        kind: Kind::Str,
        default: "$myhostname",
        doc: "The hostname that the smtp(8) client sends in HELO or EHLO.",
    },
    Param {
        name: "smtp_helo_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The smtp(8) client's time limit for the greeting and the reply to HELO or EHLO.",
    },
    Param {
        name: "smtp_host_lookup",
        kind: Kind::List,
        default: "dns",
        doc: "How smtp(8) finds the addresses of mail servers: dns (MX and A/AAAA records through the DNS), native (the system resolver, A/AAAA only, /etc/hosts included), or both in that order.",
    },
    Param {
        name: "smtp_line_length_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "998",
        doc: "The longest header or body line, without its line end, that smtp(8) sends; longer lines are broken by inserting <CR><LF><SPACE>. 0 means no limit.",
    },
    Param {
        name: "smtp_mail_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The smtp(8) client's time limit for the reply to MAIL FROM.",
    },
    Param {
        name: "smtp_mta_sts_enable",
        kind: Kind::Bool,
        default: "no",
        doc: "Postern extension: let smtp(8) honour MTA-STS policies (RFC 8461) of recipient domains: the _mta-sts TXT record, the policy fetched over HTTPS from mta-sts.DOMAIN (verified with smtp_tls_CAfile) and cached in $data_directory/mta-sts; enforce delivers only to listed MX hosts with a verified certificate, testing only logs. Off by default because Postfix has it only through an external policy server. Applies when the TLS level is not none.",
    },
    Param {
        name: "smtp_mta_sts_port",
        kind: Kind::Int { min: 1, max: 65535 },
        default: "443",
        doc: "Postern extension, for testing: the HTTPS port of mta-sts.DOMAIN for MTA-STS policy fetches (RFC 8461 says 443).",
    },
    Param {
        name: "smtp_mta_sts_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "10s",
        doc: "Postern extension: the time limit for one MTA-STS policy fetch.",
    },
    Param {
        name: "smtp_mx_address_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "5",
        doc: "The most mail server addresses that smtp(8) tries for one delivery; 0 means no limit.",
    },
    Param {
        name: "smtp_mx_session_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "2",
        doc: "The most SMTP sessions (connections that got a greeting) that smtp(8) tries for one delivery; 0 means no limit.",
    },
    Param {
        name: "smtp_quit_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The smtp(8) client's time limit for the reply to QUIT.",
    },
    Param {
        name: "smtp_rcpt_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The smtp(8) client's time limit for the reply to RCPT TO.",
    },
    Param {
        name: "smtp_skip_5xx_greeting",
        kind: Kind::Bool,
        default: "yes",
        doc: "Let smtp(8) try the next mail server when one greets with a 5xx reply, instead of bouncing the mail.",
    },
    Param {
        name: "smtp_starttls_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "The smtp(8) client's time limit for the TLS handshake after STARTTLS.",
    },
    Param {
        name: "smtp_tcp_port",
        kind: Kind::Str,
        default: "smtp",
        doc: "The TCP port that smtp(8) connects to when the next hop names none: a number or a service name (smtp is 25).",
    },
    Param {
        name: "smtp_tls_CAfile",
        kind: Kind::Path,
        default: "",
        doc: "PEM file with the CA certificates the smtp(8) client trusts at smtp_tls_security_level = verify or secure and for MTA-STS; empty means the system bundle (/etc/ssl/certs/ca-certificates.crt).",
    },
    Param {
        name: "smtp_tls_loglevel",
        kind: Kind::Int { min: 0, max: 4 },
        default: "0",
        doc: "How much the smtp(8) client logs about TLS: 0 only failures, 1 and more also a summary line (\"Verified TLS connection established to ...\") for each handshake.",
    },
    Param {
        name: "smtp_tls_mandatory_protocols",
        kind: Kind::Str,
        default: ">=TLSv1",
        doc: "The TLS protocols the smtp(8) client uses when TLS is mandatory (encrypt and above), in Postfix syntax; only TLSv1.2 and TLSv1.3 are implemented.",
    },
    Param {
        name: "smtp_tls_policy_maps",
        kind: Kind::List,
        default: "",
        doc: "Per-destination TLS policy for smtp(8): tables keyed by the next hop (example.com, then .parent domains; [host] or [host]:port as written) with values \"level [match=name:name...]\" as in Postfix; other attributes are ignored.",
    },
    Param {
        name: "smtp_tls_protocols",
        kind: Kind::Str,
        default: ">=TLSv1",
        doc: "The TLS protocols the smtp(8) client uses with opportunistic TLS (may, dane without TLSA records), in Postfix syntax; only TLSv1.2 and TLSv1.3 are implemented.",
    },
    Param {
        name: "smtp_tls_rpt_log_interval",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "100",
        doc: "Postern extension: smtp(8) logs its TLS-RPT (RFC 8460) totals per policy domain (tlsrpt: policy-domain=... successful=N failed=M) after this many TLS sessions under a DANE or MTA-STS policy, and when it exits; 0 means only when it exits. Single failures are logged at once.",
    },
    Param {
        name: "smtp_tls_secure_cert_match",
        kind: Kind::Str,
        default: "nexthop, dot-nexthop",
        doc: "The names a server certificate must match at smtp_tls_security_level = secure: nexthop (the next-hop domain), dot-nexthop (the MX host name when it is inside that domain), hostname, .domain or a literal name.",
    },
    Param {
        name: "smtp_tls_security_level",
        kind: Kind::Str,
        default: "",
        doc: "SMTP TLS security level of the smtp(8) client: empty or none, may (opportunistic), encrypt (TLS required, any certificate), dane, dane-only, verify (CA-signed, MX host name), secure (CA-signed, next-hop name).",
    },
    Param {
        name: "smtp_tls_verify_cert_match",
        kind: Kind::Str,
        default: "hostname",
        doc: "The names a server certificate must match at smtp_tls_security_level = verify, with the words of smtp_tls_secure_cert_match.",
    },
    Param {
        name: "smtpd_banner",
        kind: Kind::Str,
        default: "$myhostname ESMTP $mail_name",
        doc: "The text after the 220 code in the SMTP greeting; it must start with $myhostname.",
    },
    Param {
        name: "smtpd_client_connection_count_limit",
        kind: Kind::Int {
            min: 0,
            max: INT_MAX,
        },
        default: "50",
        doc: "How many connections one client may have open to an smtpd(8) service at once; 0 means no limit.",
    },
    Param {
        name: "smtpd_client_event_limit_exceptions",
        kind: Kind::NetList,
        default: "$mynetworks",
        doc: "Clients that smtpd_client_connection_count_limit does not apply to.",
    },
    Param {
        name: "smtpd_client_restrictions",
        kind: Kind::List,
        default: "",
        doc: "Access restrictions that smtpd(8) applies when a client connects.",
    },
    Param {
        name: "smtpd_data_restrictions",
        kind: Kind::List,
        default: "",
        doc: "Access restrictions that smtpd(8) applies to the DATA command.",
    },
    Param {
        name: "smtpd_delay_reject",
        kind: Kind::Bool,
        default: "yes",
        doc: "Wait until RCPT TO before applying the client, HELO and sender restrictions.",
    },
    Param {
        name: "smtpd_dns_resolver_address",
        kind: Kind::List,
        default: "$smtp_dns_resolver_address",
        doc: "Postern extension: DNS servers (ip, ip:port, [ipv6]:port) that smtpd(8) asks for client host names (PTR, then A or AAAA; see smtpd_peername_lookup); empty means those of /etc/resolv.conf.",
    },
    Param {
        name: "smtpd_error_sleep_time",
        kind: Kind::Time { min_secs: 0 },
        default: "1s",
        doc: "How long smtpd(8) pauses before each error reply once a client has made more than smtpd_soft_error_limit errors.",
    },
    Param {
        name: "smtpd_forbid_bare_newline",
        kind: Kind::Str,
        default: "normalize",
        doc: "What smtpd(8) does with a line that ends in a bare newline: \"normalize\" (accept only CRLF.CRLF as end of data; \"yes\" is an alias), \"reject\", or \"no\" (Postfix 3.9 and later default normalize).",
    },
    Param {
        name: "smtpd_hard_error_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "20",
        doc: "How many errors a client may make before smtpd(8) disconnects.",
    },
    Param {
        name: "smtpd_helo_required",
        kind: Kind::Bool,
        default: "no",
        doc: "Require HELO or EHLO before MAIL FROM.",
    },
    Param {
        name: "smtpd_helo_restrictions",
        kind: Kind::List,
        default: "",
        doc: "Access restrictions that smtpd(8) applies to HELO and EHLO.",
    },
    Param {
        name: "smtpd_junk_command_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "100",
        doc: "How many HELO, EHLO, NOOP, RSET, VRFY and HELP commands a client may send before smtpd(8) counts each further one as an error; reset when mail is delivered.",
    },
    Param {
        name: "smtpd_peername_lookup",
        kind: Kind::Bool,
        default: "yes",
        doc: "Look up the client's host name: PTR for its address, then A or AAAA for that name, which must give the client's address (forward-confirmed); otherwise, or with no, the client is \"unknown\" in logs, the Received: header and the access restrictions.",
    },
    Param {
        name: "smtpd_recipient_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "1000",
        doc: "How many recipients smtpd(8) accepts for one message.",
    },
    Param {
        name: "smtpd_recipient_restrictions",
        kind: Kind::List,
        default: "",
        doc: "Access restrictions that smtpd(8) applies to RCPT TO, after smtpd_relay_restrictions.",
    },
    Param {
        name: "smtpd_relay_restrictions",
        kind: Kind::List,
        default: "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
        doc: "Relay-control restrictions that smtpd(8) applies to RCPT TO.",
    },
    Param {
        name: "smtpd_sender_restrictions",
        kind: Kind::List,
        default: "",
        doc: "Access restrictions that smtpd(8) applies to MAIL FROM.",
    },
    Param {
        name: "smtpd_soft_error_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "10",
        doc: "How many errors a client may make before smtpd(8) starts to pause (smtpd_error_sleep_time) before each reply.",
    },
    Param {
        name: "smtpd_starttls_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "How long smtpd(8) waits for each read and write of the TLS handshake (after STARTTLS, or at connect with smtpd_tls_wrappermode).",
    },
    Param {
        name: "smtpd_timeout",
        kind: Kind::Time { min_secs: 1 },
        default: "300s",
        doc: "How long smtpd(8) waits for a client request or for the client to accept a reply.",
    },
    Param {
        name: "smtpd_tls_cert_file",
        kind: Kind::Path,
        default: "",
        doc: "The PEM file with smtpd(8)'s server certificate, optionally followed by its intermediate certificates (and the key, when smtpd_tls_key_file names the same file).",
    },
    Param {
        name: "smtpd_tls_chain_files",
        kind: Kind::List,
        default: "",
        doc: "PEM files holding smtpd(8)'s private key followed by its certificate chain, used instead of smtpd_tls_cert_file and smtpd_tls_key_file when set; one key/chain pair is supported.",
    },
    Param {
        name: "smtpd_tls_key_file",
        kind: Kind::Path,
        default: "$smtpd_tls_cert_file",
        doc: "The PEM file with the private key of smtpd_tls_cert_file (not encrypted); read before privileges are dropped.",
    },
    Param {
        name: "smtpd_tls_loglevel",
        kind: Kind::Int { min: 0, max: 4 },
        default: "0",
        doc: "How much smtpd(8) logs about TLS: 0 only failures, 1 and more also a summary line (\"Anonymous TLS connection established from ...\") for each handshake.",
    },
    Param {
        name: "smtpd_tls_mandatory_protocols",
        kind: Kind::Str,
        default: ">=TLSv1",
        doc: "The TLS protocols smtpd(8) accepts when smtpd_tls_security_level = encrypt, in Postfix syntax (\">=TLSv1.2\", \"!TLSv1.1\"); only TLSv1.2 and TLSv1.3 are implemented.",
    },
    Param {
        name: "smtpd_tls_protocols",
        kind: Kind::Str,
        default: ">=TLSv1",
        doc: "The TLS protocols smtpd(8) accepts with opportunistic TLS (smtpd_tls_security_level = may), in Postfix syntax; only TLSv1.2 and TLSv1.3 are implemented.",
    },
    Param {
        name: "smtpd_tls_received_header",
        kind: Kind::Bool,
        default: "no",
        doc: "Add the TLS protocol and cipher to smtpd(8)'s Received: header (\"(using TLSv1.3 with cipher ...)\").",
    },
    Param {
        name: "smtpd_tls_security_level",
        kind: Kind::Str,
        default: "",
        doc: "SMTP TLS security level of smtpd(8): empty or none (no STARTTLS), may (announce STARTTLS), encrypt (also refuse mail commands before STARTTLS with 530).",
    },
    Param {
        name: "smtpd_tls_wrappermode",
        kind: Kind::Bool,
        default: "no",
        doc: "Run TLS from the first byte instead of STARTTLS (the smtps/submissions service on port 465); set it with -o in master.toml.",
    },
    Param {
        name: "stale_lock_time",
        kind: Kind::Time { min_secs: 1 },
        default: "500s",
        doc: "How old a mailbox dotlock file (mailbox.lock) must be before a delivery agent removes it as stale.",
    },
    Param {
        name: "strict_rfc821_envelopes",
        kind: Kind::Bool,
        default: "no",
        doc: "Require RFC 821 syntax (angle brackets, no comments) in MAIL FROM and RCPT TO.",
    },
    Param {
        name: "swap_bangpath",
        kind: Kind::Bool,
        default: "yes",
        doc: "Let trivial-rewrite(8) rewrite \"site!user\" into \"user@site\".",
    },
    Param {
        name: "syslog_facility",
        kind: Kind::Str,
        default: "mail",
        doc: "The syslog facility for logging.",
    },
    Param {
        name: "syslog_name",
        kind: Kind::Str,
        default: "postern",
        doc: "The first part of the syslog ident, as in postern/smtpd[1234].",
    },
    Param {
        name: "transport_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables that map recipient addresses or domains to a transport and next-hop.",
    },
    Param {
        name: "unknown_client_reject_code",
        kind: Kind::Int { min: 400, max: 599 },
        default: "450",
        doc: "The reply code of reject_unknown_client_hostname and reject_unknown_reverse_client_hostname when the client's name is unknown for good (a temporary DNS failure always gets 450).",
    },
    Param {
        name: "virtual_alias_domains",
        kind: Kind::List,
        default: "$virtual_alias_maps",
        doc: "Domains whose addresses exist only as virtual_alias_maps entries; trivial-rewrite(8) resolves other addresses in them to \"5.1.1 User unknown in virtual alias table\".",
    },
    Param {
        name: "virtual_alias_expansion_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "1000",
        doc: "The maximal number of addresses that one original recipient may expand into through virtual_alias_maps.",
    },
    Param {
        name: "virtual_alias_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables that cleanup(8) uses to redirect addresses in any domain (Postfix's default $virtual_maps is a legacy name Postern does not have).",
    },
    Param {
        name: "virtual_alias_recursion_limit",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "1000",
        doc: "The maximal nesting depth of virtual_alias_maps expansion.",
    },
    Param {
        name: "virtual_gid_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables with the group ID that virtual(8) uses per recipient.",
    },
    Param {
        name: "virtual_mailbox_base",
        kind: Kind::Path,
        default: "",
        doc: "The directory that virtual_mailbox_maps results are relative to.",
    },
    Param {
        name: "virtual_mailbox_domains",
        kind: Kind::List,
        default: "$virtual_mailbox_maps",
        doc: "The domains that virtual(8) delivers to.",
    },
    Param {
        name: "virtual_mailbox_limit",
        kind: Kind::Size,
        default: "51200000",
        doc: "The maximal size in bytes of a mailbox or Maildir file that virtual(8) writes; 0 means no limit.",
    },
    Param {
        name: "virtual_mailbox_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables with the mailbox or Maildir path (relative to virtual_mailbox_base) of each virtual recipient.",
    },
    Param {
        name: "virtual_minimum_uid",
        kind: Kind::Int {
            min: 1,
            max: INT_MAX,
        },
        default: "100",
        doc: "The smallest user ID that virtual(8) accepts from virtual_uid_maps.",
    },
    Param {
        name: "virtual_transport",
        kind: Kind::Str,
        default: "virtual",
        doc: "The transport for virtual_mailbox_domains.",
    },
    Param {
        name: "virtual_uid_maps",
        kind: Kind::List,
        default: "",
        doc: "Lookup tables with the user ID that virtual(8) uses per recipient.",
    },
];

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::expand::{self, Lookup};

    struct Defaults;

    impl Lookup for Defaults {
        fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
            lookup(name).map(|p| Cow::Borrowed(p.default))
        }
        fn is_literal(&self, name: &str) -> bool {
            lookup(name).is_some_and(|p| p.kind == Kind::Raw)
        }
    }

    #[test]
    fn table_is_sorted_unique_and_documented() {
        for pair in PARAMS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "parameter table not sorted or has a duplicate: {} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for p in PARAMS {
            assert!(!p.doc.trim().is_empty(), "{} has no doc", p.name);
            assert!(
                !p.name.is_empty() && p.name.chars().all(expand::is_name_char),
                "bad name {:?}",
                p.name
            );
            assert_eq!(lookup(p.name), Some(p));
        }
        assert_eq!(lookup("no_such_parameter"), None);
    }

    #[test]
    fn defaults_parse_as_their_kind() {
        for p in PARAMS {
            let expanded = expand::expand_param(p.name, &Defaults)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            let parsed = match p.kind {
                Kind::Bool => value::parse_bool(&expanded).map(drop),
                Kind::Int { min, max } => value::parse_int(&expanded, min, max).map(drop),
                Kind::Time { min_secs } => p.parse_time(&expanded).and_then(|d| {
                    if d.as_secs() < min_secs {
                        Err(ValueError::new("at least min_secs", &expanded))
                    } else {
                        Ok(())
                    }
                }),
                Kind::Size => value::parse_size(&expanded).map(drop),
                Kind::NetList => value::parse_netlist(&expanded).map(drop),
                Kind::Str | Kind::List | Kind::Path | Kind::Raw => Ok(()),
            };
            parsed
                .and_then(|()| p.check_extra(&expanded))
                .unwrap_or_else(|e| panic!("default of {}: {e}", p.name));
        }
    }

    #[test]
    fn time_units_follow_the_default() {
        let p = |n| lookup(n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(p("maximal_queue_lifetime").time_unit(), 'd');
        assert_eq!(p("delay_warning_time").time_unit(), 'h');
        assert_eq!(p("max_idle").time_unit(), 's');
        assert_eq!(
            p("maximal_queue_lifetime").parse_time("2"),
            Ok(Duration::from_secs(2 * 86_400))
        );
    }

    #[test]
    fn brief_defaults() {
        let d = |n| lookup(n).map(|p| p.default);
        assert_eq!(d("myorigin"), Some("$myhostname"));
        assert_eq!(
            d("mydestination"),
            Some("$myhostname, localhost.$mydomain, localhost")
        );
        assert_eq!(d("message_size_limit"), Some("10240000"));
        assert_eq!(d("smtpd_banner"), Some("$myhostname ESMTP $mail_name"));
    }
}
