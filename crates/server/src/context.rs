//! What every daemon sets up before serving: arguments, configuration,
//! logging, privileges.

use std::path::PathBuf;

use postern_config::Config;
use postern_util::msg::{self, Sink};
use postern_util::{fatal, privs};

use crate::args::{self, DaemonArgs};

/// A daemon's view of its world, passed to its service function.
#[derive(Debug)]
pub struct Context {
    /// The program name (`smtpd`), used in log idents.
    pub program: &'static str,
    /// The parsed command line.
    pub args: DaemonArgs,
    /// The configuration, with master's and the service's `-o` applied.
    pub config: Config,
}

/// Starts logging as `syslog_name/program` to `maillog_file` when set,
/// else to syslog with `syslog_facility`.
pub fn init_logging(program: &str, config: &Config) -> std::io::Result<()> {
    let file = config.str("maillog_file");
    let sink = if file.is_empty() {
        Sink::Syslog(config.str("syslog_facility"))
    } else {
        Sink::File(PathBuf::from(file))
    };
    msg::init(&config.str("syslog_name"), program, &sink)
}

impl Context {
    /// Parses argv and loads the configuration; a daemon that cannot do
    /// either logs why and exits (master throttles restarts).
    pub fn init(program: &'static str) -> Context {
        // Until the configuration names a sink, complain on stderr.
        let _ = msg::init("postern", program, &Sink::Stderr);
        let args = match args::parse(std::env::args_os().collect()) {
            Ok(a) => a,
            Err(e) => fatal!("{e}"),
        };
        let config = match Config::load(&args.config_dir, &args.overrides) {
            Ok(c) => c,
            Err(e) => fatal!("{e}"),
        };
        if let Err(e) = init_logging(program, &config) {
            fatal!("cannot start logging: {e}");
        }
        msg::set_verbose(args.verbose);
        Context {
            program,
            args,
            config,
        }
    }

    /// Drops privileges as the service's master.toml row asks: to
    /// `mail_owner` when unprivileged (unless running in development mode,
    /// or not as root), after a chroot into `queue_directory` when asked.
    pub fn drop_privileges(&self) {
        if !privs::is_root() || self.config.bool("development_mode") {
            return;
        }
        let jail = self
            .args
            .chroot
            .then(|| self.config.path("queue_directory"));
        if !self.args.unpriv && jail.is_none() {
            return;
        }
        let owner_name = self.config.str("mail_owner");
        let owner = match privs::lookup_user(&owner_name) {
            Ok(o) => o,
            Err(e) => fatal!("mail_owner: {e}"),
        };
        let who = if self.args.unpriv {
            owner
        } else {
            privs::current()
        };
        if let Err(e) = privs::drop_to(&who, jail.as_deref()) {
            fatal!("drop privileges to {}: {e}", who.name);
        }
    }
}
