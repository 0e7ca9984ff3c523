//! Unix helpers with no mail vocabulary, like Postfix's `src/util`.
//!
//! - [`msg`]: logging to syslog or a file in Postfix's line shape;
//! - [`privs`]: looking up users and dropping privileges (with chroot);
//! - [`spawn`]: placing inherited descriptors at fixed numbers in a child;
//! - [`fdpass`]: passing descriptors and taking over inherited ones;
//! - [`lock`]: exclusive pid-file locks;
//! - [`sysexits`]: the exit statuses of the command-line tools.
//!
//! Every `unsafe` block of Postern lives in [`spawn`] or [`fdpass`] and carries a
//! `SAFETY:` note.
#![deny(missing_docs)]

pub mod cache;
pub mod fdpass;
pub mod fs;
pub mod lock;
pub mod msg;
pub mod privs;
pub mod spawn;
pub mod sysexits;
pub mod time;
