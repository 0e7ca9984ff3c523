//! Daemon skeletons (Postfix `single_server.c`, `trigger_server.c`,
//! `master_proto.h`).
//!
//! A Postern daemon is a parameter table, one service function and a call
//! into a skeleton. The skeleton parses the arguments master passes, loads
//! the configuration, sets up logging, drops privileges (and chroots) before
//! the service function ever runs, accepts connections or triggers, reports
//! to master whether the process is busy, and retires the process after
//! `max_use` connections or `max_idle` idle time, or when master goes away.
//!
//! - [`proto`]: the fixed master↔child contract (descriptor numbers,
//!   status records);
//! - [`args`]: the command line master builds for a daemon;
//! - [`single`]: one connection at a time per process (smtpd, local, ...);
//! - [`trigger`]: one-byte wakeup requests (qmgr, pickup);
//! - [`multi`]: many long-lived clients per process (anvil);
//! - [`agent`]: the delivery agents' side of a delivery request;
//! - [`spool`]: who owns the spool;
//! - [`tool`]: the command-line tools' messages and logging.
#![deny(missing_docs)]

pub mod agent;
pub mod args;
pub mod multi;
pub mod proto;
pub mod single;
pub mod spool;
pub mod tool;
pub mod trigger;

mod conn;
mod context;
mod endpoint;

pub use conn::Conn;
pub use context::{Context, init_logging};
