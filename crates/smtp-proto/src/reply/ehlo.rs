//! The EHLO response: building it on the server, reading it on the client.
//!
//! Postfix `smtpd.c:ehlo_cmd` announces, in this order: PIPELINING,
//! SIZE, VRFY, ETRN, STARTTLS, AUTH, ENHANCEDSTATUSCODES, 8BITMIME, DSN,
//! SMTPUTF8, CHUNKING. [`ehlo`] keeps whatever order it is given, so the
//! caller decides (and can drop keywords, like
//! `smtpd_discard_ehlo_keywords`).

use super::Reply;

/// An EHLO keyword with its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Extension {
    /// `AUTH mech ...` (RFC 4954). Also read from the obsolete `AUTH=`
    /// form that old servers send.
    Auth(Vec<String>),
    /// `BINARYMIME` (RFC 3030).
    BinaryMime,
    /// `CHUNKING` (RFC 3030): BDAT.
    Chunking,
    /// `DSN` (RFC 3461).
    Dsn,
    /// `8BITMIME` (RFC 6152).
    EightBitMime,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    EnhancedStatusCodes,
    /// `ETRN` (RFC 1985).
    Etrn,
    /// Any other keyword, upper-cased, with its parameters.
    Other {
        /// The keyword, upper case.
        keyword: String,
        /// Space-separated parameters.
        params: Vec<String>,
    },
    /// `PIPELINING` (RFC 2920).
    Pipelining,
    /// `SIZE [n]` (RFC 1870). `None` or `Some(0)`: no fixed limit.
    Size(Option<u64>),
    /// `SMTPUTF8` (RFC 6531).
    SmtpUtf8,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `VRFY`.
    Vrfy,
}

impl Extension {
    /// The keyword as announced, upper case.
    pub fn keyword(&self) -> &str {
        match self {
            Self::Auth(_) => "AUTH",
            Self::BinaryMime => "BINARYMIME",
            Self::Chunking => "CHUNKING",
            Self::Dsn => "DSN",
            Self::EightBitMime => "8BITMIME",
            Self::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Self::Etrn => "ETRN",
            Self::Other { keyword, .. } => keyword,
            Self::Pipelining => "PIPELINING",
            Self::Size(_) => "SIZE",
            Self::SmtpUtf8 => "SMTPUTF8",
            Self::StartTls => "STARTTLS",
            Self::Vrfy => "VRFY",
        }
    }

    /// The EHLO response line for this extension.
    pub fn to_line(&self) -> String {
        match self {
            Self::Auth(mechs) if !mechs.is_empty() => format!("AUTH {}", mechs.join(" ")),
            Self::Size(Some(n)) => format!("SIZE {n}"),
            Self::Other { keyword, params } if !params.is_empty() => {
                format!("{keyword} {}", params.join(" "))
            }
            other => other.keyword().to_owned(),
        }
    }

    /// Reads one EHLO response line (after the code). Returns `None` for an
    /// empty line or a keyword that is not `ALPHA/DIGIT *(ALPHA/DIGIT/"-")`.
    pub fn parse_line(line: &str) -> Option<Self> {
        let mut words = line.split_ascii_whitespace();
        let first = words.next()?;
        // Old servers send "AUTH=LOGIN PLAIN".
        let (keyword, first_param) = match first.split_once('=') {
            Some((k, p)) if k.eq_ignore_ascii_case("AUTH") => (k, Some(p)),
            _ => (first, None),
        };
        let valid = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return None;
        }
        let keyword = keyword.to_ascii_uppercase();
        let params: Vec<String> = first_param
            .filter(|p| !p.is_empty())
            .into_iter()
            .chain(words)
            .map(str::to_owned)
            .collect();
        Some(match keyword.as_str() {
            "AUTH" => Self::Auth(params.iter().map(|m| m.to_ascii_uppercase()).collect()),
            "BINARYMIME" => Self::BinaryMime,
            "CHUNKING" => Self::Chunking,
            "DSN" => Self::Dsn,
            "8BITMIME" => Self::EightBitMime,
            "ENHANCEDSTATUSCODES" => Self::EnhancedStatusCodes,
            "ETRN" => Self::Etrn,
            "PIPELINING" => Self::Pipelining,
            "SIZE" => Self::Size(params.first().and_then(|n| n.parse().ok())),
            "SMTPUTF8" => Self::SmtpUtf8,
            "STARTTLS" => Self::StartTls,
            "VRFY" => Self::Vrfy,
            _ => Self::Other { keyword, params },
        })
    }
}

/// Builds the `250` EHLO response: the hostname line, then one line per
/// extension. EHLO replies carry no enhanced status code (RFC 2034).
pub fn ehlo(hostname: &str, extensions: &[Extension]) -> Reply {
    let mut lines = Vec::with_capacity(extensions.len() + 1);
    lines.push(hostname.to_owned());
    lines.extend(extensions.iter().map(Extension::to_line));
    Reply {
        code: 250,
        enhanced: None,
        lines,
    }
}

/// What a server announced in its EHLO response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The server's name: the first word of the first line.
    pub domain: String,
    /// Announced extensions, in order; lines that are not keywords are
    /// skipped. `AUTH` and `AUTH=` lines are merged into one entry.
    pub extensions: Vec<Extension>,
}

impl Capabilities {
    /// Reads a `250` EHLO response. Returns `None` for any other code.
    pub fn from_ehlo(reply: &Reply) -> Option<Self> {
        if reply.code != 250 {
            return None;
        }
        let mut lines = reply.lines.iter();
        let domain = lines
            .next()
            .and_then(|l| l.split_ascii_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        let mut extensions: Vec<Extension> = Vec::new();
        for ext in lines.filter_map(|l| Extension::parse_line(l)) {
            if let Extension::Auth(new) = &ext
                && let Some(Extension::Auth(mechs)) = extensions
                    .iter_mut()
                    .find(|e| matches!(e, Extension::Auth(_)))
            {
                for m in new {
                    if !mechs.contains(m) {
                        mechs.push(m.clone());
                    }
                }
                continue;
            }
            extensions.push(ext);
        }
        Some(Self { domain, extensions })
    }

    /// The extension with this keyword (case-insensitive), if announced.
    pub fn get(&self, keyword: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.keyword().eq_ignore_ascii_case(keyword))
    }

    /// Whether the keyword (case-insensitive) was announced.
    pub fn has(&self, keyword: &str) -> bool {
        self.get(keyword).is_some()
    }

    /// The announced SIZE limit; `None` if SIZE was not announced or has
    /// no fixed limit (`SIZE`, `SIZE 0`).
    pub fn size_limit(&self) -> Option<u64> {
        match self.get("SIZE") {
            Some(Extension::Size(Some(n))) if *n > 0 => Some(*n),
            _ => None,
        }
    }

    /// The announced SASL mechanisms, upper case.
    pub fn auth_mechanisms(&self) -> &[String] {
        match self.get("AUTH") {
            Some(Extension::Auth(mechs)) => mechs,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postfix_like() -> Vec<Extension> {
        vec![
            Extension::Pipelining,
            Extension::Size(Some(10_240_000)),
            Extension::Vrfy,
            Extension::Etrn,
            Extension::StartTls,
            Extension::Auth(vec!["PLAIN".into(), "LOGIN".into()]),
            Extension::EnhancedStatusCodes,
            Extension::EightBitMime,
            Extension::Dsn,
            Extension::SmtpUtf8,
            Extension::Chunking,
        ]
    }

    #[test]
    fn builds_postfix_style_response() {
        let r = ehlo("mx.example.org", &postfix_like());
        let wire = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            wire,
            "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
             250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n\
             250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
        );
    }

    #[test]
    fn round_trips_through_capabilities() {
        let r = ehlo("mx.example.org", &postfix_like());
        let parsed = Reply::parse(&r.to_bytes()).unwrap();
        let caps = Capabilities::from_ehlo(&parsed).unwrap();
        assert_eq!(caps.domain, "mx.example.org");
        assert_eq!(caps.extensions, postfix_like());
        assert_eq!(caps.size_limit(), Some(10_240_000));
        assert_eq!(caps.auth_mechanisms(), ["PLAIN", "LOGIN"]);
        assert!(caps.has("pipelining"));
        assert!(!caps.has("BINARYMIME"));
    }

    #[test]
    fn reads_quirky_servers() {
        let r = Reply::parse(
            b"250-mail.example.com Hello [192.0.2.1]\r\n250-AUTH=LOGIN\r\n250-AUTH login CRAM-MD5\r\n\
              250-SIZE\r\n250-X-EXPS GSSAPI NTLM\r\n250-\r\n250 8bitmime\r\n",
        )
        .unwrap();
        let caps = Capabilities::from_ehlo(&r).unwrap();
        assert_eq!(caps.domain, "mail.example.com");
        assert_eq!(caps.auth_mechanisms(), ["LOGIN", "CRAM-MD5"]);
        assert_eq!(caps.size_limit(), None);
        assert!(caps.has("SIZE"));
        assert!(caps.has("8BITMIME"));
        assert_eq!(
            caps.get("x-exps"),
            Some(&Extension::Other {
                keyword: "X-EXPS".into(),
                params: vec!["GSSAPI".into(), "NTLM".into()]
            })
        );
        assert!(Capabilities::from_ehlo(&Reply::new(502, None, "no")).is_none());
    }
}
