//! End-to-end tests: real binaries started through master in a temp
//! spool, talked to over loopback. One module per area.

/// master: spool, service start and restart, reload, stop, locking,
/// configuration errors, wakeups, logging.
mod master;

/// Man pages render cleanly; every installed program has one.
mod man;

/// pflogsumm reads a Postern log: received, delivered, deferred, bounced,
/// rejected.
mod pflogsumm;

/// make install and make deb: layout, samples, the Debian package.
mod package;

/// cleanup: queue files from ipc::cleanup clients, rewriting, tables,
/// limits.
mod cleanup;

/// trivial-rewrite: rewrite and resolve requests, table reloads, idle
/// connections, lookup failures.
mod rewrite;

/// smtpd: SMTP sessions from raw sockets, smtplib, swaks and curl,
/// with cleanup and trivial-rewrite; queue files checked.
mod smtpd;

/// smtpd's client host names: PTR and forward confirmation against
/// dnsmasq, log lines, Received: headers, reject_unknown_*_hostname.
mod smtpd_rdns;

/// smtpd with TLS: STARTTLS from smtplib, swaks, curl and postern-tls,
/// the encrypt level, command injection after STARTTLS, wrapper mode.
mod smtpd_tls;

/// smtp(8) with TLS: STARTTLS to a Postern smtpd, may/encrypt/verify,
/// smtp_tls_policy_maps, DANE with an AD-setting DNS server, MTA-STS
/// enforce with a policy from Python's HTTPS server, TLS-RPT log lines.
mod smtp_tls;

/// MTA-STS policies fetched with postern-tls from Python's HTTPS server,
/// and cached.
mod mta_sts;

/// Local submission: sendmail, postdrop, pickup, mailq, newaliases,
/// sendmail -bs, postcat.
mod submit;

/// qmgr: delivery through a test agent, deferral and flush, bounces and
/// their reports, crash recovery, corrupt files.
mod qmgr;

/// anvil: connection counting for smtpd.
mod anvil;

/// virtual: delivery requests to Maildir and mbox, unknown users, lookup
/// failures (`virtual` is a keyword, hence the path attribute).
#[path = "virtual.rs"]
mod virtual_agent;

/// local: aliases, commands, files, :include:, forwarding, mailboxes.
mod local;

/// The configuration and control tools: postconf, postern, postmap,
/// postalias, newaliases, sendmail -bd.
mod ops;

/// Queue tools: showq, postqueue, mailq, flush, postsuper against a
/// running instance (and with master down, and as an ordinary user).
mod qtools;

/// smtp and lmtp clients: MX routing through dnsmasq, smtp-sink, a
/// second Postern, a per-recipient test peer; bounces and deferrals.
mod smtp;

/// lmtp(8) to Dovecot's LMTP server (TCP and Unix socket): Maildir
/// contents, bounces with Dovecot's text, deferral while Dovecot is down,
/// STARTTLS at lmtp_tls_security_level verify/encrypt/may.
mod lmtp_dovecot;
