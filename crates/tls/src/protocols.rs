//! Postfix's TLS protocol lists (`smtpd_tls_protocols`,
//! `smtp_tls_protocols` and their `_mandatory_` forms; Postfix
//! `tls_protocol_mask`).
//!
//! Accepted forms, separated by commas, blanks or colons:
//! - exclusions: `!SSLv2, !SSLv3, !TLSv1, !TLSv1.1`;
//! - inclusions: `TLSv1.2, TLSv1.3` (everything else is excluded);
//! - bounds (Postfix 3.6): `>=TLSv1.2`, `<=TLSv1.3`.
//!
//! rustls speaks only TLS 1.2 and 1.3, so the result is a subset of those;
//! asking for nothing either of them covers is an error rather than a
//! server that cannot handshake.

use rustls::SupportedProtocolVersion;

use crate::TlsError;

const NAMES: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/// Index in [`NAMES`] (a version's rank), case-insensitively.
fn rank(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))
}

/// The rustls versions that `value` allows; `param` names the parameter
/// in errors.
pub fn parse_protocols(
    param: &'static str,
    value: &str,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let bad = |reason: String| TlsError::Param { param, reason };
    let mut allowed = [true; 6];
    let mut included: Option<[bool; 6]> = None;
    for word in value.split([',', ' ', '\t', ':']).filter(|w| !w.is_empty()) {
        let (op, name) = if let Some(n) = word.strip_prefix(">=") {
            (">=", n)
        } else if let Some(n) = word.strip_prefix("<=") {
            ("<=", n)
        } else if let Some(n) = word.strip_prefix('!') {
            ("!", n)
        } else {
            ("", word)
        };
        let r = rank(name).ok_or_else(|| bad(format!("unknown TLS protocol \"{name}\"")))?;
        match op {
            ">=" => allowed.iter_mut().take(r).for_each(|a| *a = false),
            "<=" => allowed.iter_mut().skip(r + 1).for_each(|a| *a = false),
            "!" => allowed[r] = false,
            _ => included.get_or_insert([false; 6])[r] = true,
        }
    }
    if let Some(inc) = included {
        for (a, i) in allowed.iter_mut().zip(inc) {
            *a &= i;
        }
    }
    let mut versions = Vec::new();
    if allowed[5] {
        versions.push(&rustls::version::TLS13);
    }
    if allowed[4] {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        return Err(bad(format!(
            "\"{value}\" leaves neither TLSv1.2 nor TLSv1.3, the only versions supported"
        )));
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(value: &str) -> Vec<String> {
        parse_protocols("p", value)
            .unwrap()
            .iter()
            .map(|v| format!("{:?}", v.version))
            .collect()
    }

    #[test]
    fn forms() {
        assert_eq!(names(""), ["TLSv1_3", "TLSv1_2"]);
        assert_eq!(names(">=TLSv1"), ["TLSv1_3", "TLSv1_2"]);
        assert_eq!(names("!SSLv2, !SSLv3"), ["TLSv1_3", "TLSv1_2"]);
        assert_eq!(names(">=TLSv1.3"), ["TLSv1_3"]);
        assert_eq!(names("<=TLSv1.2"), ["TLSv1_2"]);
        assert_eq!(names("!TLSv1.3"), ["TLSv1_2"]);
        assert_eq!(names("TLSv1.2 TLSv1.1"), ["TLSv1_2"]);
        assert_eq!(names("tlsv1.3:!sslv3"), ["TLSv1_3"]);
    }

    #[test]
    fn errors() {
        let e = parse_protocols("smtpd_tls_protocols", "<=TLSv1.1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("smtpd_tls_protocols: "), "{e}");
        assert!(parse_protocols("p", "TLSv9").is_err());
        assert!(parse_protocols("p", "!TLSv1.2 !TLSv1.3").is_err());
    }
}
