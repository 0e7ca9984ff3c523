//! Test harness: temp instances of Postern (spool + configuration) that
//! run the real binaries.
