//! DANE for SMTP (RFC 7672, RFC 6698, RFC 7671): TLSA records and a
//! certificate verifier that trusts them instead of the CA system.
//!
//! Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 §3.1.3:
//! PKIX-TA(0) and PKIX-EE(1) are not); selectors Cert(0) and SPKI(1);
//! matching types Full(0), SHA2-256(1), SHA2-512(2). Records with other
//! values, or digests of the wrong length, are "unusable" and ignored;
//! when no usable record is left the connection falls back to
//! unauthenticated mandatory TLS (RFC 7672 §2.2), which is the caller's
//! decision ([`usable`] returns nothing).
//!
//! - DANE-EE(3) matches the server certificate only; names and validity
//!   dates are ignored (RFC 7672 §3.1.1).
//! - DANE-TA(2) matches a certificate the server sent in its chain; the
//!   chain from the server certificate to it must verify (with dates),
//!   and the server certificate must carry one of the policy's names (the
//!   TLSA base domain or the MX host, RFC 7672 §3.2.2).
//!
//! Not done: DANE-TA(2) with a trust anchor the server does not send
//! (`2 1 x` records for a key only; RFC 7671 §5.2.2 asks servers to send
//! it, and Postfix needs it too for `2 0 x`).

use std::fmt;

use ring::digest;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, Error, RootCertStore};

use crate::client::{check_names, handshake_signatures};
use crate::der;

/// Certificate usage DANE-TA.
pub const DANE_TA: u8 = 2;
/// Certificate usage DANE-EE.
pub const DANE_EE: u8 = 3;

/// One TLSA record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlsa {
    /// Certificate usage (0-3).
    pub usage: u8,
    /// Selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Parses the presentation form `3 1 1 0123abcd...` (hex may contain
    /// blanks, as zone files split it).
    pub fn parse(text: &str) -> Result<Tlsa, String> {
        let mut words = text.split_whitespace();
        let mut num = |what: &str| -> Result<u8, String> {
            words
                .next()
                .ok_or_else(|| format!("TLSA record lacks the {what}"))?
                .parse::<u8>()
                .map_err(|_| format!("bad TLSA {what}"))
        };
        let (usage, selector, matching) = (num("usage")?, num("selector")?, num("matching type")?);
        let hex: String = words.collect();
        let data = decode_hex(&hex).ok_or_else(|| "bad TLSA data: not hex".to_string())?;
        if data.is_empty() {
            return Err("TLSA record lacks data".into());
        }
        Ok(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }

    /// The record from its RDATA (what a resolver returns).
    pub fn from_rdata(rdata: &[u8]) -> Option<Tlsa> {
        match rdata {
            [usage, selector, matching, data @ ..] if !data.is_empty() => Some(Tlsa {
                usage: *usage,
                selector: *selector,
                matching: *matching,
                data: data.to_vec(),
            }),
            _ => None,
        }
    }

    /// The RDATA (for a DNS server in tests: dnsmasq `--dns-rr`).
    pub fn rdata(&self) -> Vec<u8> {
        let mut r = vec![self.usage, self.selector, self.matching];
        r.extend_from_slice(&self.data);
        r
    }

    /// The record that matches `cert` (DER) with these parameters, or
    /// `None` for an unknown selector or matching type.
    pub fn for_cert(usage: u8, selector: u8, matching: u8, cert: &[u8]) -> Option<Tlsa> {
        let data = association(selector, matching, cert)?;
        Some(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }

    /// Whether RFC 7672 lets SMTP use this record.
    pub fn is_usable(&self) -> bool {
        let len_ok = match self.matching {
            0 => true,
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, DANE_TA | DANE_EE) && self.selector <= 1 && len_ok
    }

    /// Whether this record matches `cert` (DER), ignoring usage.
    pub fn matches(&self, cert: &[u8]) -> bool {
        association(self.selector, self.matching, cert).is_some_and(|d| d == self.data)
    }
}

impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        self.data.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The usable records out of an RRset.
pub fn usable(records: &[Tlsa]) -> Vec<Tlsa> {
    records.iter().filter(|r| r.is_usable()).cloned().collect()
}

fn association(selector: u8, matching: u8, cert: &[u8]) -> Option<Vec<u8>> {
    let selected = match selector {
        0 => cert,
        1 => der::spki(cert)?,
        _ => return None,
    };
    match matching {
        0 => Some(selected.to_vec()),
        1 => Some(digest::digest(&digest::SHA256, selected).as_ref().to_vec()),
        2 => Some(digest::digest(&digest::SHA512, selected).as_ref().to_vec()),
        _ => None,
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// The verifier for [`crate::client::Policy::Dane`].
#[derive(Debug)]
pub(crate) struct DaneVerifier {
    tlsa: Vec<Tlsa>,
    names: Vec<ServerName<'static>>,
    algs: WebPkiSupportedAlgorithms,
}

impl DaneVerifier {
    pub(crate) fn new(
        tlsa: Vec<Tlsa>,
        names: Vec<ServerName<'static>>,
        algs: WebPkiSupportedAlgorithms,
    ) -> DaneVerifier {
        DaneVerifier {
            tlsa: usable(&tlsa),
            names,
            algs,
        }
    }

    /// DANE-TA: a sent certificate matches, the chain up to it verifies,
    /// and the name is right.
    fn ta_match(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<bool, Error> {
        let records: Vec<&Tlsa> = self.tlsa.iter().filter(|r| r.usage == DANE_TA).collect();
        for (i, ta) in intermediates.iter().enumerate() {
            if !records.iter().any(|r| r.matches(ta)) {
                continue;
            }
            let mut roots = RootCertStore::empty();
            if roots.add(ta.clone()).is_err() {
                continue;
            }
            let cert = ParsedCertificate::try_from(end_entity)?;
            let below = intermediates.get(..i).unwrap_or_default();
            verify_server_cert_signed_by_trust_anchor(&cert, &roots, below, now, self.algs.all)?;
            check_names(&cert, &self.names)?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ee = self
            .tlsa
            .iter()
            .any(|r| r.usage == DANE_EE && r.matches(end_entity));
        if ee || self.ta_match(end_entity, intermediates, now)? {
            return Ok(ServerCertVerified::assertion());
        }
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    handshake_signatures!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientTls, Policy};
    use crate::testutil::{TestCa, TestCert};

    fn client() -> ClientTls {
        ClientTls::new(&crate::parse_protocols("p", "").unwrap(), None).unwrap()
    }

    fn dane(tlsa: Vec<Tlsa>, names: &[&str]) -> Policy {
        Policy::Dane {
            tlsa,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn run(cert: &TestCert, policy: &Policy) -> Result<String, String> {
        crate::testutil::handshake(cert, &client(), policy, "mx.example.net")
    }

    #[test]
    fn presentation_and_rdata() {
        let t =
            Tlsa::parse("3 1 1 0123456789ABCDEF 0123456789abcdef0123456789abcdef0123456789abcdef")
                .unwrap();
        assert_eq!(
            (t.usage, t.selector, t.matching, t.data.len()),
            (3, 1, 1, 32)
        );
        assert!(t.is_usable());
        assert_eq!(Tlsa::from_rdata(&t.rdata()), Some(t.clone()));
        assert_eq!(Tlsa::parse(&t.to_string()), Ok(t));
        assert!(Tlsa::parse("3 1 1").is_err());
        assert!(Tlsa::parse("3 1 1 abc").is_err());
        assert!(Tlsa::parse("3 1 x ab").is_err());
        assert!(Tlsa::parse("300 1 1 ab").is_err());
        assert_eq!(Tlsa::from_rdata(&[3, 1, 1]), None);
        // Unusable for SMTP: PKIX usages, short digests, unknown types.
        for text in ["1 1 1 00", "3 1 1 00", "3 2 0 00", "3 1 3 00", "0 0 0 00"] {
            assert!(!Tlsa::parse(text).unwrap().is_usable(), "{text}");
        }
        assert!(Tlsa::parse("2 0 0 00").unwrap().is_usable());
    }

    #[test]
    fn dane_ee_3_1_1() {
        let cert = TestCert::self_signed("whatever.example");
        let good = Tlsa::for_cert(3, 1, 1, &cert.chain[0]).unwrap();
        // Name and issuer do not matter for DANE-EE.
        run(&cert, &dane(vec![good.clone()], &["mx.example.net"])).unwrap();
        let other = TestCert::self_signed("whatever.example");
        let wrong = Tlsa::for_cert(3, 1, 1, &other.chain[0]).unwrap();
        let e = run(&cert, &dane(vec![wrong.clone()], &[])).unwrap_err();
        assert!(e.contains("ApplicationVerificationFailure"), "{e}");
        // One matching record in the RRset is enough.
        run(&cert, &dane(vec![wrong, good], &[])).unwrap();
    }

    #[test]
    fn dane_ee_other_selectors_and_types() {
        let ca = TestCa::new("Some CA");
        let cert = ca.expired_leaf("elsewhere.example");
        for (s, m) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)] {
            let t = Tlsa::for_cert(3, s, m, &cert.chain[0]).unwrap();
            // Expired, wrong name: DANE-EE ignores both.
            run(&cert, &dane(vec![t], &["mx.example.net"]))
                .unwrap_or_else(|e| panic!("3 {s} {m}: {e}"));
        }
    }

    #[test]
    fn dane_ta_2_0_1() {
        let ca = TestCa::new("Private CA");
        let cert = ca.leaf("mx.example.net");
        let ta = Tlsa::for_cert(2, 0, 1, &ca.der()).unwrap();
        run(
            &cert,
            &dane(vec![ta.clone()], &["example.net", "mx.example.net"]),
        )
        .unwrap();
        // DANE-TA checks the name.
        let e = run(&cert, &dane(vec![ta.clone()], &["example.org"])).unwrap_err();
        assert!(e.contains("NotValidForName"), "{e}");
        // And the dates.
        let e = run(
            &ca.expired_leaf("mx.example.net"),
            &dane(vec![ta], &["mx.example.net"]),
        )
        .unwrap_err();
        assert!(e.contains("expired"), "{e}");
        // A TA record for another CA does not match.
        let other = TestCa::new("Other CA");
        let wrong = Tlsa::for_cert(2, 0, 1, &other.der()).unwrap();
        assert!(run(&cert, &dane(vec![wrong], &["mx.example.net"])).is_err());
        // A TA record (2 1 1) naming the server certificate's key is not
        // a DANE-EE record.
        let ee_as_ta = Tlsa::for_cert(2, 1, 1, &cert.chain[0]).unwrap();
        assert!(run(&cert, &dane(vec![ee_as_ta], &["mx.example.net"])).is_err());
    }

    #[test]
    fn unusable_records_never_match() {
        let cert = TestCert::self_signed("mx.example.net");
        let pkix = Tlsa::for_cert(1, 1, 1, &cert.chain[0]).unwrap();
        let e = run(&cert, &dane(vec![pkix.clone()], &["mx.example.net"])).unwrap_err();
        assert!(e.contains("none is usable"), "{e}");
        // Mixed with a usable record that does not match: still refused.
        let other = TestCert::self_signed("mx.example.net");
        let wrong = Tlsa::for_cert(3, 1, 1, &other.chain[0]).unwrap();
        assert!(run(&cert, &dane(vec![pkix, wrong], &["mx.example.net"])).is_err());
    }
}
