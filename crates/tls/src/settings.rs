//! The smtp client's TLS parameters (Postfix `smtp.c`/`smtp_tls_policy.c`
//! `smtp_tls_*`), read once per process, before any chroot (the CA file).

use postern_config::Config;

use crate::client::{ClientTls, Policy, SecurityLevel, verify_names};
use crate::parse_protocols;

/// Everything the smtp client needs to decide about TLS.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `smtp_tls_security_level`.
    pub level: SecurityLevel,
    /// `smtp_tls_loglevel`.
    pub loglevel: i64,
    /// Configurations with `smtp_tls_protocols` (opportunistic TLS).
    opportunistic: ClientTls,
    /// Configurations with `smtp_tls_mandatory_protocols`.
    mandatory: ClientTls,
    verify_cert_match: String,
    secure_cert_match: String,
}

impl ClientSettings {
    /// Reads the parameters and the CA file (`smtp_tls_CAfile`, or the
    /// system bundle). Errors name the parameter.
    pub fn from_config(config: &Config) -> Result<ClientSettings, String> {
        let level = SecurityLevel::parse(&config.str("smtp_tls_security_level"))
            .map_err(|e| e.to_string())?;
        let ca = config.path("smtp_tls_CAfile");
        let ca = (!ca.as_os_str().is_empty()).then_some(ca.as_path());
        let versions =
            |p: &'static str| parse_protocols(p, &config.str(p)).map_err(|e| e.to_string());
        let opportunistic =
            ClientTls::new(&versions("smtp_tls_protocols")?, ca).map_err(|e| e.to_string())?;
        let mandatory = opportunistic.with_versions(&versions("smtp_tls_mandatory_protocols")?);
        Ok(ClientSettings {
            level,
            loglevel: config.int("smtp_tls_loglevel"),
            opportunistic,
            mandatory,
            verify_cert_match: config.str("smtp_tls_verify_cert_match"),
            secure_cert_match: config.str("smtp_tls_secure_cert_match"),
        })
    }

    /// The configurations for `level`: mandatory protocols from `encrypt`
    /// up (and for `dane` with usable TLSA records: pass
    /// [`SecurityLevel::DaneOnly`]).
    pub fn tls(&self, level: SecurityLevel) -> &ClientTls {
        if level.requires_tls() {
            &self.mandatory
        } else {
            &self.opportunistic
        }
    }

    /// The certificate policy of `verify`/`secure` for a next-hop domain
    /// and MX host (`smtp_tls_verify_cert_match`,
    /// `smtp_tls_secure_cert_match`); `Unauthenticated` for the other
    /// levels (DANE policies come from TLSA records, see
    /// [`crate::client::Policy::Dane`]).
    pub fn policy(&self, level: SecurityLevel, nexthop: &str, mx_host: &str) -> Policy {
        let strategy = match level {
            SecurityLevel::Verify => &self.verify_cert_match,
            SecurityLevel::Secure => &self.secure_cert_match,
            _ => return Policy::Unauthenticated,
        };
        Policy::Verify {
            names: verify_names(strategy, nexthop, mx_host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(o: &[&str]) -> Config {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        Config::defaults().with_overrides(&o).unwrap()
    }

    #[test]
    fn defaults_are_postfix_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::testutil::TestCa::new("CA");
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, ca.pem()).unwrap();
        let s =
            ClientSettings::from_config(&config(&[&format!("smtp_tls_CAfile={}", f.display())]))
                .unwrap();
        assert_eq!(s.level, SecurityLevel::None);
        assert_eq!(s.loglevel, 0);
        assert_eq!(s.tls(SecurityLevel::May).root_count(), 1);
        assert_eq!(
            s.policy(SecurityLevel::Verify, "example.com", "mx1.example.com"),
            Policy::Verify {
                names: vec!["mx1.example.com".into()]
            }
        );
        assert_eq!(
            s.policy(SecurityLevel::Secure, "example.com", "mx1.example.com"),
            Policy::Verify {
                names: vec!["example.com".into(), "mx1.example.com".into()]
            }
        );
        assert_eq!(
            s.policy(SecurityLevel::Encrypt, "example.com", "mx1.example.com"),
            Policy::Unauthenticated
        );
    }

    #[test]
    fn mandatory_protocols_apply_from_encrypt_up() {
        let s = ClientSettings::from_config(&config(&[
            "smtp_tls_security_level=encrypt",
            "smtp_tls_mandatory_protocols=>=TLSv1.3",
            "smtp_tls_protocols=<=TLSv1.2",
        ]))
        .unwrap();
        assert_eq!(s.level, SecurityLevel::Encrypt);
        assert_eq!(s.tls(SecurityLevel::Encrypt).versions(), ["TLSv1.3"]);
        assert_eq!(s.tls(SecurityLevel::May).versions(), ["TLSv1.2"]);
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = ClientSettings::from_config(&config(&["smtp_tls_security_level=fingerprint"]))
            .unwrap_err();
        assert!(e.starts_with("smtp_tls_security_level: "), "{e}");
        let e = ClientSettings::from_config(&config(&["smtp_tls_protocols=TLSv1.1"])).unwrap_err();
        assert!(e.starts_with("smtp_tls_protocols: "), "{e}");
        let e = ClientSettings::from_config(&config(&["smtp_tls_CAfile=/nonexistent/ca.pem"]))
            .unwrap_err();
        assert!(e.starts_with("/nonexistent/ca.pem: "), "{e}");
    }
}
