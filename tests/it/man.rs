//! Every man page renders without a groff warning.

use std::process::Command;

#[test]
fn man_pages_lint_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man");
    let mut pages = Vec::new();
    for section in std::fs::read_dir(&root).expect("man/") {
        let section = section.unwrap().path();
        for page in std::fs::read_dir(&section).unwrap() {
            pages.push(page.unwrap().path());
        }
    }
    assert!(!pages.is_empty(), "no man pages under {}", root.display());
    for page in pages {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-wall", "-z"])
            .arg(&page)
            .output()
            .expect("groff (Debian package groff-base) must be installed");
        assert!(out.status.success(), "{}: groff failed", page.display());
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.is_empty(), "{}:\n{warnings}", page.display());
    }
}
