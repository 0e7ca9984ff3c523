//! TLS-RPT (RFC 8460) result types and counters. Postern does not send
//! aggregate reports; it counts successes and failures per policy domain
//! and writes them to the log, where report tooling (or an admin) can
//! pick them up:
//!
//! ```text
//! tlsrpt: policy-domain=example.com policy-type=sts successful=12 failed=1 certificate-host-mismatch=1
//! ```
//!
//! The smtp client calls [`Counters::success`] or [`Counters::failure`]
//! once per connection attempt that had a policy (or none:
//! `no-policy-found`) and logs [`Counters::log_lines`] when it retires.
//! Single failures are logged at once with [`failure_line`].

use std::collections::BTreeMap;
use std::fmt;

use rustls::{CertificateError, Error};

/// The policy that applied (RFC 8460 §4.4 `policy-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyType {
    /// MTA-STS.
    Sts,
    /// DANE.
    Tlsa,
    /// Neither.
    NoPolicyFound,
}

impl PolicyType {
    /// The RFC's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
        }
    }
}

/// Why a session failed (RFC 8460 §4.3 `result-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResultType {
    /// The MX did not offer STARTTLS.
    StartTlsNotSupported,
    /// The certificate is not valid for the expected name.
    CertificateHostMismatch,
    /// The certificate has expired.
    CertificateExpired,
    /// The certificate does not chain to a trusted root (or to the TLSA
    /// trust anchor).
    CertificateNotTrusted,
    /// Any other validation failure (a TLSA record did not match, a bad
    /// handshake signature).
    ValidationFailure,
    /// The TLSA records exist but none is usable.
    TlsaInvalid,
    /// DNSSEC validation failed for the TLSA lookup.
    DnssecInvalid,
    /// The domain requires DANE but the MX has no TLSA records.
    DaneRequired,
    /// The MTA-STS policy could not be fetched.
    StsPolicyFetchError,
    /// The MTA-STS policy did not parse.
    StsPolicyInvalid,
    /// The MTA-STS policy server's certificate did not validate.
    StsWebpkiInvalid,
}

impl ResultType {
    /// The RFC's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultType::StartTlsNotSupported => "starttls-not-supported",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::DaneRequired => "dane-required",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }

    /// The result type for a failed handshake, from rustls' error.
    pub fn from_tls_error(e: &Error) -> ResultType {
        match e {
            Error::InvalidCertificate(c) => match c {
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    ResultType::CertificateHostMismatch
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    ResultType::CertificateExpired
                }
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    ResultType::CertificateNotTrusted
                }
                _ => ResultType::ValidationFailure,
            },
            _ => ResultType::ValidationFailure,
        }
    }

    /// The result type for an MTA-STS fetch failure.
    pub fn from_fetch_error(e: &crate::sts::FetchError) -> ResultType {
        use crate::sts::FetchError;
        match e {
            FetchError::Certificate(_) => ResultType::StsWebpkiInvalid,
            FetchError::Policy(_) => ResultType::StsPolicyInvalid,
            FetchError::Io(_) | FetchError::Http(_) => ResultType::StsPolicyFetchError,
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Default, Clone)]
struct Tally {
    successful: u64,
    failed: BTreeMap<ResultType, u64>,
}

/// Counts per (policy domain, policy type). The number of domains is
/// capped ([`Counters::LIMIT`]); past it, new domains are counted under
/// `*`, so a flood of destinations cannot grow memory without bound.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    tallies: BTreeMap<(String, PolicyType), Tally>,
}

impl Counters {
    /// Most distinct domains kept.
    pub const LIMIT: usize = 1000;

    fn tally(&mut self, domain: &str, policy: PolicyType) -> &mut Tally {
        let mut key = (domain.trim_end_matches('.').to_ascii_lowercase(), policy);
        if self.tallies.len() >= Self::LIMIT && !self.tallies.contains_key(&key) {
            key.0 = "*".into();
        }
        self.tallies.entry(key).or_default()
    }

    /// A session that met its policy.
    pub fn success(&mut self, domain: &str, policy: PolicyType) {
        let t = self.tally(domain, policy);
        t.successful = t.successful.saturating_add(1);
    }

    /// A session that failed for `result`.
    pub fn failure(&mut self, domain: &str, policy: PolicyType, result: ResultType) {
        let n = self.tally(domain, policy).failed.entry(result).or_default();
        *n = n.saturating_add(1);
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }

    /// One line per domain and policy type, sorted:
    /// `tlsrpt: policy-domain=D policy-type=T successful=N failed=M [type=n ...]`.
    pub fn log_lines(&self) -> Vec<String> {
        self.tallies
            .iter()
            .map(|((domain, policy), t)| {
                let failed: u64 = t.failed.values().sum();
                let mut line = format!(
                    "tlsrpt: policy-domain={domain} policy-type={} successful={} failed={failed}",
                    policy.as_str(),
                    t.successful
                );
                for (result, n) in &t.failed {
                    line.push_str(&format!(" {result}={n}"));
                }
                line
            })
            .collect()
    }

    /// Forgets everything (after logging).
    pub fn clear(&mut self) {
        self.tallies.clear();
    }
}

/// One failure, for the log at the time it happens:
/// `tlsrpt: policy-domain=example.com policy-type=tlsa
/// result-type=validation-failure receiving-mx-hostname=mx.example.com
/// failure-reason-code="..."`.
pub fn failure_line(
    domain: &str,
    policy: PolicyType,
    result: ResultType,
    mx_host: &str,
    reason: &str,
) -> String {
    let reason: String = reason
        .chars()
        .take(200)
        .map(|c| if c.is_control() || c == '"' { '?' } else { c })
        .collect();
    format!(
        "tlsrpt: policy-domain={domain} policy-type={} result-type={result} \
         receiving-mx-hostname={mx_host} failure-reason-code=\"{reason}\"",
        policy.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lines() {
        let mut c = Counters::default();
        assert!(c.is_empty());
        c.success("Example.com.", PolicyType::Sts);
        c.success("example.com", PolicyType::Sts);
        c.failure(
            "example.com",
            PolicyType::Sts,
            ResultType::CertificateHostMismatch,
        );
        c.failure(
            "example.com",
            PolicyType::Sts,
            ResultType::StartTlsNotSupported,
        );
        c.failure(
            "example.com",
            PolicyType::Sts,
            ResultType::StartTlsNotSupported,
        );
        c.failure("dane.example", PolicyType::Tlsa, ResultType::TlsaInvalid);
        assert_eq!(
            c.log_lines(),
            [
                "tlsrpt: policy-domain=dane.example policy-type=tlsa successful=0 failed=1 \
                 tlsa-invalid=1",
                "tlsrpt: policy-domain=example.com policy-type=sts successful=2 failed=3 \
                 starttls-not-supported=2 certificate-host-mismatch=1",
            ]
        );
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn domains_are_capped() {
        let mut c = Counters::default();
        for i in 0..Counters::LIMIT + 10 {
            c.success(&format!("d{i}.example"), PolicyType::NoPolicyFound);
        }
        let lines = c.log_lines();
        assert_eq!(lines.len(), Counters::LIMIT + 1);
        assert!(
            lines.contains(
                &"tlsrpt: policy-domain=* policy-type=no-policy-found successful=10 failed=0"
                    .to_string()
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn classification() {
        let cert = |c| Error::InvalidCertificate(c);
        assert_eq!(
            ResultType::from_tls_error(&cert(CertificateError::NotValidForName)),
            ResultType::CertificateHostMismatch
        );
        assert_eq!(
            ResultType::from_tls_error(&cert(CertificateError::Expired)),
            ResultType::CertificateExpired
        );
        assert_eq!(
            ResultType::from_tls_error(&cert(CertificateError::UnknownIssuer)),
            ResultType::CertificateNotTrusted
        );
        assert_eq!(
            ResultType::from_tls_error(&cert(CertificateError::ApplicationVerificationFailure)),
            ResultType::ValidationFailure
        );
        assert_eq!(
            ResultType::from_fetch_error(&crate::sts::FetchError::Policy("x".into())),
            ResultType::StsPolicyInvalid
        );
        assert_eq!(
            failure_line(
                "a.example",
                PolicyType::Tlsa,
                ResultType::ValidationFailure,
                "mx.a.example",
                "no \"match\"\n"
            ),
            "tlsrpt: policy-domain=a.example policy-type=tlsa result-type=validation-failure \
             receiving-mx-hostname=mx.a.example failure-reason-code=\"no ?match??\""
        );
    }
}
