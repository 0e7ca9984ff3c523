//! Exit statuses of the command-line tools (`sysexits.h`, as Postfix's
//! tools use them), so that scripts see the same codes from every program.

use std::process::ExitCode;

/// Command line usage error.
pub const EX_USAGE: i32 = 64;
/// Bad input data.
pub const EX_DATAERR: i32 = 65;
/// An input file cannot be opened.
pub const EX_NOINPUT: i32 = 66;
/// A service is unavailable (or a request was refused for good).
pub const EX_UNAVAILABLE: i32 = 69;
/// An internal error, such as a malformed answer from a service.
pub const EX_SOFTWARE: i32 = 70;
/// An operating system error (cannot fork, cannot run a program).
pub const EX_OSERR: i32 = 71;
/// An output file cannot be created.
pub const EX_CANTCREAT: i32 = 73;
/// An input or output error.
pub const EX_IOERR: i32 = 74;
/// Temporary failure: the user is invited to try again.
pub const EX_TEMPFAIL: i32 = 75;
/// Permission denied.
pub const EX_NOPERM: i32 = 77;
/// Configuration error.
pub const EX_CONFIG: i32 = 78;

/// `code` as a `main` return value; a code outside 0..=255 (which exit(2)
/// would truncate) becomes 1.
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
