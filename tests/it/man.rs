//! Every man page renders without a warning from groff, nor from mandoc's
//! linter (at its "warning" level: its "style" notes, such as long input
//! lines, are matters of taste).

use std::path::PathBuf;
use std::process::Command;

fn pages() -> Vec<PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man");
    let mut pages = Vec::new();
    for section in std::fs::read_dir(&root).expect("man/") {
        let section = section.unwrap().path();
        for page in std::fs::read_dir(&section).unwrap() {
            pages.push(page.unwrap().path());
        }
    }
    assert!(!pages.is_empty(), "no man pages under {}", root.display());
    pages.sort();
    pages
}

#[test]
fn man_pages_lint_clean() {
    for page in pages() {
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

#[test]
fn man_pages_mandoc_lint_clean() {
    for page in pages() {
        let out = Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(&page)
            .output()
            .expect("mandoc (Debian package mandoc) must be installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.is_empty(),
            "{}:\n{text}",
            page.display()
        );
    }
}

/// The pages every installed program and file should have.
#[test]
fn every_program_and_file_has_a_page() {
    let names: Vec<String> = pages()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "main.toml.5",
        "master.toml.5",
        "master.8",
        "smtpd.8",
        "cleanup.8",
        "trivial-rewrite.8",
        "pickup.8",
        "qmgr.8",
        "local.8",
        "virtual.8",
        "anvil.8",
        "sendmail.1",
        "postdrop.1",
        "postcat.1",
    ] {
        assert!(names.iter().any(|n| n == want), "no man page {want}");
    }
}
