//! trivial-rewrite: rewrites addresses to canonical form and resolves them
//! to a transport, next hop and recipient (Postfix `trivial-rewrite(8)`).
//!
//! SYNOPSIS: started by master on the unix socket `private/rewrite`.
//!
//! DESCRIPTION: per connection the client may send any number of
//! requests (`ipc::rewrite`): `rewrite` (`rewrite.rs`: canonical form in
//! the `local` or `remote` context) and `resolve` (`resolve.rs`:
//! delivery class, transport and next hop; `transport.rs`:
//! `transport_maps`). The answers depend only on the configuration and
//! the tables, so a request can be repeated safely.
//!
//! Postfix runs trivial-rewrite as a multi-server; here it is a single
//! server (one client connection per process, master starts more up to
//! the service's process limit). So that idle clients do not tie up
//! processes, a connection without a request for `ipc_idle` is closed;
//! clients reconnect on demand.
//!
//! SECURITY: not security sensitive; it runs unprivileged and may run
//! chrooted (tables are opened before privileges are dropped; a table
//! file that changes later is reread by the name it had outside the
//! jail, so keep table files inside the spool when chrooted).
//!
//! DIAGNOSTICS: a table that cannot be opened at start is fatal (master
//! restarts the process with backoff). A failed lookup is logged and
//! answered with `FAIL` (the client defers the address). Protocol errors
//! end the connection with a warning.
//!
//! CONFIGURATION PARAMETERS: `myorigin`, `mydomain`, `myhostname`,
//! `append_dot_mydomain`, `swap_bangpath`, `allow_percent_hack`,
//! `mydestination`, `inet_interfaces`, `virtual_alias_domains`,
//! `virtual_mailbox_domains`, `relay_domains`,
//! `parent_domain_matches_subdomains`, `local_transport`,
//! `virtual_transport`, `relay_transport`, `default_transport`,
//! `relayhost`, `transport_maps`, `recipient_delimiter`, `ipc_timeout`,
//! `ipc_idle`.

mod addr;
mod resolve;
mod rewrite;
mod transport;

use std::io;
use std::time::Duration;

use postern_ipc::rewrite::{Request, Server};
use postern_server::{Conn, Context};
use postern_util::{debug, warn};

use resolve::Tables;

fn main() {
    postern_server::single::run("trivial-rewrite", |ctx| {
        let tables = Tables::open(&ctx.config).map_err(|e| e.to_string())?;
        Ok(move |conn: Conn, ctx: &Context| serve(conn, ctx, &tables))
    })
}

/// Answers one client's requests until it closes, goes idle, or errs.
fn serve(conn: Conn, ctx: &Context, tables: &Tables) {
    let stream = match conn {
        Conn::Unix(s) => s,
        Conn::Tcp(_) => {
            warn!("unexpected TCP connection from {}", conn.peer());
            return;
        }
    };
    let timeout = ctx.config.time("ipc_timeout");
    let idle = ctx.config.time("ipc_idle");
    // The read timeout is a socket option: setting it through a second
    // handle changes it for the connection (writes keep ipc_timeout).
    let handle = stream.try_clone();
    let conn = match postern_ipc::Conn::new(stream, timeout) {
        Ok(c) => c,
        Err(e) => {
            warn!("rewrite connection: {e}");
            return;
        }
    };
    if let Ok(h) = &handle {
        let _ = h.set_read_timeout(Some(idle.max(Duration::from_millis(1))));
    }
    let mut server = match Server::accept(conn) {
        Ok(s) => s,
        Err(e) => {
            warn!("rewrite connection: {e}");
            return;
        }
    };
    loop {
        let request = match server.next_request() {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(postern_ipc::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                debug!("closing idle rewrite connection");
                return;
            }
            Err(e) => {
                warn!("rewrite connection: {e}");
                return;
            }
        };
        let sent = match request {
            Request::Rewrite { rule, address } => {
                let result = rewrite::rewrite(&ctx.config, rule, &address);
                debug!("rewrite {}: <{address}> -> <{result}>", rule.as_str());
                server.reply_rewrite(&result)
            }
            Request::Resolve { address, .. } => {
                let r = resolve::resolve(&ctx.config, tables, &address);
                debug!(
                    "resolve <{address}> -> flags={:#x} transport={} nexthop={} recipient=<{}>",
                    r.flags, r.transport, r.nexthop, r.recipient
                );
                server.reply_resolve(&r)
            }
        };
        if let Err(e) = sent {
            warn!("rewrite connection: {e}");
            return;
        }
    }
}
