//! postalias(1): see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    postern_postmap::main(postern_postmap::Program::Postalias)
}
