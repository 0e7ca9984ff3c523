//! The Postfix description of a TLS session (`tls_misc.c:tls_log_summary`
//! and smtpd's `Received:` clause): protocol, cipher in OpenSSL's naming,
//! and its strength, e.g. `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
//! (256/256 bits)`. Log analysers (pflogsumm, mail graphs) parse this
//! shape, so the names are OpenSSL's, not rustls'.

use std::fmt;

use rustls::{CipherSuite, CommonState, NamedGroup, ProtocolVersion};

/// What was negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: String,
    /// The cipher suite as OpenSSL names it.
    pub cipher: String,
    /// Symmetric key bits (used and available are the same for AEADs).
    pub bits: u16,
    /// The key exchange group (`X25519`, `secp256r1`, ...), if known.
    pub key_exchange: Option<String>,
}

impl TlsInfo {
    /// The summary with the key exchange, for log lines:
    /// `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
    /// key-exchange X25519`.
    pub fn summary(&self) -> String {
        match &self.key_exchange {
            Some(kx) => format!("{self} key-exchange {kx}"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} with cipher {} ({}/{} bits)",
            self.protocol, self.cipher, self.bits, self.bits
        )
    }
}

/// Describes an established connection (server or client side); `None`
/// while the handshake is not complete.
pub fn describe(conn: &CommonState) -> Option<TlsInfo> {
    if conn.is_handshaking() {
        return None;
    }
    let protocol = match conn.protocol_version()? {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    };
    let suite = conn.negotiated_cipher_suite()?.suite();
    let (cipher, bits) = openssl_name(suite);
    let key_exchange = conn
        .negotiated_key_exchange_group()
        .map(|g| group_name(g.name()));
    Some(TlsInfo {
        protocol,
        cipher,
        bits,
        key_exchange,
    })
}

/// OpenSSL's name and key size for the suites rustls implements.
fn openssl_name(suite: CipherSuite) -> (String, u16) {
    let (name, bits) = match suite {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        CipherSuite::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => {
            ("ECDHE-ECDSA-AES256-GCM-SHA384", 256)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => {
            ("ECDHE-ECDSA-AES128-GCM-SHA256", 128)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-ECDSA-CHACHA20-POLY1305", 256)
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-RSA-CHACHA20-POLY1305", 256)
        }
        other => return (format!("{other:?}"), 0),
    };
    (name.to_string(), bits)
}

fn group_name(group: NamedGroup) -> String {
    match group {
        NamedGroup::X25519 => "X25519".into(),
        NamedGroup::secp256r1 => "prime256v1".into(),
        NamedGroup::secp384r1 => "secp384r1".into(),
        NamedGroup::secp521r1 => "secp521r1".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text() {
        let info = TlsInfo {
            protocol: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            bits: 256,
            key_exchange: Some("X25519".into()),
        };
        assert_eq!(
            info.to_string(),
            "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
        );
        assert_eq!(
            info.summary(),
            "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519"
        );
        assert_eq!(
            openssl_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            ("ECDHE-RSA-AES128-GCM-SHA256".to_string(), 128)
        );
    }
}
