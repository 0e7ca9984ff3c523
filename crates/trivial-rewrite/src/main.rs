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
//! Like Postfix, trivial-rewrite is a multi-server
//! (`postern_server::multi`): one process answers every client, and
//! clients (smtpd, cleanup, qmgr) keep their connection open.
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
//! `relayhost`, `transport_maps`, `recipient_delimiter`.

mod addr;
mod resolve;
mod rewrite;
mod transport;

use postern_ipc::rewrite::{Request, sans_io};
use postern_server::Context;
use postern_server::multi::{self, ClientId, MultiService};
use postern_util::debug;

use resolve::Tables;

/// One process answers every client: cleanup and smtpd processes keep
/// their connection for as long as they live.
struct Rewriter {
    tables: Tables,
}

impl MultiService for Rewriter {
    fn greeting(&mut self, _ctx: &Context) -> Vec<u8> {
        sans_io::greeting()
    }

    fn input(
        &mut self,
        ctx: &Context,
        _client: ClientId,
        input: &mut Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let requests =
            sans_io::take_requests(input).map_err(|e| format!("rewrite connection: {e}"))?;
        let mut out = Vec::new();
        for request in requests {
            match request {
                Request::Rewrite { rule, address } => {
                    let result = rewrite::rewrite(&ctx.config, rule, &address);
                    debug!("rewrite {}: <{address}> -> <{result}>", rule.as_str());
                    sans_io::reply_rewrite(&mut out, &result);
                }
                Request::Resolve { address, .. } => {
                    let r = resolve::resolve(&ctx.config, &self.tables, &address);
                    debug!(
                        "resolve <{address}> -> flags={:#x} transport={} nexthop={} recipient=<{}>",
                        r.flags, r.transport, r.nexthop, r.recipient
                    );
                    sans_io::reply_resolve(&mut out, &r);
                }
            }
        }
        Ok(out)
    }

    fn disconnect(&mut self, _ctx: &Context, _client: ClientId) {}
}

fn main() {
    multi::run("trivial-rewrite", |ctx| {
        let tables = Tables::open(&ctx.config).map_err(|e| e.to_string())?;
        Ok(Rewriter { tables })
    })
}
