//! anvil - connection counting (Postfix `anvil(8)`).
//!
//! A multi-client daemon on `private/anvil` (master.toml: `type = "unix"`,
//! `maxproc = 1`). smtpd registers each session's client address for the
//! whole session; anvil answers with how many sessions that client has
//! open now, and smtpd enforces `smtpd_client_connection_count_limit`.
//! A registration ends when its connection closes, also when the
//! registering process crashed, so counts cannot leak.
//!
//! BUGS: counts start from zero when anvil restarts (after a reload, for
//! example); sessions open at that moment are not counted until they end.
//! Postfix's anvil has the same property. Connection rates are not
//! tracked yet.
//!
//! SECURITY: not security sensitive: it holds counters only, and talks to
//! local daemons over a private socket.

use std::collections::HashMap;

use postern_server::Context;
use postern_server::multi::{self, ClientId, MultiService};
use postern_util::info;

/// Counts per (service, client) and who registered what.
#[derive(Default)]
struct Anvil {
    counts: HashMap<(String, String), u64>,
    held: HashMap<ClientId, Vec<(String, String)>>,
    /// Largest count seen per (service, client), logged like Postfix's
    /// "statistics: max connection count".
    peak: u64,
}

impl Anvil {
    fn connect(&mut self, client: ClientId, key: (String, String)) -> u64 {
        let n = self.counts.entry(key.clone()).or_insert(0);
        *n += 1;
        let count = *n;
        self.held.entry(client).or_default().push(key);
        if count > self.peak {
            self.peak = count;
        }
        count
    }

    fn release(&mut self, client: ClientId) {
        for key in self.held.remove(&client).unwrap_or_default() {
            if let Some(n) = self.counts.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.counts.remove(&key);
                }
            }
        }
    }
}

impl MultiService for Anvil {
    fn greeting(&mut self, _ctx: &Context) -> Vec<u8> {
        postern_ipc::anvil::greeting()
    }

    fn input(
        &mut self,
        _ctx: &Context,
        client: ClientId,
        input: &mut Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let requests = postern_ipc::anvil::take_requests(input).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (service, ident) in requests {
            let count = self.connect(client, (service, ident));
            out.extend(postern_ipc::anvil::reply(count));
        }
        Ok(out)
    }

    fn disconnect(&mut self, _ctx: &Context, client: ClientId) {
        self.release(client);
        if self.counts.is_empty() && self.peak > 1 {
            info!("statistics: max connection count {}", self.peak);
            self.peak = 0;
        }
    }
}

fn main() {
    multi::run("anvil", |_ctx| Ok(Anvil::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_client_and_releases_on_disconnect() {
        let mut a = Anvil::default();
        let key = |ip: &str| ("smtp".to_string(), ip.to_string());
        assert_eq!(a.connect(1, key("10.0.0.1")), 1);
        assert_eq!(a.connect(2, key("10.0.0.1")), 2);
        assert_eq!(a.connect(3, key("10.0.0.2")), 1);
        a.release(1);
        assert_eq!(a.connect(4, key("10.0.0.1")), 2);
        a.release(2);
        a.release(4);
        a.release(3);
        a.release(99);
        assert!(a.counts.is_empty() && a.held.is_empty());
    }
}
