//! The standard replies, worded as Postfix `smtpd` words them, so that log
//! readers and test suites written against Postfix keep working.
//!
//! Only the greeting and the HELO/EHLO replies lack an enhanced status code
//! (RFC 2034 §3: they are sent before the client knows the server supports
//! ENHANCEDSTATUSCODES). Replies that depend on policy data take it as an
//! argument; the text is the caller's to choose only where Postfix's is
//! configurable too (the banner).

use super::{EnhancedStatus, Reply};

fn reply(code: u16, class: u8, subject: u16, detail: u16, text: impl Into<String>) -> Reply {
    Reply::with_status(code, EnhancedStatus::new(class, subject, detail), text)
}

// --- 2xx / 3xx -----------------------------------------------------------

/// `220 <hostname> <banner>`, e.g. `220 mx.example.org ESMTP Postern`
/// (Postfix `smtpd_banner = $myhostname ESMTP $mail_name`).
pub fn greeting(hostname: &str, banner: &str) -> Reply {
    Reply::new(220, None, format!("{hostname} {banner}"))
}

/// `221 2.0.0 Bye` (QUIT).
pub fn bye() -> Reply {
    reply(221, 2, 0, 0, "Bye")
}

/// `250 <hostname>` (HELO).
pub fn helo(hostname: &str) -> Reply {
    Reply::new(250, None, hostname)
}

/// `250 2.0.0 Ok` (RSET, NOOP).
pub fn ok() -> Reply {
    reply(250, 2, 0, 0, "Ok")
}

/// `250 2.1.0 Ok` (MAIL accepted).
pub fn sender_ok() -> Reply {
    reply(250, 2, 1, 0, "Ok")
}

/// `250 2.1.5 Ok` (RCPT accepted).
pub fn recipient_ok() -> Reply {
    reply(250, 2, 1, 5, "Ok")
}

/// `250 2.0.0 Ok: queued as <id>` (end of DATA, last BDAT chunk).
pub fn queued(queue_id: &str) -> Reply {
    reply(250, 2, 0, 0, format!("Ok: queued as {queue_id}"))
}

/// `250 2.0.0 Ok: <n> bytes` (a BDAT chunk other than the last).
pub fn chunk_ok(bytes: u64) -> Reply {
    reply(250, 2, 0, 0, format!("Ok: {bytes} bytes"))
}

/// `252 2.0.0 <what>` (VRFY without a definitive answer).
pub fn cannot_verify(what: &str) -> Reply {
    reply(252, 2, 0, 0, what)
}

/// `220 2.0.0 Ready to start TLS`.
pub fn starttls_ready() -> Reply {
    reply(220, 2, 0, 0, "Ready to start TLS")
}

/// `235 2.7.0 Authentication successful`.
pub fn auth_ok() -> Reply {
    reply(235, 2, 7, 0, "Authentication successful")
}

/// `354 End data with <CR><LF>.<CR><LF>`.
pub fn start_data() -> Reply {
    Reply::new(354, None, "End data with <CR><LF>.<CR><LF>")
}

// --- 4xx -----------------------------------------------------------------

/// `421 4.4.2 <hostname> Error: timeout exceeded`.
pub fn timeout(hostname: &str) -> Reply {
    reply(421, 4, 4, 2, format!("{hostname} Error: timeout exceeded"))
}

/// `421 4.7.0 <hostname> Error: too many errors`.
pub fn too_many_errors(hostname: &str) -> Reply {
    reply(421, 4, 7, 0, format!("{hostname} Error: too many errors"))
}

/// `421 4.3.0 <hostname> Server local data error`.
pub fn local_data_error(hostname: &str) -> Reply {
    reply(421, 4, 3, 0, format!("{hostname} Server local data error"))
}

/// `451 4.3.0 Error: queue file write error`.
pub fn queue_write_error() -> Reply {
    reply(451, 4, 3, 0, "Error: queue file write error")
}

/// `451 4.3.0 <what>: Temporary lookup failure`.
pub fn temporary_lookup_failure(what: &str) -> Reply {
    reply(451, 4, 3, 0, format!("{what}: Temporary lookup failure"))
}

/// `452 4.5.3 Error: too many recipients`.
pub fn too_many_recipients() -> Reply {
    reply(452, 4, 5, 3, "Error: too many recipients")
}

/// `452 4.3.1 Insufficient system storage`.
pub fn insufficient_storage() -> Reply {
    reply(452, 4, 3, 1, "Insufficient system storage")
}

/// `454 4.7.0 TLS not available due to local problem`.
pub fn tls_not_available() -> Reply {
    reply(454, 4, 7, 0, "TLS not available due to local problem")
}

// --- 5xx: syntax -----------------------------------------------------------

/// `500 5.5.2 Error: bad syntax` (empty line, NUL, control characters).
pub fn bad_syntax() -> Reply {
    reply(500, 5, 5, 2, "Error: bad syntax")
}

/// `500 5.5.2 Error: bad UTF-8 syntax`.
pub fn bad_utf8() -> Reply {
    reply(500, 5, 5, 2, "Error: bad UTF-8 syntax")
}

/// `500 5.5.2 Error: line too long` (a command line over the limit).
pub fn line_too_long() -> Reply {
    reply(500, 5, 5, 2, "Error: line too long")
}

/// `502 5.5.2 Error: command not recognized`.
pub fn unrecognized() -> Reply {
    reply(502, 5, 5, 2, "Error: command not recognized")
}

/// `502 5.5.1 Error: command not implemented` (e.g. STARTTLS when TLS is
/// off, BDAT without CHUNKING).
pub fn not_implemented() -> Reply {
    reply(502, 5, 5, 1, "Error: command not implemented")
}

/// `502 5.5.1 VRFY command is disabled`.
pub fn vrfy_disabled() -> Reply {
    reply(502, 5, 5, 1, "VRFY command is disabled")
}

/// `550 5.5.2 Error: bare <LF> received`
/// (`smtpd_forbid_bare_newline = reject`).
pub fn bare_lf() -> Reply {
    reply(550, 5, 5, 2, "Error: bare <LF> received")
}

/// `221 2.7.0 Error: I can break rules, too. Goodbye.` (a header or an
/// HTTP request where a command was expected; Postfix hangs up).
pub fn non_smtp_command() -> Reply {
    reply(221, 2, 7, 0, "Error: I can break rules, too. Goodbye.")
}

/// `555 5.5.4 Unsupported option: <param>`.
pub fn unsupported_option(param: &str) -> Reply {
    reply(555, 5, 5, 4, format!("Unsupported option: {param}"))
}

// --- 5xx: sequence (RFC 5321 §4.1.4) ----------------------------------------

/// `503 5.5.1 Error: send HELO/EHLO first`.
pub fn need_helo() -> Reply {
    reply(503, 5, 5, 1, "Error: send HELO/EHLO first")
}

/// `503 5.5.1 Error: send LHLO first` (LMTP, RFC 2033).
pub fn need_lhlo() -> Reply {
    reply(503, 5, 5, 1, "Error: send LHLO first")
}

/// `503 5.5.1 Error: nested MAIL command`.
pub fn nested_mail() -> Reply {
    reply(503, 5, 5, 1, "Error: nested MAIL command")
}

/// `503 5.5.1 Error: need MAIL command`.
pub fn need_mail() -> Reply {
    reply(503, 5, 5, 1, "Error: need MAIL command")
}

/// `503 5.5.1 Error: need RCPT command`.
pub fn need_rcpt() -> Reply {
    reply(503, 5, 5, 1, "Error: need RCPT command")
}

/// `554 5.5.1 Error: no valid recipients` (DATA/BDAT after every RCPT was
/// rejected; not a protocol error with PIPELINING).
pub fn no_valid_recipients() -> Reply {
    reply(554, 5, 5, 1, "Error: no valid recipients")
}

/// `503 5.5.1 Error: MAIL transaction in progress`.
pub fn transaction_in_progress() -> Reply {
    reply(503, 5, 5, 1, "Error: MAIL transaction in progress")
}

/// `503 5.5.1 Error: MAIL after BDAT`.
pub fn mail_after_bdat() -> Reply {
    reply(503, 5, 5, 1, "Error: MAIL after BDAT")
}

/// `503 5.5.1 Error: RCPT after BDAT`.
pub fn rcpt_after_bdat() -> Reply {
    reply(503, 5, 5, 1, "Error: RCPT after BDAT")
}

/// `503 5.5.1 Error: DATA after BDAT`.
pub fn data_after_bdat() -> Reply {
    reply(503, 5, 5, 1, "Error: DATA after BDAT")
}

/// `554 5.5.1 Error: TLS already active`.
pub fn tls_already_active() -> Reply {
    reply(554, 5, 5, 1, "Error: TLS already active")
}

/// `503 5.5.1 Error: already authenticated`.
pub fn already_authenticated() -> Reply {
    reply(503, 5, 5, 1, "Error: already authenticated")
}

/// `503 5.5.1 Error: authentication not enabled`.
pub fn auth_not_enabled() -> Reply {
    reply(503, 5, 5, 1, "Error: authentication not enabled")
}

// --- 5xx: policy ------------------------------------------------------------

/// `504 5.5.4 Encryption required for requested authentication mechanism`.
pub fn auth_needs_encryption() -> Reply {
    reply(
        504,
        5,
        5,
        4,
        "Encryption required for requested authentication mechanism",
    )
}

/// `504 5.5.2 <address>: Recipient address rejected: need fully-qualified address`.
pub fn recipient_not_fqdn(address: &str) -> Reply {
    reply(
        504,
        5,
        5,
        2,
        format!("<{address}>: Recipient address rejected: need fully-qualified address"),
    )
}

/// `530 5.7.0 Must issue a STARTTLS command first`.
pub fn starttls_first() -> Reply {
    reply(530, 5, 7, 0, "Must issue a STARTTLS command first")
}

/// `535 5.7.8 Error: authentication failed: <detail>`.
pub fn auth_failed(detail: &str) -> Reply {
    reply(
        535,
        5,
        7,
        8,
        format!("Error: authentication failed: {detail}"),
    )
}

/// `550 5.1.1 <address>: Recipient address rejected: User unknown in <table>`,
/// e.g. with `table = "local recipient table"`.
pub fn user_unknown(address: &str, table: &str) -> Reply {
    reply(
        550,
        5,
        1,
        1,
        format!("<{address}>: Recipient address rejected: User unknown in {table}"),
    )
}

/// `552 5.3.4 Message size exceeds fixed limit`.
pub fn message_too_big() -> Reply {
    reply(552, 5, 3, 4, "Message size exceeds fixed limit")
}

/// `552 5.3.4 Chunk exceeds message size limit` (BDAT).
pub fn chunk_too_big() -> Reply {
    reply(552, 5, 3, 4, "Chunk exceeds message size limit")
}

/// `553 5.6.7 Must declare SMTPUTF8 to send unicode address`.
pub fn smtputf8_required() -> Reply {
    reply(
        553,
        5,
        6,
        7,
        "Must declare SMTPUTF8 to send unicode address",
    )
}

/// `554 5.7.1 <address>: Relay access denied`.
pub fn relay_denied(address: &str) -> Reply {
    reply(554, 5, 7, 1, format!("<{address}>: Relay access denied"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_match_postfix() {
        let cases: [(Reply, &str); 12] = [
            (bye(), "221 2.0.0 Bye\r\n"),
            (ok(), "250 2.0.0 Ok\r\n"),
            (sender_ok(), "250 2.1.0 Ok\r\n"),
            (recipient_ok(), "250 2.1.5 Ok\r\n"),
            (start_data(), "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (
                too_many_recipients(),
                "452 4.5.3 Error: too many recipients\r\n",
            ),
            (
                unrecognized(),
                "502 5.5.2 Error: command not recognized\r\n",
            ),
            (need_helo(), "503 5.5.1 Error: send HELO/EHLO first\r\n"),
            (
                message_too_big(),
                "552 5.3.4 Message size exceeds fixed limit\r\n",
            ),
            (
                user_unknown("x@example.com", "local recipient table"),
                "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in local recipient table\r\n",
            ),
            (
                relay_denied("x@example.net"),
                "554 5.7.1 <x@example.net>: Relay access denied\r\n",
            ),
            (
                greeting("mx.example.org", "ESMTP Postern"),
                "220 mx.example.org ESMTP Postern\r\n",
            ),
        ];
        for (reply, wire) in cases {
            assert_eq!(String::from_utf8(reply.to_bytes()).unwrap(), wire);
        }
    }
}
