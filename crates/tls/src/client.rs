//! The client side (Postfix `tls_client.c`, `smtp_tls_security_level`):
//! one rustls configuration per connection, built from the policy for
//! the destination.
//!
//! | level | certificate check | Postfix log word |
//! | --- | --- | --- |
//! | `none` | no TLS | — |
//! | `may`, `encrypt` | none, but the handshake signature must verify | Untrusted |
//! | `dane`, `dane-only` | the TLSA records ([`crate::dane`]) | Verified |
//! | `verify`, `secure` | a chain to `smtp_tls_CAfile` and a name ([`verify_names`]) | Verified |
//!
//! Postfix's `fingerprint` level is not supported.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, Error, RootCertStore, SupportedProtocolVersion};

use crate::dane::{DaneVerifier, Tlsa};
use crate::{TlsError, provider};

/// Where Debian (and most systems) keep the CA bundle; used when
/// `smtp_tls_CAfile` is empty.
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Postfix `smtp_tls_security_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecurityLevel {
    /// No TLS.
    None,
    /// Opportunistic: STARTTLS when offered, any certificate; a failed
    /// handshake is retried in plaintext.
    May,
    /// TLS required, any certificate.
    Encrypt,
    /// DANE when usable TLSA records exist, else `may`/`encrypt` as
    /// RFC 7672 says.
    Dane,
    /// DANE required.
    DaneOnly,
    /// TLS required, certificate chain to a trusted CA, name of the MX
    /// host (which came from insecure DNS).
    Verify,
    /// TLS required, certificate chain to a trusted CA, name of the
    /// next-hop domain.
    Secure,
}

impl SecurityLevel {
    /// Parses a Postfix level name; the empty string is `none` (Postfix's
    /// default).
    pub fn parse(value: &str) -> Result<SecurityLevel, TlsError> {
        SecurityLevel::parse_param(value, "smtp_tls_security_level")
    }

    /// [`Self::parse`] for the value of `param` (an error names it:
    /// `lmtp_tls_security_level`, say).
    pub fn parse_param(value: &str, param: &'static str) -> Result<SecurityLevel, TlsError> {
        Ok(match value.trim().to_ascii_lowercase().as_str() {
            "" | "none" => SecurityLevel::None,
            "may" => SecurityLevel::May,
            "encrypt" => SecurityLevel::Encrypt,
            "dane" => SecurityLevel::Dane,
            "dane-only" => SecurityLevel::DaneOnly,
            "verify" => SecurityLevel::Verify,
            "secure" => SecurityLevel::Secure,
            other => {
                return Err(TlsError::Param {
                    param,
                    reason: format!("unsupported security level \"{other}\""),
                });
            }
        })
    }

    /// The Postfix name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityLevel::None => "none",
            SecurityLevel::May => "may",
            SecurityLevel::Encrypt => "encrypt",
            SecurityLevel::Dane => "dane",
            SecurityLevel::DaneOnly => "dane-only",
            SecurityLevel::Verify => "verify",
            SecurityLevel::Secure => "secure",
        }
    }

    /// Whether a peer without STARTTLS (or a failed handshake) means the
    /// mail must wait. `dane` requires TLS only when TLSA records were
    /// found; the caller decides that from the policy it built.
    pub fn requires_tls(self) -> bool {
        !matches!(
            self,
            SecurityLevel::None | SecurityLevel::May | SecurityLevel::Dane
        )
    }
}

/// What the server's certificate must satisfy on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// `may`/`encrypt` (and `dane` without usable TLSA records): any
    /// certificate; only the handshake signature is checked, so the peer
    /// at least holds the key of the certificate it sent.
    Unauthenticated,
    /// `verify`/`secure` (and MTA-STS): a chain to a trusted CA and one of
    /// `names`.
    Verify {
        /// Acceptable names (see [`verify_names`]).
        names: Vec<String>,
    },
    /// `dane`: the usable TLSA records of the MX host; `names` are checked
    /// for DANE-TA(2) only (the TLSA base domain and the MX host name,
    /// RFC 7672 §3.2.2).
    Dane {
        /// The records (at least one).
        tlsa: Vec<Tlsa>,
        /// Acceptable names for DANE-TA.
        names: Vec<String>,
    },
}

impl Policy {
    /// The adjective Postfix puts before "TLS connection established to":
    /// `Untrusted` or `Verified`.
    pub fn trust_word(&self) -> &'static str {
        match self {
            Policy::Unauthenticated => "Untrusted",
            Policy::Verify { .. } | Policy::Dane { .. } => "Verified",
        }
    }
}

/// The names a certificate may match at `verify`/`secure` (Postfix
/// `smtp_tls_verify_cert_match`, default `hostname`, and
/// `smtp_tls_secure_cert_match`, default `nexthop, dot-nexthop`):
///
/// - `hostname`: the MX host name;
/// - `nexthop`: the next-hop domain;
/// - `dot-nexthop`: the MX host name, if it is a subdomain of the
///   next-hop domain;
/// - `.example.com`: the MX host name, if it is a subdomain of that;
/// - any other word: that name.
///
/// Deviation: Postfix compares `dot-nexthop` and `.domain` against the
/// names in the certificate; Postern can only ask whether the certificate
/// is valid for a given name, so it offers the MX host name when that is
/// inside the domain. A certificate for `mx1.example.com` reached as MX
/// `mx1.example.com` of `example.com` passes both ways.
pub fn verify_names(strategy: &str, nexthop: &str, mx_host: &str) -> Vec<String> {
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    let (nexthop, mx) = (norm(nexthop), norm(mx_host));
    let under = |domain: &str| mx.ends_with(&format!(".{domain}"));
    let mut names = Vec::new();
    for word in strategy
        .split([',', ' ', '\t', ':'])
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let name = match word.as_str() {
            "hostname" => Some(mx.clone()),
            "nexthop" => Some(nexthop.clone()),
            "dot-nexthop" => under(&nexthop).then(|| mx.clone()),
            w if w.starts_with('.') => under(w.trim_start_matches('.')).then(|| mx.clone()),
            w => Some(norm(w)),
        };
        if let Some(n) = name.filter(|n| !n.is_empty() && !names.contains(n)) {
            names.push(n);
        }
    }
    names
}

/// The name to give the handshake: a DNS name (sent as SNI) or an IP
/// address (`[192.0.2.1]` or a bare address, not sent).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let h = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_start_matches("IPv6:")
        .trim_end_matches('.');
    ServerName::try_from(h.to_string()).map_err(|e| TlsError::Param {
        param: "server name",
        reason: format!("{host}: {e}"),
    })
}

/// Client configurations for the smtp delivery agent: made once per
/// process (the CA file is read at startup, before any chroot), then
/// [`config`](Self::config) per connection.
#[derive(Debug, Clone)]
pub struct ClientTls {
    provider: Arc<CryptoProvider>,
    versions: Vec<&'static SupportedProtocolVersion>,
    roots: Arc<RootCertStore>,
    /// The CA file parameter, for errors (`smtp_tls_CAfile` or
    /// `lmtp_tls_CAfile`).
    ca_param: &'static str,
}

impl ClientTls {
    /// `versions` from [`crate::parse_protocols`] (`smtp_tls_protocols`);
    /// `ca_file` is `smtp_tls_CAfile` (`None`: [`DEFAULT_CA_FILE`], and
    /// no roots if that does not exist, which only matters to `verify`,
    /// `secure` and MTA-STS).
    pub fn new(
        versions: &[&'static SupportedProtocolVersion],
        ca_file: Option<&Path>,
    ) -> Result<ClientTls, TlsError> {
        let roots = match ca_file {
            Some(f) => load_roots(f)?,
            None if Path::new(DEFAULT_CA_FILE).exists() => load_roots(Path::new(DEFAULT_CA_FILE))?,
            None => RootCertStore::empty(),
        };
        Ok(ClientTls {
            provider: provider(),
            versions: versions.to_vec(),
            roots: Arc::new(roots),
            ca_param: "smtp_tls_CAfile",
        })
    }

    /// The same, with errors naming `ca_param` as the CA file parameter.
    pub fn with_ca_param(self, ca_param: &'static str) -> ClientTls {
        ClientTls { ca_param, ..self }
    }

    /// The same roots with other protocol versions.
    pub fn with_versions(&self, versions: &[&'static SupportedProtocolVersion]) -> ClientTls {
        ClientTls {
            versions: versions.to_vec(),
            ..self.clone()
        }
    }

    /// The protocol versions, as `TLSv1.3`, `TLSv1.2`.
    pub fn versions(&self) -> Vec<&'static str> {
        self.versions
            .iter()
            .map(|v| match v.version {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
                _ => "TLSv1.2",
            })
            .collect()
    }

    /// How many trusted CA certificates were loaded.
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// The configuration for one connection under `policy`.
    pub fn config(&self, policy: &Policy) -> Result<Arc<ClientConfig>, TlsError> {
        let algs = self.provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match policy {
            Policy::Unauthenticated => Arc::new(AnyCert { algs }),
            Policy::Verify { names } => {
                if self.roots.is_empty() {
                    return Err(TlsError::Param {
                        param: self.ca_param,
                        reason: "no trusted CA certificates to verify with".into(),
                    });
                }
                Arc::new(ChainAndNames {
                    roots: self.roots.clone(),
                    names: parse_names(names)?,
                    algs,
                })
            }
            Policy::Dane { tlsa, names } => {
                if crate::dane::usable(tlsa).is_empty() {
                    // RFC 7672 §2.2: the caller falls back to encrypt.
                    return Err(TlsError::Param {
                        param: "TLSA records",
                        reason: "none is usable for SMTP".into(),
                    });
                }
                Arc::new(DaneVerifier::new(tlsa.clone(), parse_names(names)?, algs))
            }
        };
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&self.versions)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

impl ClientTls {
    /// Checks a chain the server sent after the handshake: that it leads
    /// to a trusted CA, and, when `names` is not empty, that the
    /// certificate is valid for one of them. The smtp client uses it for
    /// Postfix's `Trusted` log word at `may`/`encrypt` (a chain to a
    /// trusted CA, no name check) and for MTA-STS `testing`, where a
    /// failure is reported but the mail goes anyway.
    pub fn verify_chain(
        &self,
        chain: &[CertificateDer<'_>],
        names: &[String],
    ) -> Result<(), Error> {
        let (end_entity, intermediates) =
            chain.split_first().ok_or(Error::NoCertificatesPresented)?;
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            UnixTime::now(),
            self.provider.signature_verification_algorithms.all,
        )?;
        if names.is_empty() {
            return Ok(());
        }
        let names = parse_names(names).map_err(|e| Error::General(e.to_string()))?;
        check_names(&cert, &names)
    }
}

fn parse_names(names: &[String]) -> Result<Vec<ServerName<'static>>, TlsError> {
    names.iter().map(|n| server_name(n)).collect()
}

/// Reads a PEM CA bundle (Postfix `smtp_tls_CAfile`). Certificates that
/// webpki cannot use as anchors are skipped, as OpenSSL skips them.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| TlsError::file(path, e))?;
    for cert in certs {
        let cert = cert.map_err(|e| TlsError::file(path, e))?;
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(TlsError::file(path, "no usable CA certificate"));
    }
    Ok(roots)
}

/// The handshake-signature methods of a [`ServerCertVerifier`] with an
/// `algs: WebPkiSupportedAlgorithms` field: every verifier here checks
/// signatures the same way and differs only in how it judges the
/// certificate.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
}
pub(crate) use handshake_signatures;

/// Accepts any certificate, but the handshake signature must be made by
/// its key (`may`/`encrypt`).
#[derive(Debug)]
pub(crate) struct AnyCert {
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

/// A chain to `roots` and one of `names` (the name the handshake was
/// started with does not count: the policy decides which names do).
#[derive(Debug)]
struct ChainAndNames {
    roots: Arc<RootCertStore>,
    names: Vec<ServerName<'static>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainAndNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        check_names(&cert, &self.names)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

/// The certificate must be valid for at least one of `names`.
pub(crate) fn check_names(
    cert: &ParsedCertificate<'_>,
    names: &[ServerName<'_>],
) -> Result<(), Error> {
    if names.iter().any(|n| verify_server_name(cert, n).is_ok()) {
        Ok(())
    } else {
        Err(Error::InvalidCertificate(CertificateError::NotValidForName))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TestCa, TestCert, handshake};

    fn client_with_ca(ca: &TestCa) -> ClientTls {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, ca.pem()).unwrap();
        ClientTls::new(&crate::parse_protocols("p", "").unwrap(), Some(f.as_path())).unwrap()
    }

    #[test]
    fn levels() {
        assert_eq!(SecurityLevel::parse("").unwrap(), SecurityLevel::None);
        assert_eq!(SecurityLevel::parse("DANE").unwrap(), SecurityLevel::Dane);
        assert!(SecurityLevel::parse("fingerprint").is_err());
        assert!(SecurityLevel::Encrypt.requires_tls());
        assert!(!SecurityLevel::May.requires_tls());
        assert_eq!(SecurityLevel::Secure.name(), "secure");
    }

    #[test]
    fn may_accepts_any_certificate() {
        let ca = TestCa::new("Test CA");
        let client = client_with_ca(&ca);
        let selfsigned = TestCert::self_signed("whatever.example");
        let info = handshake(
            &selfsigned,
            &client,
            &Policy::Unauthenticated,
            "mx.example.net",
        )
        .unwrap();
        assert!(info.starts_with("TLSv1.3 with cipher TLS_"), "{info}");
    }

    #[test]
    fn verify_checks_chain_and_name() {
        let ca = TestCa::new("Test CA");
        let client = client_with_ca(&ca);
        let good = ca.leaf("mx.example.net");
        let policy = |n: &str| Policy::Verify {
            names: vec![n.to_string()],
        };
        handshake(&good, &client, &policy("mx.example.net"), "mx.example.net").unwrap();
        // The policy's names decide, not the name the connection used.
        handshake(&good, &client, &policy("mx.example.net"), "127.0.0.1").unwrap();
        let e = handshake(
            &good,
            &client,
            &policy("other.example.net"),
            "mx.example.net",
        )
        .unwrap_err();
        assert!(e.contains("NotValidForName"), "{e}");
        assert!(e.ends_with("[certificate-host-mismatch]"), "{e}");
        let other_ca = TestCa::new("Other CA");
        let e = handshake(
            &other_ca.leaf("mx.example.net"),
            &client,
            &policy("mx.example.net"),
            "mx.example.net",
        )
        .unwrap_err();
        assert!(e.contains("UnknownIssuer"), "{e}");
        assert!(e.ends_with("[certificate-not-trusted]"), "{e}");
        let e = handshake(
            &ca.expired_leaf("mx.example.net"),
            &client,
            &policy("mx.example.net"),
            "mx.example.net",
        )
        .unwrap_err();
        assert!(e.contains("expired"), "{e}");
        assert!(e.ends_with("[certificate-expired]"), "{e}");
        let e = handshake(
            &TestCert::self_signed("mx.example.net"),
            &client,
            &policy("mx.example.net"),
            "mx.example.net",
        )
        .unwrap_err();
        assert!(e.contains("UnknownIssuer"), "{e}");
    }

    #[test]
    fn verify_without_roots_is_a_config_error() {
        let client = ClientTls {
            provider: provider(),
            versions: vec![&rustls::version::TLS13],
            roots: Arc::new(RootCertStore::empty()),
            ca_param: "smtp_tls_CAfile",
        };
        let e = client
            .config(&Policy::Verify {
                names: vec!["a.example".into()],
            })
            .unwrap_err();
        assert!(e.to_string().starts_with("smtp_tls_CAfile"), "{e}");
    }

    #[test]
    fn chains_checked_after_the_handshake() {
        let ca = TestCa::new("Test CA");
        let client = client_with_ca(&ca);
        let leaf = ca.leaf("mx.example.net");
        let chain = leaf.chain.clone();
        client.verify_chain(&chain, &[]).unwrap();
        client
            .verify_chain(&chain, &["mx.example.net".into()])
            .unwrap();
        assert!(
            client
                .verify_chain(&chain, &["other.example.net".into()])
                .is_err()
        );
        let other = TestCert::self_signed("mx.example.net");
        assert!(client.verify_chain(&other.chain, &[]).is_err());
        assert!(client.verify_chain(&[], &[]).is_err());
    }

    #[test]
    fn cert_match_strategies() {
        assert_eq!(
            verify_names("hostname", "example.com", "MX1.example.com."),
            ["mx1.example.com"]
        );
        assert_eq!(
            verify_names("nexthop, dot-nexthop", "example.com", "mx1.example.com"),
            ["example.com", "mx1.example.com"]
        );
        assert_eq!(
            verify_names("nexthop, dot-nexthop", "example.com", "mx.elsewhere.net"),
            ["example.com"]
        );
        assert_eq!(
            verify_names(
                "hostname .example.com mail.example.org",
                "x",
                "a.example.com"
            ),
            ["a.example.com", "mail.example.org"]
        );
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("[192.0.2.1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[IPv6:2001:db8::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("mx.example.com.").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn default_ca_bundle_loads_when_present() {
        if Path::new(DEFAULT_CA_FILE).exists() {
            let c = ClientTls::new(&[&rustls::version::TLS13], None).unwrap();
            assert!(c.root_count() > 10);
        }
    }
}
