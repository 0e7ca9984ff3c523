//! Exit statuses (sysexits.h, as Postfix `sendmail` uses them) and the
//! fatal error that carries one.

pub(crate) use postern_util::sysexits::{
    EX_CONFIG, EX_DATAERR, EX_NOINPUT, EX_OSERR, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE,
};

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
