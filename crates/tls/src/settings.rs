//! The smtp client's TLS parameters (Postfix `smtp.c`/`smtp_tls_policy.c`
//! `smtp_tls_*`), read once per process, before any chroot (the CA file).
//! The LMTP client reads the `lmtp_tls_*` twins ([`ClientParams::LMTP`]),
//! as Postfix's lmtp(8) does.

use postern_config::Config;

use crate::client::{ClientTls, Policy, SecurityLevel, verify_names};
use crate::parse_protocols;

/// The names of the client's TLS parameters: Postfix gives smtp(8) and
/// lmtp(8) (the same program) each its own set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientParams {
    /// `smtp_tls_security_level`.
    pub security_level: &'static str,
    /// `smtp_tls_CAfile`.
    pub ca_file: &'static str,
    /// `smtp_tls_loglevel`.
    pub loglevel: &'static str,
    /// `smtp_tls_protocols`.
    pub protocols: &'static str,
    /// `smtp_tls_mandatory_protocols`.
    pub mandatory_protocols: &'static str,
    /// `smtp_tls_verify_cert_match`.
    pub verify_cert_match: &'static str,
    /// `smtp_tls_secure_cert_match`.
    pub secure_cert_match: &'static str,
    /// `smtp_tls_policy_maps` (read by the agent, not here).
    pub policy_maps: &'static str,
    /// `smtp_starttls_timeout` (read by the agent).
    pub starttls_timeout: &'static str,
}

impl ClientParams {
    /// smtp(8): `smtp_tls_*`.
    pub const SMTP: ClientParams = ClientParams {
        security_level: "smtp_tls_security_level",
        ca_file: "smtp_tls_CAfile",
        loglevel: "smtp_tls_loglevel",
        protocols: "smtp_tls_protocols",
        mandatory_protocols: "smtp_tls_mandatory_protocols",
        verify_cert_match: "smtp_tls_verify_cert_match",
        secure_cert_match: "smtp_tls_secure_cert_match",
        policy_maps: "smtp_tls_policy_maps",
        starttls_timeout: "smtp_starttls_timeout",
    };

    /// lmtp(8): `lmtp_tls_*`.
    pub const LMTP: ClientParams = ClientParams {
        security_level: "lmtp_tls_security_level",
        ca_file: "lmtp_tls_CAfile",
        loglevel: "lmtp_tls_loglevel",
        protocols: "lmtp_tls_protocols",
        mandatory_protocols: "lmtp_tls_mandatory_protocols",
        verify_cert_match: "lmtp_tls_verify_cert_match",
        secure_cert_match: "lmtp_tls_secure_cert_match",
        policy_maps: "lmtp_tls_policy_maps",
        starttls_timeout: "lmtp_starttls_timeout",
    };
}

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
        ClientSettings::from_config_for(config, &ClientParams::SMTP)
    }

    /// [`Self::from_config`] with the parameter names in `p`
    /// ([`ClientParams::LMTP`] for the LMTP client).
    pub fn from_config_for(config: &Config, p: &ClientParams) -> Result<ClientSettings, String> {
        let level = SecurityLevel::parse_param(&config.str(p.security_level), p.security_level)
            .map_err(|e| e.to_string())?;
        let ca = config.path(p.ca_file);
        let ca = (!ca.as_os_str().is_empty()).then_some(ca.as_path());
        let versions =
            |p: &'static str| parse_protocols(p, &config.str(p)).map_err(|e| e.to_string());
        let opportunistic = ClientTls::new(&versions(p.protocols)?, ca)
            .map_err(|e| e.to_string())?
            .with_ca_param(p.ca_file);
        let mandatory = opportunistic.with_versions(&versions(p.mandatory_protocols)?);
        Ok(ClientSettings {
            level,
            loglevel: config.int(p.loglevel),
            opportunistic,
            mandatory,
            verify_cert_match: config.str(p.verify_cert_match),
            secure_cert_match: config.str(p.secure_cert_match),
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
    fn the_lmtp_client_reads_the_lmtp_twins() {
        let s = ClientSettings::from_config_for(
            &config(&[
                "smtp_tls_security_level=secure",
                "lmtp_tls_security_level=encrypt",
                "lmtp_tls_mandatory_protocols=>=TLSv1.3",
                "lmtp_tls_loglevel=1",
            ]),
            &ClientParams::LMTP,
        )
        .unwrap();
        assert_eq!(s.level, SecurityLevel::Encrypt);
        assert_eq!(s.loglevel, 1);
        assert_eq!(s.tls(SecurityLevel::Encrypt).versions(), ["TLSv1.3"]);
        // Postfix: no MX lookups for LMTP, so secure is verify by the
        // next-hop name.
        assert_eq!(
            s.policy(SecurityLevel::Secure, "lmtp.example", "lmtp.example"),
            Policy::Verify {
                names: vec!["lmtp.example".into()]
            }
        );
        let e = ClientSettings::from_config_for(
            &config(&["lmtp_tls_security_level=fingerprint"]),
            &ClientParams::LMTP,
        )
        .unwrap_err();
        assert!(e.starts_with("lmtp_tls_security_level: "), "{e}");
        let e = ClientSettings::from_config_for(
            &config(&["lmtp_tls_protocols=TLSv1.1"]),
            &ClientParams::LMTP,
        )
        .unwrap_err();
        assert!(e.starts_with("lmtp_tls_protocols: "), "{e}");
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
