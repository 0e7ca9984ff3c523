//! The parameters smtpd reads, once per process (Postfix: the
//! `CONFIG_*_TABLE`s in `smtpd.c:main`).

use std::time::Duration;

use ipnet::IpNet;
use postern_config::Config;
use std::path::Path;

use postern_dns::{Dns, Hosts};

/// The system's hosts file.
const HOSTS_FILE: &str = "/etc/hosts";
use postern_smtp_proto::BareNewline;
use postern_util::warn;

use crate::backend;
use crate::check::{Restrictions, Tables};
use crate::tls::TlsSettings;

/// Typed parameters.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `myhostname`: in 421 replies, EHLO and `Received:`.
    pub(crate) myhostname: String,
    /// `smtpd_banner`: the text after `220 `.
    pub(crate) banner: String,
    /// `mail_name`: in `Received:`.
    pub(crate) mail_name: String,
    /// `message_size_limit`; 0 means no limit.
    pub(crate) message_size_limit: u64,
    /// `line_length_limit`: longest command line.
    pub(crate) line_length_limit: usize,
    /// `smtpd_recipient_limit`.
    pub(crate) recipient_limit: usize,
    /// `smtpd_soft_error_limit`.
    pub(crate) soft_error_limit: u32,
    /// `smtpd_hard_error_limit`.
    pub(crate) hard_error_limit: u32,
    /// `smtpd_junk_command_limit`.
    pub(crate) junk_command_limit: u32,
    /// `smtpd_error_sleep_time`.
    pub(crate) error_sleep: Duration,
    /// `disable_vrfy_command = no`.
    pub(crate) vrfy_enabled: bool,
    /// `smtpd_helo_required`.
    pub(crate) helo_required: bool,
    /// `strict_rfc821_envelopes`.
    pub(crate) strict_rfc821_envelopes: bool,
    /// `smtpd_forbid_bare_newline`.
    pub(crate) bare_newline: BareNewline,
    /// `mynetworks`.
    pub(crate) mynetworks: Vec<IpNet>,
    /// `recipient_delimiter`.
    pub(crate) recipient_delimiter: String,
    /// `smtpd_timeout`: per read and per write.
    pub(crate) timeout: Duration,
    /// `smtpd_client_connection_count_limit` (0 = none).
    pub(crate) connection_count_limit: u64,
    /// `smtpd_client_event_limit_exceptions`.
    pub(crate) limit_exceptions: Vec<IpNet>,
    /// `queue_directory`, for anvil's socket.
    pub(crate) queue_dir: std::path::PathBuf,
    /// `ipc_timeout`.
    pub(crate) ipc_timeout: Duration,
    /// `smtpd_peername_lookup`.
    pub(crate) peername_lookup: bool,
}

impl Settings {
    /// Reads the parameters; `Config` has validated them already.
    pub(crate) fn from_config(config: &Config) -> Settings {
        let clamp_u32 = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
        let clamp_usize = |v: i64| usize::try_from(v.max(0)).unwrap_or(usize::MAX);
        Settings {
            myhostname: config.str("myhostname"),
            banner: config.str("smtpd_banner"),
            mail_name: config.str("mail_name"),
            message_size_limit: config.size("message_size_limit"),
            line_length_limit: clamp_usize(config.int("line_length_limit")),
            recipient_limit: clamp_usize(config.int("smtpd_recipient_limit")),
            soft_error_limit: clamp_u32(config.int("smtpd_soft_error_limit")),
            hard_error_limit: clamp_u32(config.int("smtpd_hard_error_limit")),
            junk_command_limit: clamp_u32(config.int("smtpd_junk_command_limit")),
            error_sleep: config.time("smtpd_error_sleep_time"),
            vrfy_enabled: !config.bool("disable_vrfy_command"),
            helo_required: config.bool("smtpd_helo_required"),
            strict_rfc821_envelopes: config.bool("strict_rfc821_envelopes"),
            bare_newline: parse_bare_newline(&config.str("smtpd_forbid_bare_newline")),
            mynetworks: config.networks("mynetworks"),
            recipient_delimiter: config.str("recipient_delimiter"),
            timeout: config.time("smtpd_timeout"),
            connection_count_limit: u64::try_from(
                config.int("smtpd_client_connection_count_limit"),
            )
            .unwrap_or(0),
            limit_exceptions: config.networks("smtpd_client_event_limit_exceptions"),
            queue_dir: config.path("queue_directory"),
            ipc_timeout: config.time("ipc_timeout"),
            peername_lookup: config.bool("smtpd_peername_lookup"),
        }
    }
}

/// `smtpd_forbid_bare_newline`: `normalize` (alias `yes`), `reject`, `no`.
pub(crate) fn parse_bare_newline(value: &str) -> BareNewline {
    match value.trim().to_ascii_lowercase().as_str() {
        "reject" => BareNewline::Reject,
        "no" => BareNewline::Allow,
        _ => BareNewline::Normalize,
    }
}

/// Everything a session needs from the process: parameters, restriction
/// lists and lookup tables.
pub(crate) struct Env {
    pub(crate) settings: Settings,
    pub(crate) restrictions: Restrictions,
    pub(crate) tables: Tables,
    pub(crate) tls: TlsSettings,
    /// The resolver for client names (`smtpd_peername_lookup`); `None`
    /// when lookups are off or no resolver could be set up.
    pub(crate) dns: Option<Dns>,
    /// `/etc/hosts`, asked before the DNS as the system resolver does
    /// (read once per process, before any chroot).
    pub(crate) hosts: Hosts,
}

impl Env {
    /// Reads parameters, parses restriction lists and opens the lookup
    /// tables (before privileges are dropped, as Postfix does).
    pub(crate) fn from_config(config: &Config) -> Result<Env, String> {
        if !config.bool("smtpd_delay_reject") {
            warn!(
                "smtpd_delay_reject = no is not implemented: client, helo and sender \
                 restrictions are applied at RCPT TO"
            );
        }
        let settings = Settings::from_config(config);
        let restrictions = Restrictions::from_config(config)?;
        let tables = backend::open_tables(config, &settings.recipient_delimiter)?;
        let tls = TlsSettings::from_config(config)?;
        let (dns, hosts) = if settings.peername_lookup {
            (resolver(config)?, Hosts::load(Path::new(HOSTS_FILE)))
        } else {
            (None, Hosts::default())
        };
        Ok(Env {
            settings,
            restrictions,
            tables,
            tls,
            dns,
            hosts,
        })
    }
}

/// The resolver of `smtpd_dns_resolver_address`, made once per process
/// (before any chroot: it may read /etc/resolv.conf). A bad address is a
/// configuration error; a resolver that cannot be set up (no
/// /etc/resolv.conf in a container, say) only means every client is
/// `unknown`, with a warning.
fn resolver(config: &Config) -> Result<Option<Dns>, String> {
    let mut servers = Vec::new();
    for s in config.list("smtpd_dns_resolver_address") {
        servers.push(
            postern_dns::parse_server(&s)
                .ok_or_else(|| format!("smtpd_dns_resolver_address: bad address \"{s}\""))?,
        );
    }
    match Dns::new(&servers, crate::peer::DNS_LIMIT) {
        Ok(d) => Ok(Some(d)),
        Err(e) => {
            warn!("DNS resolver unavailable, client host names are unknown: {e}");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_newline_values() {
        assert_eq!(parse_bare_newline("normalize"), BareNewline::Normalize);
        assert_eq!(parse_bare_newline("yes"), BareNewline::Normalize);
        assert_eq!(parse_bare_newline("REJECT"), BareNewline::Reject);
        assert_eq!(parse_bare_newline("no"), BareNewline::Allow);
    }

    #[test]
    fn defaults_are_postfix_defaults_except_vrfy() {
        let s = Settings::from_config(&Config::defaults());
        assert_eq!(s.message_size_limit, 10_240_000);
        assert_eq!(s.recipient_limit, 1000);
        assert_eq!((s.soft_error_limit, s.hard_error_limit), (10, 20));
        assert_eq!(s.timeout, Duration::from_secs(300));
        // Off by default, unlike Postfix (see the parameter's doc).
        assert!(!s.vrfy_enabled);
        assert_eq!(s.bare_newline, BareNewline::Normalize);
        assert!(s.banner.ends_with("ESMTP Postern"));
    }
}
