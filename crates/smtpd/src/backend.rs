//! What the session needs from the rest of the mail system, as traits, and
//! the real implementations: trivial-rewrite for addresses
//! (`ipc::rewrite::Client`, Postfix `smtpd_resolve.c`), cleanup for the
//! queue file (`ipc::cleanup::Client`, Postfix `mail_stream.c` client
//! side), lookup tables (`postern_maps`), the clock and `sleep`.
//!
//! Keeping these behind traits lets the session be tested byte for byte
//! without sockets or daemons (Stalwart's `TestSession` style).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use postern_config::Config;
use postern_ipc::cleanup::{self, Outcome, Recipient};
use postern_ipc::rewrite::{self, Resolved, Rule};
use postern_maps::{Maps, Syntax};
use postern_util::debug;

use crate::check::{AddressTable, Tables};

/// Address services, the queue, time.
pub(crate) trait Backend {
    /// A connection to cleanup for one message.
    type Queue: QueueSink;

    /// Canonicalizes an address in the local context (Postfix smtpd
    /// resolves `rewrite_clnt(local, addr)` first).
    fn rewrite_local(&mut self, address: &str) -> Result<String, String>;
    /// Resolves a canonical address to its class and transport.
    fn resolve(&mut self, sender: &str, address: &str) -> Result<Resolved, String>;
    /// Connects to cleanup; the new queue file's ID comes with its
    /// greeting, read later ([`QueueSink::greeting`]), so that cleanup
    /// creates the file while the session goes on.
    fn open_queue(&mut self) -> Result<Self::Queue, String>;
    /// Whether a cleanup connection is kept from the last message, for
    /// the next (see [`cleanup::flags::KEEP`]).
    fn holds_queue(&self) -> bool {
        false
    }
    /// Closes the kept cleanup connection, if any: the client went idle
    /// or the session ends, and cleanup goes back to its other clients.
    fn release_queue(&mut self) {}
    /// Sleeps (error-rate limiting).
    fn pause(&mut self, duration: Duration);
    /// Now, as an RFC 5322 date for `Received:`.
    fn date(&mut self) -> String;
}

/// One message on its way to cleanup (`ipc::cleanup::Client`).
pub(crate) trait QueueSink {
    /// Reads cleanup's greeting with the queue ID, unless it was read
    /// ([`Backend::open_queue`] does not wait for it).
    fn greeting(&mut self) -> Result<(), String>;
    /// The queue ID cleanup assigned (after [`QueueSink::greeting`]).
    fn queue_id(&self) -> &str;
    /// The envelope sender, empty for `<>`.
    fn sender(&mut self, address: &str) -> Result<(), String>;
    /// A named envelope attribute.
    fn attr(&mut self, name: &str, value: &str) -> Result<(), String>;
    /// One recipient.
    fn recipient(&mut self, rcpt: &Recipient<'_>) -> Result<(), String>;
    /// Ends the envelope.
    fn begin_content(&mut self) -> Result<(), String>;
    /// Message content, any split.
    fn write_content(&mut self, data: &[u8]) -> Result<(), String>;
    /// Ends the content.
    fn end_content(&mut self) -> Result<(), String>;
    /// Ends the message and waits for cleanup's verdict. Dropping a sink
    /// without calling this abandons the message (cleanup removes it).
    fn finish(self) -> Result<Outcome, String>;
}

/// The connection cleanup keeps for this process's next message.
type Spare = Rc<RefCell<Option<cleanup::Idle>>>;

/// One message to cleanup; at its end a kept connection goes back to
/// the backend's spare.
pub(crate) struct Sink {
    client: cleanup::Client,
    spare: Spare,
}

impl QueueSink for Sink {
    fn greeting(&mut self) -> Result<(), String> {
        self.client
            .greeting()
            .map(|_| ())
            .map_err(|e| format!("read greeting from service cleanup: {e}"))
    }
    fn queue_id(&self) -> &str {
        self.client.queue_id()
    }
    fn sender(&mut self, address: &str) -> Result<(), String> {
        self.client.sender(address).map_err(|e| e.to_string())
    }
    fn attr(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.client.attr(name, value).map_err(|e| e.to_string())
    }
    fn recipient(&mut self, rcpt: &Recipient<'_>) -> Result<(), String> {
        self.client.recipient(rcpt).map_err(|e| e.to_string())
    }
    fn begin_content(&mut self) -> Result<(), String> {
        self.client.begin_content().map_err(|e| e.to_string())
    }
    fn write_content(&mut self, data: &[u8]) -> Result<(), String> {
        self.client.write_content(data).map_err(|e| e.to_string())
    }
    fn end_content(&mut self) -> Result<(), String> {
        self.client.end_content().map_err(|e| e.to_string())
    }
    fn finish(self) -> Result<Outcome, String> {
        let (outcome, idle) = self.client.finish_keep().map_err(|e| e.to_string())?;
        *self.spare.borrow_mut() = idle;
        Ok(outcome)
    }
}

/// The real backend, kept for the life of the process (the rewrite
/// connection is reused across SMTP sessions).
pub(crate) struct Shared {
    queue_dir: PathBuf,
    ipc_timeout: Duration,
    rewrite: rewrite::Client,
    spare: Spare,
}

impl Shared {
    /// Changes into `queue_directory` (Postfix daemons run there, so the
    /// same relative socket paths work with and without chroot) and
    /// prepares the trivial-rewrite client.
    pub(crate) fn new(config: &Config) -> Result<Shared, String> {
        let dir = config.path("queue_directory");
        std::env::set_current_dir(&dir).map_err(|e| format!("chdir {}: {e}", dir.display()))?;
        let queue_dir = PathBuf::from(".");
        let ipc_timeout = config.time("ipc_timeout");
        Ok(Shared {
            rewrite: rewrite::Client::new(&queue_dir, ipc_timeout),
            queue_dir,
            ipc_timeout,
            spare: Spare::default(),
        })
    }
}

impl Backend for Shared {
    type Queue = Sink;

    fn rewrite_local(&mut self, address: &str) -> Result<String, String> {
        self.rewrite
            .rewrite(Rule::Local, address)
            .map_err(|e| format!("problem talking to service rewrite: {e}"))
    }

    fn resolve(&mut self, sender: &str, address: &str) -> Result<Resolved, String> {
        self.rewrite
            .resolve(sender, address)
            .map_err(|e| format!("problem talking to service rewrite: {e}"))
    }

    fn open_queue(&mut self) -> Result<Sink, String> {
        // A kept connection whose cleanup went away fails here, at the
        // request's write, or at the greeting (451 then, as for a
        // cleanup that dies in the middle of any message).
        let kept = self.spare.borrow_mut().take().and_then(|idle| {
            idle.next(cleanup::flags::KEEP)
                .map_err(|e| debug!("kept cleanup connection: {e}"))
                .ok()
        });
        let client = match kept {
            Some(c) => c,
            None => cleanup::Client::connect_lazy(
                &self.queue_dir,
                self.ipc_timeout,
                cleanup::flags::KEEP,
            )
            .map_err(|e| format!("connect to service cleanup: {e}"))?,
        };
        Ok(Sink {
            client,
            spare: Rc::clone(&self.spare),
        })
    }

    fn holds_queue(&self) -> bool {
        self.spare.borrow().is_some()
    }

    fn release_queue(&mut self) {
        drop(self.spare.borrow_mut().take());
    }

    fn pause(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn date(&mut self) -> String {
        crate::received::date(&postern_util::time::now_local())
    }
}

/// The tables of one parameter, for membership tests.
struct MapsTable {
    maps: Vec<Maps>,
    delimiter: String,
}

impl AddressTable for MapsTable {
    fn contains(&self, address: &str, local_domain: bool) -> Result<bool, String> {
        for maps in &self.maps {
            let found = maps
                .lookup_address(address, &self.delimiter, local_domain)
                .map_err(|e| e.to_string())?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Opens the recipient tables. A table that `alias_maps` lists is read in
/// aliases(5) syntax wherever it appears (`local_recipient_maps` includes
/// `$alias_maps` by default); every other table in postmap(1) syntax.
pub(crate) fn open_tables(config: &Config, delimiter: &str) -> Result<Tables, String> {
    let alias_specs = config.list("alias_maps");
    let open = |param: &str| -> Result<Option<Box<dyn AddressTable>>, String> {
        let specs = config.list(param);
        if specs.is_empty() {
            return Ok(None);
        }
        let (aliases, plain): (Vec<String>, Vec<String>) =
            specs.into_iter().partition(|s| alias_specs.contains(s));
        let mut maps = Vec::new();
        for (specs, syntax) in [(plain, Syntax::Postmap), (aliases, Syntax::Aliases)] {
            if !specs.is_empty() {
                maps.push(Maps::open(&specs, syntax).map_err(|e| format!("{param}: {e}"))?);
            }
        }
        Ok(Some(Box::new(MapsTable {
            maps,
            delimiter: delimiter.to_string(),
        })))
    };
    let mut canonical = Vec::new();
    for param in ["recipient_canonical_maps", "canonical_maps"] {
        canonical.extend(open(param)?);
    }
    Ok(Tables {
        local_recipient: open("local_recipient_maps")?,
        virtual_mailbox: open("virtual_mailbox_maps")?,
        virtual_alias: open("virtual_alias_maps")?,
        relay_recipient: open("relay_recipient_maps")?,
        canonical,
    })
}
