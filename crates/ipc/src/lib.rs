//! Postern's internal services (Postfix `mail_proto.h`, `mail_connect.c`,
//! `cleanup_user.h`, `rewrite_clnt.c`, `resolve_clnt.c`, `mail_trigger.c`).
//!
//! Every internal protocol runs over a Unix stream socket in the spool
//! (`private/NAME` or `public/NAME`) and is a stream of `wire` records.
//! **The server speaks first** with an attribute list naming its protocol
//! and version (`protocol=cleanup`, `version=1`, plus greeting fields such
//! as the new `queue_id`); the client checks both before sending anything.
//! Adding an optional attribute does not change the version; removing one
//! or changing its meaning does.
//!
//! - [`service`]: service names and socket paths;
//! - [`conn`]: a record stream with timeouts and the handshake;
//! - [`cleanup`]: handing a message to cleanup (smtpd, pickup) and the
//!   server side cleanup uses;
//! - [`rewrite`]: address rewriting and resolving by trivial-rewrite;
//! - [`deliver`]: delivery requests from qmgr to the delivery agents;
//! - [`trigger`]: one-byte wakeups (qmgr, pickup);
//! - [`anvil`]: connection counting;
//! - [`showq`]: the queue listing (showq → postqueue);
//! - [`flush`]: flushing one message or one site (postqueue → flush).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod anvil;
pub mod cleanup;
pub mod conn;
pub mod deliver;
pub mod flush;
pub mod rewrite;
pub mod service;
pub mod showq;
pub mod trigger;

#[cfg(test)]
mod testutil;

pub use conn::{Conn, Error};
