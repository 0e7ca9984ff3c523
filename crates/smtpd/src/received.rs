//! The `Received:` header smtpd prepends (Postfix `smtpd.c:data_cmd`, and
//! `global/mail_date.c` for the date).
//!
//! ```text
//! Received: from HELO (NAME [ADDR])
//!     by MYHOSTNAME (MAIL_NAME) with PROTOCOL id QUEUEID
//!     for <RCPT>; DATE
//! ```
//!
//! Continuation lines start with a TAB. The `for` clause appears only with exactly one recipient; otherwise the
//! `by` line ends in `;` and the date gets a line of its own. Without
//! HELO/EHLO the client name stands in for the HELO name.

/// What goes into one header.
#[derive(Debug, Clone)]
pub(crate) struct Received<'a> {
    /// The HELO/EHLO argument, if any.
    pub(crate) helo: Option<&'a str>,
    /// The client's host name (`unknown` without a reverse lookup).
    pub(crate) client_name: &'a str,
    /// The client address as written in headers: `192.0.2.1` or
    /// `IPv6:2001:db8::1`.
    pub(crate) client_rfc_addr: &'a str,
    /// `myhostname`.
    pub(crate) hostname: &'a str,
    /// `mail_name`.
    pub(crate) mail_name: &'a str,
    /// `SMTP`, `ESMTP` or `UTF8SMTP` (RFC 3848, RFC 6531).
    pub(crate) protocol: &'a str,
    /// The queue ID.
    pub(crate) queue_id: &'a str,
    /// The one recipient, quoted for a header, when there is exactly one.
    pub(crate) single_recipient: Option<&'a str>,
    /// The date, as from [`date`].
    pub(crate) date: &'a str,
    /// The TLS session, when `smtpd_tls_received_header = yes`.
    pub(crate) tls: Option<&'a postern_tls::TlsInfo>,
}

impl Received<'_> {
    /// The header with CRLF line endings, folded as Postfix folds it.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let helo = self.helo.unwrap_or(self.client_name);
        let mut h = format!(
            "Received: from {} ({} [{}])\r\n",
            clean(helo),
            self.client_name,
            self.client_rfc_addr,
        );
        if let Some(tls) = self.tls {
            // Postfix smtpd.c: the cipher clause, then whether a client
            // certificate was asked for (never, here).
            h.push_str(&format!("\t(using {tls}"));
            match &tls.key_exchange {
                Some(kx) => h.push_str(&format!("\r\n\t key-exchange {kx})\r\n")),
                None => h.push_str(")\r\n"),
            }
            h.push_str("\t(No client certificate requested)\r\n");
        }
        h.push_str(&format!(
            "\tby {} ({}) with {} id {}",
            self.hostname, self.mail_name, self.protocol, self.queue_id
        ));
        match self.single_recipient {
            Some(rcpt) => h.push_str(&format!("\r\n\tfor <{}>; {}\r\n", clean(rcpt), self.date)),
            None => h.push_str(&format!(";\r\n\t{}\r\n", self.date)),
        }
        h.into_bytes()
    }
}

/// Keeps client-supplied text from breaking the header: control
/// characters become `?` (the parser already refused CR/LF in commands;
/// this is defence in depth).
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// RFC 5322 date in the local time zone, as Postfix `mail_date()`:
/// `Tue, 3 Mar 2026 10:04:05 +0100 (CET)`.
pub(crate) fn date(now: &jiff::ZonedDateTime) -> String {
    now.strftime("%a, %-d %b %Y %H:%M:%S %z (%Z)").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Received<'static> {
        Received {
            helo: Some("client.example"),
            client_name: "unknown",
            client_rfc_addr: "127.0.0.1",
            hostname: "mail.example.test",
            mail_name: "Postern",
            protocol: "ESMTP",
            queue_id: "4ABCDEF",
            single_recipient: Some("bob@example.test"),
            date: "Tue, 3 Mar 2026 10:04:05 +0000 (UTC)",
            tls: None,
        }
    }

    #[test]
    fn tls_clause_postfix_shape() {
        let info = postern_tls::TlsInfo {
            protocol: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            bits: 256,
            key_exchange: Some("X25519".into()),
        };
        let r = Received {
            protocol: "ESMTPS",
            tls: Some(&info),
            ..base()
        };
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "Received: from client.example (unknown [127.0.0.1])\r\n\
             \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\
             \t key-exchange X25519)\r\n\
             \t(No client certificate requested)\r\n\
             \tby mail.example.test (Postern) with ESMTPS id 4ABCDEF\r\n\
             \tfor <bob@example.test>; Tue, 3 Mar 2026 10:04:05 +0000 (UTC)\r\n"
        );
    }

    #[test]
    fn one_recipient_postfix_shape() {
        assert_eq!(
            String::from_utf8(base().to_bytes()).unwrap(),
            "Received: from client.example (unknown [127.0.0.1])\r\n\
             \tby mail.example.test (Postern) with ESMTP id 4ABCDEF\r\n\
             \tfor <bob@example.test>; Tue, 3 Mar 2026 10:04:05 +0000 (UTC)\r\n"
        );
    }

    #[test]
    fn many_recipients_and_no_helo() {
        let r = Received {
            helo: None,
            single_recipient: None,
            client_rfc_addr: "IPv6:::1",
            ..base()
        };
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "Received: from unknown (unknown [IPv6:::1])\r\n\
             \tby mail.example.test (Postern) with ESMTP id 4ABCDEF;\r\n\
             \tTue, 3 Mar 2026 10:04:05 +0000 (UTC)\r\n"
        );
    }

    #[test]
    fn date_format() {
        let t: jiff::ZonedDateTime = "2026-03-03T10:04:05+01:00[Europe/Paris]".parse().unwrap();
        assert_eq!(date(&t), "Tue, 3 Mar 2026 10:04:05 +0100 (CET)");
    }
}
