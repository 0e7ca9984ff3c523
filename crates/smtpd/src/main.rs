//! smtpd - Postern SMTP server (Postfix smtpd(8))
//!
//! # Synopsis
//!
//! `smtpd` [generic daemon options], started by master(8) for an `inet`
//! service:
//!
//! ```toml
//! [smtp]
//! type = "inet"
//! listen = "0.0.0.0:25"
//! command = "smtpd"
//! ```
//!
//! # Description
//!
//! The SMTP server accepts network connections and speaks SMTP/ESMTP
//! (RFC 5321) to one client at a time; master(8) runs more processes, up to
//! the service's `maxproc`. Mail that is accepted goes to cleanup(8), which
//! writes the queue file; the `250 2.0.0 Ok: queued as ID` reply is sent
//! only after cleanup said the file is on stable storage.
//!
//! Supported: HELO, EHLO, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT, HELP,
//! VRFY (when `disable_vrfy_command = no`). EHLO announces PIPELINING,
//! SIZE, VRFY (when enabled), ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8
//! and CHUNKING. Every reply carries an RFC 3463 enhanced status code,
//! except the greeting and the HELO/EHLO replies (RFC 2034). Replies are
//! worded as Postfix words them.
//!
//! STARTTLS (RFC 3207) is announced with `smtpd_tls_security_level = may`
//! or `encrypt` and a certificate (see [`tls`]); `encrypt` refuses mail
//! commands before it with `530 5.7.0`. Plaintext pipelined behind
//! STARTTLS is thrown away (CVE-2011-0411). `smtpd_tls_wrappermode = yes`
//! (set with `-o` in master.toml) runs TLS from the first byte (port 465).
//!
//! With PIPELINING, the server reads what the client sent, answers every
//! complete command in order and writes the replies out when its input is
//! used up (Postfix flushes when the input buffer is empty).
//!
//! Before the greeting the client's address is looked up in the DNS
//! (`smtpd_peername_lookup`, see [`peer`]): PTR, then A or AAAA for that
//! name. The name is used in logs, `Received:` and the restrictions only
//! when it resolves back to the client's address; otherwise the client is
//! `unknown`. A DNS failure never ends or blocks a session beyond the
//! resolver's limit.
//!
//! RCPT TO runs the Postfix access restrictions (`smtpd_check.c`): the
//! client, HELO and sender restriction lists (as with the default
//! `smtpd_delay_reject = yes`), then `smtpd_relay_restrictions` and
//! `smtpd_recipient_restrictions`, then the "user unknown" check against
//! `local_recipient_maps`, `virtual_mailbox_maps`, `virtual_alias_maps`
//! and `relay_recipient_maps`
//! (see [`check`]). Recipients are rewritten and resolved through
//! trivial-rewrite(8).
//!
//! The cleanup connection is opened at the first accepted RCPT (Postfix
//! opens it at MAIL), so a transaction whose recipients were all refused
//! costs no queue file. Content is streamed to cleanup as it arrives,
//! behind a `Received:` header; whole messages are never held in memory.
//!
//! # Modules
//!
//! - [`session`]: the SMTP session as a sans-I/O state machine: bytes in,
//!   reply bytes out, effects through the [`backend::Backend`] trait;
//! - [`peer`]: the client and its host names;
//! - [`check`]: access restrictions and recipient validation;
//! - [`backend`]: the real trivial-rewrite, cleanup and lookup-table
//!   connections behind that trait;
//! - [`serve`]: the socket loop (timeouts, flushing, logging the
//!   connection);
//! - [`received`]: the `Received:` header;
//! - [`stats`]: per-command counters for the `disconnect from` line;
//! - [`settings`]: the parameters, read once per process;
//! - [`tls`]: the TLS parameters and the server certificate.
//!
//! # Security
//!
//! The SMTP server is moderately security-sensitive: it talks to clients
//! on the network. It runs without privileges (the master.toml row's
//! `unpriv`, optionally `chroot`). Nothing in a client's input can make it
//! panic or allocate without bound: command lines are capped at
//! `line_length_limit`, message content is streamed and capped at
//! `message_size_limit`, and the end of DATA is only `<CR><LF>.<CR><LF>`
//! (SMTP smuggling, CVE-2023-51764; see `postern-smtp-proto`).
//!
//! # Diagnostics
//!
//! Problems and transactions are logged in Postfix's shapes, which log
//! analysers such as pflogsumm parse:
//!
//! - `connect from mail.example.com[192.0.2.1]` (`unknown[192.0.2.1]`
//!   when the name is not known)
//! - `QUEUEID: client=mail.example.com[192.0.2.1]`
//! - `warning: hostname mail.example.com does not resolve to address
//!   192.0.2.1` (the PTR name is not forward-confirmed; with the
//!   resolver's reason when the lookup failed), `warning: numeric
//!   hostname: 192.0.2.9`
//! - `NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 450 4.7.25 Client
//!   host rejected: cannot find your hostname, [192.0.2.1]; ...`
//! - `NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <x@example.com>:
//!   Relay access denied; from=<a@example.org> to=<x@example.com> proto=ESMTP
//!   helo=<client.example>`
//! - `lost connection after DATA (1234 bytes) from unknown[192.0.2.1]`
//! - `timeout after RCPT from unknown[192.0.2.1]`
//! - `disconnect from unknown[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1
//!   commands=5`
//! - `Anonymous TLS connection established from unknown[192.0.2.1]:
//!   TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange
//!   X25519` (with `smtpd_tls_loglevel` >= 1)
//! - `improper command pipelining after STARTTLS from unknown[192.0.2.1]: RSET`
//! - `SSL_accept error from unknown[192.0.2.1]: ...`
//!
//! # Configuration parameters
//!
//! `myhostname`, `smtpd_banner`, `mail_name`, `message_size_limit`,
//! `line_length_limit`, `smtpd_recipient_limit`, `smtpd_timeout`,
//! `smtpd_soft_error_limit`, `smtpd_hard_error_limit`, `smtpd_junk_command_limit`,
//! `smtpd_error_sleep_time`, `disable_vrfy_command`, `smtpd_helo_required`,
//! `strict_rfc821_envelopes`, `smtpd_forbid_bare_newline`, `mynetworks`,
//! `smtpd_client_restrictions`, `smtpd_helo_restrictions`,
//! `smtpd_sender_restrictions`, `smtpd_relay_restrictions`,
//! `smtpd_recipient_restrictions`, `smtpd_data_restrictions`,
//! `local_recipient_maps`, `alias_maps`, `relay_recipient_maps`,
//! `virtual_mailbox_maps`, `virtual_alias_maps`, `canonical_maps`,
//! `recipient_canonical_maps`, `recipient_delimiter`, `ipc_timeout`,
//! `queue_directory`, `smtpd_peername_lookup`, `smtpd_dns_resolver_address`
//! (a Postern extension), `unknown_client_reject_code`,
//! `smtpd_tls_security_level`, `smtpd_tls_cert_file`,
//! `smtpd_tls_key_file`, `smtpd_tls_chain_files`, `smtpd_tls_protocols`,
//! `smtpd_tls_mandatory_protocols`, `smtpd_tls_received_header`,
//! `smtpd_tls_loglevel`, `smtpd_tls_wrappermode`, `smtpd_starttls_timeout`.
//!
//! # Bugs and deviations
//!
//! - Client names come from the DNS only: Postfix asks the system
//!   resolver, so `/etc/hosts` names (`localhost` for 127.0.0.1) count
//!   there and not here. Each DNS query has a 5-second limit.
//! - `smtpd_delay_reject = no` is not implemented: client, HELO and sender
//!   restrictions are always evaluated at RCPT TO (a warning is logged).
//! - No AUTH, XCLIENT, XFORWARD or ETRN yet.
//! - TLS: TLSv1.2 and TLSv1.3 only (rustls), no client certificates, one
//!   key/certificate pair.
//! - An overlong command line is rejected (`500 5.5.2 Error: line too
//!   long`) instead of being truncated and executed (see smtp-proto).
//!
//! # See also
//!
//! cleanup(8), trivial-rewrite(8), master(8); Postfix `smtpd.c`,
//! `smtpd_check.c`, `smtpd_chat.c`.

#![forbid(unsafe_code)]

mod backend;
mod check;
mod peer;
mod received;
mod serve;
mod session;
mod settings;
mod stats;
mod tls;

fn main() {
    postern_server::single::run("smtpd", |ctx| {
        let env = settings::Env::from_config(&ctx.config)?;
        let mut backend = backend::Shared::new(&ctx.config)?;
        Ok(move |conn, ctx: &postern_server::Context| {
            serve::serve(conn, &ctx.args.service, &env, &mut backend)
        })
    })
}
