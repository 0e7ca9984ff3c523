//! The TLS policy of each connection (Postfix `smtp_tls_policy.c`,
//! `smtp_tlsa.c`; MTA-STS as the `postfix-mta-sts-resolver` policy server
//! would give it; TLS-RPT counters).
//!
//! Per server, in this order ([`TlsClient::plan`]):
//!
//! 1. The level: `smtp_tls_policy_maps` for the next hop (the next hop as
//!    written, e.g. `example.com` or `[mx.example.com]:25`, then its
//!    parent domains as `.parent`), else `smtp_tls_security_level`. A
//!    policy entry is `level [match=name:name...] [protocols=...]
//!    [ciphers=grade]` as in Postfix (see `parse_policy` for the
//!    attributes Postern refuses). `none` stops here.
//! 2. DANE (`dane`, `dane-only`; RFC 7672), when
//!    `smtp_dns_support_level = dnssec`: the MX RRset (or, for
//!    `[host]`, the host's A records) must be DNSSEC-signed (the AD bit
//!    of a validating resolver), then the TLSA records of
//!    `_PORT._tcp.HOST` with the AD bit. Usable records: TLS required,
//!    certificate checked against them. Records, none usable:
//!    `encrypt`. No records or insecure DNS: `may` (`dane-only`: the
//!    mail waits). A failed TLSA lookup defers, as in Postfix.
//! 3. MTA-STS (RFC 8461; Postern's `smtp_mta_sts_enable`, MX destinations
//!    only, DANE first as §2 says): a policy in `enforce` mode makes the
//!    level at least `verify` with the MX host name; MX hosts it does
//!    not list are dropped before any connection
//!    ([`TlsClient::sts_filter`]). `testing`: the chain and name are
//!    checked after the handshake, and only reported.
//! 4. Else the level as it is: `verify`/`secure` match names from
//!    `match=` or `smtp_tls_verify_cert_match`/`smtp_tls_secure_cert_match`.
//!
//! TLS-RPT (RFC 8460): every STARTTLS attempt under a DANE or MTA-STS
//! policy is counted per policy domain; a failure is logged at once
//! (`tlsrpt: policy-domain=... result-type=...`), and the totals every
//! `smtp_tls_rpt_log_interval` sessions and when the process exits
//! (Postern; Postfix sends no TLS-RPT at all).
//!
//! The LMTP client reads the `lmtp_tls_*` twins of these parameters
//! (`lmtp_tls_security_level`, `lmtp_tls_policy_maps`, ...), as Postfix's
//! lmtp(8) does. LMTP has no MX records, so neither DANE (no DNSSEC
//! lookups: `dane` is `may`, `dane-only` defers) nor MTA-STS; its policy
//! table is keyed by the next hop without `inet:`/`unix:`. A Unix-domain
//! next hop gets no opportunistic TLS (`may` is `none` there, as in
//! Postfix: "opportunistic TLS encryption is not appropriate for
//! unix-domain destinations"), but `encrypt` and up do STARTTLS over the
//! socket, with `$myhostname` as the server's name.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use postern_config::Config;
use postern_dns::{Dns, Error as DnsError};
use postern_ipc::deliver::{Action, RcptStatus};
use postern_maps::{Maps, Syntax};
use postern_tls::client::{Policy, SecurityLevel, verify_names};
use postern_tls::rpt::{Counters, PolicyType, ResultType, failure_line};
use postern_tls::rustls::SupportedProtocolVersion;
use postern_tls::{ClientParams, ClientSettings, dane, sts};
use postern_util::{info, warn};

use crate::client::Target;

/// MTA-STS settings (Postern extension parameters).
#[derive(Debug)]
struct Sts {
    cache: sts::Cache,
    /// `smtp_mta_sts_port` (443; other values are for tests).
    port: u16,
    /// `smtp_mta_sts_timeout`.
    timeout: Duration,
}

/// The agent's TLS settings; see the module documentation.
#[derive(Debug)]
pub(crate) struct TlsClient {
    pub(crate) settings: ClientSettings,
    /// The parameter names (smtp_ or lmtp_).
    params: ClientParams,
    /// The LMTP client: no DANE, no MTA-STS, policy keys without
    /// `inet:`/`unix:`.
    lmtp: bool,
    policy_maps: Option<Maps>,
    /// `smtp_dns_support_level = dnssec`.
    dnssec: bool,
    sts: Option<Sts>,
    rpt: Mutex<Rpt>,
    /// `smtp_tls_rpt_log_interval` (0: only at exit).
    rpt_every: u64,
}

#[derive(Debug, Default)]
struct Rpt {
    counters: Counters,
    sessions: u64,
}

/// What one connection must do about TLS.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The effective level: `none`, `may`, `encrypt`, `verify`,
    /// `secure`, or `dane-only` for DANE with usable TLSA records.
    pub(crate) level: SecurityLevel,
    /// The certificate check.
    pub(crate) policy: Policy,
    /// The TLS-RPT policy (domain, type), for DANE and MTA-STS.
    pub(crate) report: Option<(String, PolicyType)>,
    /// MTA-STS `testing`: the names to check after the handshake.
    pub(crate) testing: Option<Vec<String>>,
    /// The protocol versions of the policy entry (`protocols=`), instead
    /// of `smtp_tls_protocols` or `smtp_tls_mandatory_protocols`.
    pub(crate) versions: Option<Vec<&'static SupportedProtocolVersion>>,
}

impl Plan {
    /// No TLS.
    pub(crate) fn none() -> Plan {
        Plan {
            level: SecurityLevel::None,
            policy: Policy::Unauthenticated,
            report: None,
            testing: None,
            versions: None,
        }
    }

    /// Whether the mail must wait rather than go without TLS.
    pub(crate) fn required(&self) -> bool {
        self.level.requires_tls()
    }
}

/// A deferral for every pending recipient, before any connection.
fn defer(dsn: &str, reason: String) -> RcptStatus {
    RcptStatus::new(Action::Delayed, dsn, reason)
}

/// postern_dns's TLSA record as the verifier wants it.
fn tlsa(r: &postern_dns::Tlsa) -> Option<dane::Tlsa> {
    let mut rdata = vec![r.usage, r.selector, r.matching];
    rdata.extend_from_slice(&r.data);
    dane::Tlsa::from_rdata(&rdata)
}

impl TlsClient {
    /// Reads the parameters (and the CA file) of the SMTP client, or
    /// with `lmtp` of the LMTP client; `None` when TLS can never happen
    /// (level `none`, no policy table, no MTA-STS).
    pub(crate) fn from_config(cfg: &Config, lmtp: bool) -> Result<Option<TlsClient>, String> {
        let params = if lmtp {
            ClientParams::LMTP
        } else {
            ClientParams::SMTP
        };
        let maps = cfg.list(params.policy_maps);
        let level =
            SecurityLevel::parse_param(&cfg.str(params.security_level), params.security_level)
                .map_err(|e| e.to_string())?;
        let sts_on = !lmtp && cfg.bool("smtp_mta_sts_enable");
        // Without TLS anywhere, no CA bundle is read at each start.
        if level == SecurityLevel::None && maps.is_empty() && !sts_on {
            return Ok(None);
        }
        let settings = ClientSettings::from_config_for(cfg, &params)?;
        let policy_maps = if maps.is_empty() {
            None
        } else {
            Some(
                Maps::open(&maps, Syntax::Postmap)
                    .map_err(|e| format!("{}: {e}", params.policy_maps))?,
            )
        };
        let dnssec = match cfg.str("smtp_dns_support_level").trim() {
            _ if lmtp => false,
            "" | "enabled" | "disabled" => false,
            "dnssec" => true,
            other => {
                return Err(format!("smtp_dns_support_level: unknown value \"{other}\""));
            }
        };
        let sts = if sts_on {
            let dir = cfg.path("data_directory").join("mta-sts");
            let port = cfg.int("smtp_mta_sts_port");
            let cache = sts::Cache::new(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // Made before the privilege drop; the cache is written after.
            if let Ok(o) = postern_server::spool::owners(cfg) {
                let _ = std::os::unix::fs::chown(
                    &dir,
                    Some(o.mail_uid.as_raw()),
                    Some(o.mail_gid.as_raw()),
                );
            }
            Some(Sts {
                cache,
                port: u16::try_from(port)
                    .map_err(|_| format!("smtp_mta_sts_port: bad port {port}"))?,
                timeout: cfg.time("smtp_mta_sts_timeout"),
            })
        } else {
            None
        };
        Ok(Some(TlsClient {
            settings,
            params,
            lmtp,
            policy_maps,
            dnssec,
            sts,
            rpt: Mutex::new(Rpt::default()),
            rpt_every: u64::try_from(cfg.int("smtp_tls_rpt_log_interval")).unwrap_or(0),
        }))
    }

    /// The policy entry for `nexthop` (level, `match=` names,
    /// `protocols=`), else the default level.
    pub(crate) fn level_for(&self, nexthop: &str) -> Result<Entry, String> {
        let Some(maps) = &self.policy_maps else {
            return Ok(Entry::level(self.settings.level));
        };
        let key = nexthop.to_ascii_lowercase();
        if self.lmtp {
            // Postfix looks up an LMTP next hop without its prefix.
            let key = key
                .strip_prefix("inet:")
                .or_else(|| key.strip_prefix("unix:"))
                .unwrap_or(&key);
            return self.lookup_policy(maps, &[key.to_string()]);
        }
        let mut keys = vec![key.clone()];
        if !key.starts_with('[') {
            let mut rest = key.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                keys.push(format!(".{parent}"));
                rest = parent;
            }
        }
        self.lookup_policy(maps, &keys)
    }

    /// The first policy entry of `keys`, else the default level.
    fn lookup_policy(&self, maps: &Maps, keys: &[String]) -> Result<Entry, String> {
        let param = self.params.policy_maps;
        for k in keys {
            let value = maps
                .lookup(k)
                .map_err(|e| format!("{param} lookup for {k}: {e}"))?;
            if let Some(v) = value {
                return parse_policy(&v, param).map_err(|e| format!("{param} {k}: {e}"));
            }
        }
        Ok(Entry::level(self.settings.level))
    }

    /// The MTA-STS policy of `domain` in force (`enforce` or `testing`),
    /// if MTA-STS is on and the domain has one.
    pub(crate) fn sts_policy(&self, dns: Option<&Dns>, domain: &str) -> Option<sts::Policy> {
        let sts = self.sts.as_ref()?;
        let dns = dns?;
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let id = match dns.txt(&format!("_mta-sts.{domain}")) {
            Ok(a) => sts::txt_id(&a.records),
            Err(_) => None,
        };
        let fetch = || {
            sts::fetch(
                &domain,
                self.settings.tls(SecurityLevel::Verify),
                sts.timeout,
                |host, _port, timeout| connect_https(dns, host, sts.port, timeout),
            )
        };
        match sts.cache.get(&domain, id.as_deref(), fetch) {
            sts::Lookup::Found(p, source) => {
                if source == sts::Source::Fetched {
                    info!(
                        "MTA-STS policy for {domain}: mode={} max_age={} mx={}",
                        p.mode.as_str(),
                        p.max_age,
                        p.mx.join(",")
                    );
                }
                (p.mode != sts::Mode::None).then_some(p)
            }
            sts::Lookup::NoPolicy => None,
            sts::Lookup::FetchFailed(e) => {
                let result = ResultType::from_fetch_error(&e);
                warn!("MTA-STS policy fetch for {domain} failed: {e}");
                self.count(&domain, PolicyType::Sts, Some((result, "", &e.to_string())));
                None
            }
        }
    }

    /// Drops the servers an `enforce` policy does not list (RFC 8461
    /// §4.1); `testing` keeps them and logs.
    pub(crate) fn sts_filter(
        &self,
        policy: &sts::Policy,
        domain: &str,
        targets: Vec<Target>,
    ) -> Vec<Target> {
        targets
            .into_iter()
            .filter(|t| {
                if policy.matches_mx(&t.host) {
                    return true;
                }
                let enforce = policy.mode == sts::Mode::Enforce;
                info!(
                    "MTA-STS policy for {domain} ({}) does not list MX host {}{}",
                    policy.mode.as_str(),
                    t.host,
                    if enforce { ": skipped" } else { "" }
                );
                self.count(
                    domain,
                    PolicyType::Sts,
                    Some((
                        ResultType::ValidationFailure,
                        &t.host,
                        "MX host not in policy",
                    )),
                );
                !enforce
            })
            .collect()
    }

    /// The plan for one server. `nexthop` is the request's next hop
    /// (policy table key), `domain` the next-hop domain (or host),
    /// `mx_dest` whether the server came from an MX lookup of `domain`,
    /// `sts` the policy from [`Self::sts_policy`].
    pub(crate) fn plan(
        &self,
        dns: Option<&Dns>,
        nexthop: &str,
        domain: &str,
        mx_dest: bool,
        t: &Target,
        sts: Option<&sts::Policy>,
    ) -> Result<Plan, RcptStatus> {
        let Entry {
            level,
            matches,
            versions,
        } = self.level_for(nexthop).map_err(|e| {
            warn!("{e}");
            defer("4.3.0", e)
        })?;
        let mut plan = Plan {
            level,
            policy: Policy::Unauthenticated,
            report: None,
            testing: None,
            versions,
        };
        match level {
            SecurityLevel::None => return Ok(Plan::none()),
            SecurityLevel::Dane | SecurityLevel::DaneOnly => {
                if let Some(p) =
                    self.dane(dns, domain, mx_dest, t, level == SecurityLevel::DaneOnly)?
                {
                    return Ok(Plan {
                        versions: plan.versions,
                        ..p
                    });
                }
                plan.level = SecurityLevel::May;
            }
            SecurityLevel::Verify | SecurityLevel::Secure => {
                plan.policy = match &matches {
                    Some(m) => Policy::Verify {
                        names: verify_names(m, domain, &t.host),
                    },
                    None => self.settings.policy(level, domain, &t.host),
                };
            }
            _ => {}
        }
        if let (Some(p), true) = (sts, mx_dest) {
            plan.report = Some((domain.to_ascii_lowercase(), PolicyType::Sts));
            let names = vec![t.host.clone()];
            match p.mode {
                sts::Mode::Enforce if plan.level < SecurityLevel::Verify => {
                    plan.level = SecurityLevel::Verify;
                    plan.policy = Policy::Verify { names };
                }
                sts::Mode::Enforce => {}
                _ => plan.testing = Some(names),
            }
        }
        Ok(plan)
    }

    /// DANE for one server: `Some` plan when TLSA records decide, `None`
    /// to go on as `may`.
    fn dane(
        &self,
        dns: Option<&Dns>,
        domain: &str,
        mx_dest: bool,
        t: &Target,
        only: bool,
    ) -> Result<Option<Plan>, RcptStatus> {
        let insecure = |why: String| {
            if only {
                Err(defer("4.7.5", why))
            } else {
                Ok(None)
            }
        };
        let Some(dns) = dns.filter(|_| self.dnssec) else {
            return insecure(format!(
                "DANE required, but no DNSSEC-validated lookups for {}",
                t.host
            ));
        };
        let (name, rtype) = if mx_dest {
            (domain, "MX")
        } else {
            (t.host.as_str(), "A")
        };
        match dns.is_secure(name, rtype) {
            Ok(true) => {}
            Ok(false) => {
                return insecure(format!("{rtype} records of {name} are not DNSSEC-signed"));
            }
            Err(e) => {
                return Err(defer(
                    "4.7.5",
                    format!("DNSSEC lookup error for {name} type={rtype}: {e}"),
                ));
            }
        }
        let port = match &t.addr {
            crate::client::Addr::Inet(a) => a.port(),
            crate::client::Addr::Unix(_) => return Ok(None),
        };
        let qname = format!("_{port}._tcp.{}", t.host);
        // RFC 8460 §4.4: the policy domain is the recipient domain.
        let report = Some((domain.to_ascii_lowercase(), PolicyType::Tlsa));
        match dns.tlsa(&qname) {
            Ok(a) if a.authentic => {
                let records: Vec<dane::Tlsa> = a.records.iter().filter_map(tlsa).collect();
                let usable = dane::usable(&records);
                if usable.is_empty() {
                    // RFC 7672 §2.2: mandatory unauthenticated TLS.
                    return Ok(Some(Plan {
                        level: SecurityLevel::Encrypt,
                        policy: Policy::Unauthenticated,
                        report,
                        testing: None,
                        versions: None,
                    }));
                }
                Ok(Some(Plan {
                    level: SecurityLevel::DaneOnly,
                    policy: Policy::Dane {
                        tlsa: usable,
                        names: vec![t.host.clone()],
                    },
                    report,
                    testing: None,
                    versions: None,
                }))
            }
            Ok(_) => insecure(format!("TLSA records of {qname} are not DNSSEC-signed")),
            Err(DnsError::NotFound | DnsError::NoData) => {
                insecure(format!("no TLSA records found for {qname}"))
            }
            Err(e) => Err(defer(
                "4.7.5",
                format!("TLSA lookup error for {qname}: {e}"),
            )),
        }
    }

    /// Counts one STARTTLS outcome under a reported policy; a failure is
    /// also logged at once. The totals are logged every
    /// `smtp_tls_rpt_log_interval` sessions.
    pub(crate) fn count(
        &self,
        domain: &str,
        policy: PolicyType,
        failure: Option<(ResultType, &str, &str)>,
    ) {
        let mut rpt = self.rpt.lock().unwrap_or_else(|p| p.into_inner());
        match failure {
            None => rpt.counters.success(domain, policy),
            Some((result, mx, reason)) => {
                info!("{}", failure_line(domain, policy, result, mx, reason));
                rpt.counters.failure(domain, policy, result);
            }
        }
        rpt.sessions += 1;
        if self.rpt_every > 0 && rpt.sessions >= self.rpt_every {
            for line in rpt.counters.log_lines() {
                info!("{line}");
            }
            rpt.counters.clear();
            rpt.sessions = 0;
        }
    }

    /// Logs the counters not yet logged (at process exit).
    pub(crate) fn flush_counters(&self) {
        let mut rpt = self.rpt.lock().unwrap_or_else(|p| p.into_inner());
        for line in rpt.counters.log_lines() {
            info!("{line}");
        }
        rpt.counters.clear();
        rpt.sessions = 0;
    }
}

/// One policy table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) level: SecurityLevel,
    /// `match=`, colons made spaces.
    pub(crate) matches: Option<String>,
    /// `protocols=`.
    pub(crate) versions: Option<Vec<&'static SupportedProtocolVersion>>,
}

impl Entry {
    fn level(level: SecurityLevel) -> Entry {
        Entry {
            level,
            matches: None,
            versions: None,
        }
    }
}

/// A policy table value: `level [attr=value...]` (Postfix
/// `smtp_tls_policy.c`). `match=` and `protocols=` (colon-separated, in
/// place of `smtp_tls_protocols` or, from `encrypt` up,
/// `smtp_tls_mandatory_protocols`) are honoured; `ciphers=` may name any
/// grade but `null`, because rustls offers only AEAD suites, which every
/// grade admits. Attributes Postern cannot honour (`exclude`, `tafile`,
/// `servername`, `connection_reuse`, `enable_rpk`) and unknown ones make
/// the entry invalid, as an unknown one does in Postfix: the mail waits,
/// rather than go with a policy that was not applied.
fn parse_policy(value: &str, param: &'static str) -> Result<Entry, String> {
    let mut words = value.split_whitespace();
    let level = SecurityLevel::parse(words.next().unwrap_or("")).map_err(|e| e.to_string())?;
    let mut entry = Entry::level(level);
    for w in words {
        let (name, v) = w
            .split_once('=')
            .ok_or_else(|| format!("attribute \"{w}\" has no value"))?;
        match name.to_ascii_lowercase().as_str() {
            "match" => entry.matches = Some(v.replace(':', " ")),
            "protocols" => {
                let versions = postern_tls::parse_protocols(param, v).map_err(|e| e.to_string())?;
                entry.versions = Some(versions);
            }
            "ciphers" => match v.to_ascii_lowercase().as_str() {
                "high" | "medium" | "low" | "export" => {}
                _ => {
                    return Err(format!(
                        "ciphers={v} is not supported (rustls has no such grade)"
                    ));
                }
            },
            "exclude" | "tafile" | "servername" | "connection_reuse" | "enable_rpk" => {
                return Err(format!("attribute {name} is not supported by Postern"));
            }
            _ => return Err(format!("invalid attribute name: \"{name}\"")),
        }
    }
    Ok(entry)
}

/// The TCP connection of an MTA-STS fetch: `host` resolved through the
/// DNS like everything else the agent does.
fn connect_https(
    dns: &Dns,
    host: &str,
    port: u16,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let ips = dns
        .addresses(host, postern_dns::Families::ALL)
        .map_err(|e| std::io::Error::other(format!("{host}: {e}")))?;
    let mut last = std::io::Error::other(format!("{host}: no address"));
    for ip in ips.records {
        match TcpStream::connect_timeout(&(ip, port).into(), timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Addr;

    fn client(o: &[&str]) -> TlsClient {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        let cfg = Config::defaults().with_overrides(&o).unwrap();
        TlsClient::from_config(&cfg, false)
            .unwrap()
            .expect("TLS is on")
    }

    fn target(host: &str) -> Target {
        Target {
            host: host.into(),
            addr: Addr::Inet("192.0.2.1:25".parse().unwrap()),
        }
    }

    #[test]
    fn tls_off_reads_nothing() {
        let cfg = Config::defaults();
        assert!(TlsClient::from_config(&cfg, false).unwrap().is_none());
        assert!(TlsClient::from_config(&cfg, true).unwrap().is_none());
    }

    #[test]
    fn levels_from_the_policy_table_and_mta_sts() {
        let c = client(&[
            "smtp_tls_security_level=may",
            "smtp_tls_policy_maps=inline:{ a.test=secure, .b.test=none, [mx.c.test]:25=encrypt }",
        ]);
        let t = target("mx.a.test");
        let p = c.plan(None, "a.test", "a.test", true, &t, None).unwrap();
        assert_eq!(p.level, SecurityLevel::Secure);
        assert_eq!(
            p.policy,
            Policy::Verify {
                names: vec!["a.test".into(), "mx.a.test".into()]
            }
        );
        // A parent-domain entry covers subdomains, not the domain.
        let p = c
            .plan(None, "x.b.test", "x.b.test", true, &t, None)
            .unwrap();
        assert_eq!(p.level, SecurityLevel::None);
        let p = c.plan(None, "b.test", "b.test", true, &t, None).unwrap();
        assert_eq!(p.level, SecurityLevel::May);
        assert!(!p.required());
        let p = c
            .plan(None, "[mx.c.test]:25", "mx.c.test", false, &t, None)
            .unwrap();
        assert_eq!(p.level, SecurityLevel::Encrypt);
        assert!(p.required());

        // MTA-STS enforce: at least verify, with the MX name; testing:
        // the level stays, names to check afterwards.
        let enforce =
            sts::Policy::parse("version: STSv1\nmode: enforce\nmx: *.d.test\nmax_age: 600\n")
                .unwrap();
        let t = target("mx1.d.test");
        let p = c
            .plan(None, "d.test", "d.test", true, &t, Some(&enforce))
            .unwrap();
        assert_eq!(p.level, SecurityLevel::Verify);
        assert_eq!(
            p.policy,
            Policy::Verify {
                names: vec!["mx1.d.test".into()]
            }
        );
        assert_eq!(p.report, Some(("d.test".into(), PolicyType::Sts)));
        let testing = sts::Policy {
            mode: sts::Mode::Testing,
            ..enforce.clone()
        };
        let p = c
            .plan(None, "d.test", "d.test", true, &t, Some(&testing))
            .unwrap();
        assert_eq!(p.level, SecurityLevel::May);
        assert_eq!(p.testing, Some(vec!["mx1.d.test".to_string()]));
        // Servers the policy does not list: dropped in enforce mode only.
        let two = vec![target("mx1.d.test"), target("other.test")];
        assert_eq!(c.sts_filter(&enforce, "d.test", two.clone()).len(), 1);
        assert_eq!(c.sts_filter(&testing, "d.test", two).len(), 2);
    }

    #[test]
    fn dane_without_dnssec_support() {
        let c = client(&["smtp_tls_security_level=dane"]);
        let t = target("mx.a.test");
        // No validating resolver configured: opportunistic TLS.
        let p = c.plan(None, "a.test", "a.test", true, &t, None).unwrap();
        assert_eq!(p.level, SecurityLevel::May);
        let c = client(&["smtp_tls_security_level=dane-only"]);
        let e = c
            .plan(None, "a.test", "a.test", true, &t, None)
            .unwrap_err();
        assert_eq!(e.dsn, "4.7.5");
        assert!(e.reason.starts_with("DANE required"), "{}", e.reason);
    }

    #[test]
    fn the_lmtp_client_has_its_own_parameters() {
        let o: Vec<String> = [
            "smtp_tls_security_level=secure",
            "smtp_mta_sts_enable=yes",
            "lmtp_tls_security_level=may",
            "lmtp_tls_policy_maps=inline:{ 127.0.0.1:24=encrypt, /run/lmtp=verify }",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = Config::defaults().with_overrides(&o).unwrap();
        let c = TlsClient::from_config(&cfg, true)
            .unwrap()
            .expect("TLS is on");
        assert!(c.sts.is_none());
        assert_eq!(c.settings.level, SecurityLevel::May);
        // Keys without inet:/unix:, as Postfix looks them up.
        assert_eq!(
            c.level_for("inet:127.0.0.1:24").unwrap().level,
            SecurityLevel::Encrypt
        );
        assert_eq!(
            c.level_for("unix:/run/lmtp").unwrap().level,
            SecurityLevel::Verify
        );
        assert_eq!(
            c.level_for("inet:other:24").unwrap().level,
            SecurityLevel::May
        );
        let o = vec!["lmtp_tls_security_level=sometimes".to_string()];
        let cfg = Config::defaults().with_overrides(&o).unwrap();
        let e = TlsClient::from_config(&cfg, true).unwrap_err();
        assert!(e.starts_with("lmtp_tls_security_level: "), "{e}");
    }

    #[test]
    fn policy_values() {
        let p = |v: &str| parse_policy(v, "smtp_tls_policy_maps");
        let e = p("verify match=hostname:nexthop").unwrap();
        assert_eq!(
            (e.level, e.matches.as_deref()),
            (SecurityLevel::Verify, Some("hostname nexthop"))
        );
        let e = p("encrypt protocols=>=TLSv1.3 ciphers=high").unwrap();
        assert_eq!(e.level, SecurityLevel::Encrypt);
        assert_eq!(e.versions, Some(vec![&postern_tls::rustls::version::TLS13]));
        let e = p("may protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1").unwrap();
        assert_eq!(e.versions.map(|v| v.len()), Some(2));
        assert!(p("fingerprint").is_err());
        for bad in [
            "encrypt protocols=TLSv9",
            "encrypt ciphers=null",
            "encrypt exclude=aNULL",
            "secure tafile=/etc/ta.pem",
            "may frobnicate=yes",
            "may match",
        ] {
            let e = p(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }
}
