//! Exit statuses (sysexits.h, as Postfix `sendmail` uses them) and the
//! fatal error that carries one.

/// Command line usage error.
pub(crate) const EX_USAGE: i32 = 64;
/// Bad input data.
pub(crate) const EX_DATAERR: i32 = 65;
pub(crate) const EX_NOINPUT: i32 = 66;
/// A service is unavailable (or the message was refused for good).
pub(crate) const EX_UNAVAILABLE: i32 = 69;
/// An operating system error.
pub(crate) const EX_OSERR: i32 = 71;
/// Temporary failure: the user is invited to try again.
pub(crate) const EX_TEMPFAIL: i32 = 75;
/// Configuration error.
pub(crate) const EX_CONFIG: i32 = 78;

/// A reason to stop with an exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fatal {
    /// The exit status.
    pub(crate) code: i32,
    /// What went wrong.
    pub(crate) text: String,
    /// Whether the user was told already (postdrop prints its own
    /// complaint on the shared standard error).
    pub(crate) reported: bool,
}

impl Fatal {
    /// A new error that still has to be reported.
    pub(crate) fn new(code: i32, text: String) -> Fatal {
        Fatal {
            code,
            text,
            reported: false,
        }
    }

    /// An error that postdrop already reported on standard error.
    pub(crate) fn reported(code: i32, text: String) -> Fatal {
        Fatal {
            code,
            text,
            reported: true,
        }
    }
}
