//! TLS for Postern (Postfix `src/tls/`): rustls configurations for the SMTP
//! server and the SMTP client, a blocking stream that starts plain and
//! switches to TLS after STARTTLS, the Postfix-style description of a
//! session (`TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`),
//! and the building blocks of the client's downgrade protection: DANE
//! (RFC 7672), MTA-STS (RFC 8461) and TLS-RPT result counters (RFC 8460).
//!
//! Only rustls with the `ring` provider is used; every configuration is
//! built with [`provider`] explicitly, so a dependency that switches on
//! rustls' `aws_lc_rs` feature cannot make a builder panic (`cargo tree -i
//! aws-lc-rs` must stay empty).
//!
//! # The server (smtpd)
//!
//! 1. At startup, before privileges are dropped (the key is often readable
//!    by root only): [`server::ServerCert::from_files`] (Postfix
//!    `smtpd_tls_cert_file`/`smtpd_tls_key_file`) or
//!    [`server::ServerCert::from_chain_files`] (`smtpd_tls_chain_files`),
//!    then [`server::server_config`] with the versions from
//!    [`parse_protocols`] (`smtpd_tls_protocols`).
//! 2. Per connection: wrap the socket in [`MaybeTls::Plain`]; after
//!    `220 2.0.0 Ready to start TLS` is flushed, **throw away every byte of
//!    plaintext read so far** (CVE-2011-0411), then
//!    [`MaybeTls::accept`] runs the handshake. [`describe`] gives the text
//!    for the log line and the `Received:` header.
//!
//! # The client (smtp delivery agent)
//!
//! At startup (before any chroot: the CA file is read then):
//! [`ClientSettings::from_config`] reads `smtp_tls_security_level`,
//! `smtp_tls_CAfile`, `smtp_tls_protocols`,
//! `smtp_tls_mandatory_protocols`, `smtp_tls_verify_cert_match`,
//! `smtp_tls_secure_cert_match` and `smtp_tls_loglevel`
//! ([`ClientSettings::from_config_for`] with [`ClientParams::LMTP`]: their
//! `lmtp_tls_*` twins, for the LMTP client).
//!
//! Per destination, in this order:
//!
//! 1. The level: [`ClientSettings::level`] (or a stronger one from
//!    DANE/MTA-STS, see below). `none`: never send STARTTLS.
//! 2. DANE (`dane`): look up `_25._tcp.MXHOST` TLSA through a validating
//!    resolver; only records with the AD bit count. Usable records
//!    ([`dane::Tlsa::parse`], [`dane::usable`]) make the policy
//!    [`client::Policy::Dane`]; none usable falls back to `encrypt`
//!    (RFC 7672 §2.2: "mandatory unauthenticated TLS"), an insecure answer
//!    to `may`.
//! 3. MTA-STS: [`sts::Cache::get`] (a cache in `$data_directory/mta-sts`)
//!    for the recipient domain with the id from [`sts::txt_id`] (fresh from
//!    the cache, or [`sts::fetch`] when the `_mta-sts` TXT id changed or the
//!    policy expired). In `enforce` mode, skip MX hosts that
//!    [`sts::Policy::matches_mx`] refuses and use
//!    [`client::Policy::Verify`] with the MX name; in `testing` mode,
//!    deliver anyway and log/count the failure ([`rpt`]).
//! 4. Connect, read the greeting, EHLO. If STARTTLS is offered (or the
//!    level requires TLS: then its absence is a deferral, "TLS is required,
//!    but was not offered by host ..."), send STARTTLS, read the 220, and
//!    make sure no further reply bytes were buffered (a server that sends
//!    more is injecting, CVE-2011-0411 in the other direction):
//!    [`stream::connect_buffered`] refuses to handshake then.
//! 5. [`ClientSettings::tls`] for the level, then
//!    [`client::ClientTls::config`] for the policy
//!    ([`ClientSettings::policy`] for `verify`/`secure`), then
//!    [`MaybeTls::connect`] with [`client::server_name`] of the MX host.
//!    A handshake failure at `may` is retried on a new plaintext
//!    connection (Postfix does the same); at higher levels it defers.
//!    [`stream::tls_error`] and [`rpt::ResultType::from_tls_error`] say
//!    why, for the log and the TLS-RPT counters.
//! 6. EHLO again (RFC 3207: the capabilities learned before TLS are void),
//!    and log [`describe`] in the `Trusted/Untrusted/Verified TLS
//!    connection established to HOST[ADDR]:25: ...` line
//!    ([`client::Policy::trust_word`]).
//!
//! ```no_run
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use postern_tls::client::{Policy, SecurityLevel, server_name};
//! use postern_tls::stream::connect_buffered;
//! use postern_tls::{ClientSettings, MaybeTls};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = postern_config::Config::defaults();
//! let settings = ClientSettings::from_config(&config)?;
//! let level = SecurityLevel::Verify;
//! let policy = settings.policy(level, "example.com", "mx1.example.com");
//! let tls = settings.tls(level).config(&policy)?;
//!
//! let sock = TcpStream::connect("192.0.2.25:25")?;
//! let mut r = BufReader::new(MaybeTls::Plain(sock));
//! let mut line = String::new();
//! r.read_line(&mut line)?; // 220 greeting
//! r.get_mut().write_all(b"EHLO client.example\r\n")?;
//! // ... read the EHLO reply, see STARTTLS ...
//! r.get_mut().write_all(b"STARTTLS\r\n")?;
//! line.clear();
//! r.read_line(&mut line)?; // 220 2.0.0 Ready to start TLS
//! let mut r = connect_buffered(r, tls, server_name("mx1.example.com")?)?;
//! let info = r.get_ref().info().expect("TLS is active");
//! println!("{} TLS connection established to mx1.example.com: {}",
//!          policy.trust_word(), info.summary());
//! r.get_mut().write_all(b"EHLO client.example\r\n")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! - [`server`], [`client`]: rustls configurations; [`ClientSettings`]:
//!   the smtp client's parameters;
//! - [`stream`]: the [`MaybeTls`] stream;
//! - [`dane`]: TLSA records and the DANE certificate verifier;
//! - [`sts`]: MTA-STS policies, TXT records, fetching and caching;
//! - [`rpt`]: TLS-RPT result types and counters for the log.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub mod client;
pub mod dane;
mod der;
mod describe;
mod error;
mod protocols;
pub mod rpt;
pub mod server;
mod settings;
pub mod stream;
pub mod sts;

pub use describe::{TlsInfo, describe};
pub use error::TlsError;
pub use protocols::parse_protocols;
pub use settings::{ClientParams, ClientSettings};
pub use stream::MaybeTls;

/// The crypto provider every configuration uses (ring).
// rustls 0.23.48 deprecates ring's provider for lacking post-quantum key
// exchange; ring is still the chosen provider (builds with just `cc` on
// every Debian architecture, see crates.md §4). Switching is this line
// and a feature flag.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod testutil;

/// The rustls version this crate is built with, for the configuration
/// types in its API.
pub use rustls;
