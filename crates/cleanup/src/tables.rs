//! What cleanup looks things up in: trivial-rewrite for the canonical form
//! of an address, and the lookup tables of `main.toml` (Postfix
//! `cleanup_init.c`, which opens the maps, and `global/rewrite_clnt.c`).
//!
//! The state machine sees these only through the small traits below, so
//! that its tests can drive it with tables written in the test itself;
//! [`Tables::open`] and [`IpcRewriter`] are the real thing.

use std::path::Path;
use std::time::Duration;

use postern_config::Config;
use postern_ipc::rewrite::{Client, Rule};
use postern_maps::{Maps, Syntax};

/// Canonicalizes an address through trivial-rewrite (Postfix
/// `rewrite_clnt_internal`).
pub(crate) trait Rewriter {
    /// The canonical form of `addr` in the context `rule`; `Err` with the
    /// text of a warning when the service could not be asked.
    fn rewrite(&mut self, rule: Rule, addr: &str) -> Result<String, String>;
}

/// An address-keyed table (Postfix `mail_addr_map`): `canonical_maps`,
/// `virtual_alias_maps`, ...
pub(crate) trait AddrMap {
    /// The parameter the table comes from, for warnings.
    fn title(&self) -> &str;
    /// The raw lookup result for `addr`, tried as `user+ext@domain`,
    /// `user@domain`, `user` (local domains only) and `@domain`; `Err`
    /// with the text of a warning when a table failed.
    fn lookup_address(&self, addr: &str) -> Result<Option<String>, String>;
}

/// A content table: `header_checks`, `body_checks`.
pub(crate) trait CheckTable {
    /// The parameter the table comes from, for warnings.
    fn title(&self) -> &str;
    /// The raw result for a header or body line.
    fn lookup(&self, text: &str) -> Result<Option<String>, String>;
}

/// Every table cleanup consults; `None` where the parameter is empty.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) canonical: Option<Box<dyn AddrMap>>,
    pub(crate) sender_canonical: Option<Box<dyn AddrMap>>,
    pub(crate) recipient_canonical: Option<Box<dyn AddrMap>>,
    pub(crate) virtual_alias: Option<Box<dyn AddrMap>>,
    pub(crate) header_checks: Option<Box<dyn CheckTable>>,
    pub(crate) body_checks: Option<Box<dyn CheckTable>>,
}

impl Tables {
    /// Opens every table named in `config` (before privileges are dropped,
    /// like Postfix `cleanup_pre_jail`).
    pub(crate) fn open(config: &Config) -> Result<Tables, String> {
        let delimiter = config.str("recipient_delimiter");
        let local_domains = local_domains(config);
        let addr = |name: &'static str| -> Result<Option<Box<dyn AddrMap>>, String> {
            let specs = config.list(name);
            if specs.is_empty() {
                return Ok(None);
            }
            let maps = Maps::open(&specs, Syntax::Postmap).map_err(|e| format!("{name}: {e}"))?;
            Ok(Some(Box::new(AddrTable {
                title: name,
                maps,
                delimiter: delimiter.clone(),
                local_domains: local_domains.clone(),
            })))
        };
        let check = |name: &'static str| -> Result<Option<Box<dyn CheckTable>>, String> {
            let specs = config.list(name);
            if specs.is_empty() {
                return Ok(None);
            }
            let maps = Maps::open(&specs, Syntax::Postmap).map_err(|e| format!("{name}: {e}"))?;
            Ok(Some(Box::new(ContentTable { title: name, maps })))
        };
        Ok(Tables {
            canonical: addr("canonical_maps")?,
            sender_canonical: addr("sender_canonical_maps")?,
            recipient_canonical: addr("recipient_canonical_maps")?,
            virtual_alias: addr("virtual_alias_maps")?,
            header_checks: check("header_checks")?,
            body_checks: check("body_checks")?,
        })
    }
}

/// The domains for which a bare `user` key is tried (Postfix
/// `mail_addr_find`: `$myorigin` and `$mydestination`).
fn local_domains(config: &Config) -> Vec<String> {
    let mut domains = vec![config.str("myorigin").to_ascii_lowercase()];
    for d in config.list("mydestination") {
        let d = d.to_ascii_lowercase();
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    domains
}

struct AddrTable {
    title: &'static str,
    maps: Maps,
    delimiter: String,
    local_domains: Vec<String>,
}

impl AddrMap for AddrTable {
    fn title(&self) -> &str {
        self.title
    }

    fn lookup_address(&self, addr: &str) -> Result<Option<String>, String> {
        let local = addr.rsplit_once('@').is_some_and(|(_, domain)| {
            let domain = domain.to_ascii_lowercase();
            self.local_domains.contains(&domain)
        });
        self.maps
            .lookup_address(addr, &self.delimiter, local)
            .map_err(|e| e.to_string())
    }
}

struct ContentTable {
    title: &'static str,
    maps: Maps,
}

impl CheckTable for ContentTable {
    fn title(&self) -> &str {
        self.title
    }

    fn lookup(&self, text: &str) -> Result<Option<String>, String> {
        self.maps.lookup(text).map_err(|e| e.to_string())
    }
}

/// [`Rewriter`] over the `rewrite` service; one connection per process,
/// kept across messages.
pub(crate) struct IpcRewriter {
    client: Client,
}

impl IpcRewriter {
    pub(crate) fn new(queue_dir: &Path, timeout: Duration) -> IpcRewriter {
        IpcRewriter {
            client: Client::new(queue_dir, timeout),
        }
    }
}

impl Rewriter for IpcRewriter {
    fn rewrite(&mut self, rule: Rule, addr: &str) -> Result<String, String> {
        self.client
            .rewrite(rule, addr)
            .map_err(|e| format!("problem talking to service rewrite: {e}"))
    }
}
