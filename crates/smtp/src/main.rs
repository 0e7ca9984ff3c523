//! smtp, lmtp: deliver mail to other mail servers over SMTP, or to a
//! mail store over LMTP (Postfix `smtp(8)`, `lmtp(8)`).
//!
//! SYNOPSIS: started by master on `private/smtp` (master.toml:
//! `[smtp-client] type = "unix" service = "smtp" command = "smtp"`); the
//! same program is the LMTP client when its service is named `lmtp` (or it
//! is run as `lmtp`).
//!
//! DESCRIPTION: qmgr sends one delivery request per connection
//! (`ipc::deliver`) for recipients that share a next hop. The next hop
//! (`nexthop.rs`) is a domain (MX lookup), `[host]:port` (no MX lookup),
//! or for LMTP `inet:host:port` / `unix:/path`. The servers to try come
//! from the DNS (`route.rs`: MX preference order, random among equal
//! preferences, implicit MX, null MX, loop detection), followed by
//! `smtp_fallback_relay`. Each server gets one transaction
//! (`deliver.rs`) for the recipients still pending: EHLO (HELO when EHLO
//! is refused; LHLO for LMTP), PIPELINING when offered, SIZE checked
//! before sending, 8-bit MIME converted to quoted-printable for a server
//! without 8BITMIME (`mime.rs`), SMTPUTF8 required when the message needs
//! it, DSN parameters passed on when the server offers DSN, one `BDAT
//! LAST` instead of DATA when it offers CHUNKING (Postfix never sends BDAT;
//! RFC 3030 makes it the better choice: no dot-stuffing).
//!
//! Each recipient's result is marked in the queue file (when final),
//! logged and reported to qmgr by `postern_server::agent::serve_batch`:
//! `ID: to=<a@b>, relay=mx.example.com[192.0.2.1]:25, delay=0.2,
//! delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)`.
//! 2xx is sent (`relayed` for SMTP, `delivered` for LMTP), 5xx bounced
//! (the server's reply goes to the DSN as `Diagnostic-Code: smtp; ...`),
//! 4xx and connection trouble deferred.
//!
//! A session that ended cleanly is kept for the next request to the same
//! next hop (`cache.rs`: one idle session per process, closed after
//! `smtp_connection_cache_time_limit`; Postfix keeps them in `scache`).
//!
//! TLS (`tls.rs`, `deliver::Run::starttls`): STARTTLS at
//! `smtp_tls_security_level` none/may/encrypt/verify/secure/dane/dane-only
//! or per next hop from `smtp_tls_policy_maps`; DANE through DNSSEC-signed
//! MX and TLSA records (`smtp_dns_support_level = dnssec`); MTA-STS
//! (`smtp_mta_sts_enable`, a Postern extension); TLS-RPT counters in the
//! log. A failed handshake at `may` is retried in plaintext, as Postfix
//! does. The LMTP client does STARTTLS at `lmtp_tls_security_level` (or
//! per next hop from `lmtp_tls_policy_maps`), over TCP and over Unix
//! sockets, without DANE or MTA-STS (`tls.rs`).
//!
//! NOT YET: SASL authentication; `smtp_bind_address`.
//!
//! SECURITY: runs as `mail_owner`; talks to untrusted servers: replies are
//! parsed by the sans-I/O `ReplyParser` with size limits, every read and
//! write has a time limit.
//!
//! CONFIGURATION PARAMETERS: `smtp_helo_name`, `smtp_connect_timeout`,
//! `smtp_helo_timeout`, `smtp_mail_timeout`, `smtp_rcpt_timeout`,
//! `smtp_data_init_timeout`, `smtp_data_xfer_timeout`,
//! `smtp_data_done_timeout`, `smtp_quit_timeout`, `smtp_tcp_port`,
//! `smtp_host_lookup`, `smtp_dns_resolver_address`,
//! `smtp_mx_address_limit`, `smtp_mx_session_limit`,
//! `smtp_fallback_relay`, `smtp_skip_5xx_greeting`, `smtp_line_length_limit`,
//! `smtp_connection_cache_on_demand`, `smtp_connection_cache_time_limit`,
//! `smtp_connection_reuse_time_limit`,
//! `smtp_tls_security_level`, `smtp_tls_policy_maps`, `smtp_tls_CAfile`,
//! `smtp_tls_loglevel`, `smtp_tls_protocols`, `smtp_tls_mandatory_protocols`,
//! `smtp_tls_verify_cert_match`, `smtp_tls_secure_cert_match`,
//! `smtp_starttls_timeout`, `smtp_dns_support_level`, `smtp_mta_sts_enable`,
//! `smtp_mta_sts_port`, `smtp_mta_sts_timeout`, `smtp_tls_rpt_log_interval`,
//! `disable_mime_output_conversion`, `inet_interfaces`, `inet_protocols`,
//! `myhostname`; in LMTP mode `lmtp_lhlo_name`, `lmtp_tcp_port`, the
//! `lmtp_*_timeout` counterparts, `lmtp_starttls_timeout` and
//! `lmtp_tls_security_level`, `lmtp_tls_policy_maps`, `lmtp_tls_CAfile`,
//! `lmtp_tls_loglevel`, `lmtp_tls_protocols`,
//! `lmtp_tls_mandatory_protocols`, `lmtp_tls_verify_cert_match`,
//! `lmtp_tls_secure_cert_match`.

mod cache;
mod client;
mod deliver;
mod mime;
mod nexthop;
mod route;
mod tls;

use std::time::Duration;

use postern_dns::{Dns, Families};
use postern_server::{Conn, Context};

use deliver::{Settings, Timeouts};
use route::{Lookup, Router};

/// The most time one DNS lookup may take.
const DNS_LIMIT: Duration = Duration::from_secs(10);

/// What stays the same for every request.
struct Agent {
    settings: Settings,
    dns: Option<Dns>,
    lookup: Lookup,
    families: Families,
    myhostname: String,
    own: Vec<std::net::IpAddr>,
    address_limit: usize,
}

fn main() {
    // The LMTP client logs as lmtp, like Postfix.
    let program = if lmtp_requested() { "lmtp" } else { "smtp" };
    postern_server::single::run(program, |ctx| {
        let agent = Agent::new(ctx)?;
        Ok(move |conn: Conn, ctx: &Context| {
            postern_server::agent::serve_batch(conn, ctx, |req, content| {
                let router = Router {
                    dns: agent.dns.as_ref(),
                    lookup: agent.lookup,
                    families: agent.families,
                    myhostname: agent.myhostname.clone(),
                    own: agent.own.clone(),
                    address_limit: agent.address_limit,
                };
                agent.settings.deliver(&router, req, content)
            });
        })
    })
}

/// Whether this process is the LMTP client: master started it for the
/// service `lmtp` (`-n lmtp`), or it was run under that name.
fn lmtp_requested() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().map(String::as_str).unwrap_or_default();
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|n| n == "lmtp")
        || args.windows(2).any(|w| w[0] == "-n" && w[1] == "lmtp")
}

impl Agent {
    fn new(ctx: &Context) -> Result<Agent, String> {
        let cfg = &ctx.config;
        let lmtp = ctx.program == "lmtp";
        let p = if lmtp { "lmtp" } else { "smtp" };
        let port_param = format!("{p}_tcp_port");
        let default_port = nexthop::parse_port(&cfg.str(&port_param))
            .ok_or_else(|| format!("{port_param}: bad port \"{}\"", cfg.str(&port_param)))?;
        let timeouts = Timeouts {
            connect: cfg.time(&format!("{p}_connect_timeout")),
            helo: cfg.time(if lmtp {
                "lmtp_lhlo_timeout"
            } else {
                "smtp_helo_timeout"
            }),
            mail: cfg.time(&format!("{p}_mail_timeout")),
            rcpt: cfg.time(&format!("{p}_rcpt_timeout")),
            data_init: cfg.time(&format!("{p}_data_init_timeout")),
            data_xfer: cfg.time(&format!("{p}_data_xfer_timeout")),
            data_done: cfg.time(&format!("{p}_data_done_timeout")),
            quit: cfg.time(&format!("{p}_quit_timeout")),
            starttls: cfg.time(&format!("{p}_starttls_timeout")),
        };
        let mut lookup = Lookup {
            dns: false,
            native: false,
        };
        for m in cfg.list("smtp_host_lookup") {
            match m.to_ascii_lowercase().as_str() {
                "dns" => lookup.dns = true,
                "native" => lookup.native = true,
                other => return Err(format!("smtp_host_lookup: unknown method \"{other}\"")),
            }
        }
        if !lookup.dns && !lookup.native {
            return Err("smtp_host_lookup: no lookup method".into());
        }
        let dns = if lookup.dns {
            let mut servers = Vec::new();
            for s in cfg.list("smtp_dns_resolver_address") {
                servers
                    .push(postern_dns::parse_server(&s).ok_or_else(|| {
                        format!("smtp_dns_resolver_address: bad address \"{s}\"")
                    })?);
            }
            // Without a resolver (no /etc/resolv.conf in a container,
            // say) [address] next hops still work; DNS lookups defer.
            match Dns::new(&servers, DNS_LIMIT) {
                Ok(d) => Some(d),
                Err(e) => {
                    postern_util::warn!("DNS resolver unavailable: {e}");
                    None
                }
            }
        } else {
            None
        };
        // The LMTP client reads the lmtp_tls_* twins, as in Postfix.
        let tls = tls::TlsClient::from_config(cfg, lmtp)?.map(std::sync::Arc::new);
        if let Some(t) = &tls {
            let t = t.clone();
            postern_server::single::on_exit(move || t.flush_counters());
        }
        let (ipv4, ipv6) = cfg.inet_protocols();
        let limit = |name: &str| usize::try_from(cfg.int(name)).unwrap_or(0);
        Ok(Agent {
            settings: Settings {
                lmtp,
                helo_name: cfg.str(if lmtp {
                    "lmtp_lhlo_name"
                } else {
                    "smtp_helo_name"
                }),
                myhostname: cfg.str("myhostname").to_ascii_lowercase(),
                timeouts,
                default_port,
                fallback: if lmtp {
                    Vec::new()
                } else {
                    cfg.list("smtp_fallback_relay")
                },
                session_limit: limit("smtp_mx_session_limit"),
                skip_5xx_greeting: cfg.bool("smtp_skip_5xx_greeting"),
                convert_8bit: !cfg.bool("disable_mime_output_conversion"),
                line_length_limit: limit("smtp_line_length_limit"),
                cache: (!lmtp
                    && cfg.bool("smtp_connection_cache_on_demand")
                    && !cfg.time("smtp_connection_cache_time_limit").is_zero())
                .then(|| {
                    cache::Cache::new(
                        cfg.time("smtp_connection_cache_time_limit"),
                        cfg.time("smtp_connection_reuse_time_limit"),
                        timeouts.quit,
                    )
                }),
                tls,
            },
            dns,
            lookup,
            families: Families { ipv4, ipv6 },
            myhostname: cfg.str("myhostname").to_ascii_lowercase(),
            // No loop detection for LMTP (Postfix does it in SMTP mode
            // only): the LMTP server is usually on this very host, as
            // lmtp:inet:127.0.0.1:24.
            own: if lmtp {
                Vec::new()
            } else {
                route::own_addresses(&cfg.inet_interfaces())
            },
            address_limit: limit("smtp_mx_address_limit"),
        })
    }
}
