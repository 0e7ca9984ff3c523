//! Postern's configuration: the parameter table, `main.toml`, `master.toml`
//! and the `-c`/`-o` options every program takes.
//!
//! Postfix counterparts: `global/mail_params.*` and `mail_conf*.c` (the
//! parameter table and `main.cf`), `master/master_ent.c` (`master.cf`),
//! `util/mac_expand.c` (`$name` expansion) and `postconf/extract.awk` (which
//! keeps `postconf -d` in step with the code; here the table *is* the code).
//!
//! Every default lives in [`params::PARAMS`]. A program loads its
//! configuration once:
//!
//! ```no_run
//! use postern_config::{Config, take_common};
//!
//! let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
//! let common = take_common(&mut argv)?;
//! let config = Config::load(&common.config_dir, &common.overrides)?;
//! let limit = config.size("message_size_limit");
//! # let _ = limit;
//! # Ok::<(), postern_config::Error>(())
//! ```
//!
//! All values are validated by [`Config::load`], so the typed accessors
//! never fail on a loaded `Config`; they panic only on names that are not in
//! the table, which is a programming error.
#![deny(missing_docs)]

pub mod args;
pub mod error;
pub mod expand;
pub mod main_file;
pub mod master_file;
pub mod params;
pub mod value;

pub use args::{CommonArgs, config_dir, option_value, take_common};
pub use error::{Error, Origin};
pub use main_file::{Config, DEFAULT_CONFIG_DIR};
pub use master_file::{Listen, MasterTable, Service, ServiceKind};
pub use params::{Kind, PARAMS, Param};
