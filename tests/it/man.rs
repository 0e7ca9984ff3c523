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

/// The programs `make install` installs, from the Makefile's lists.
fn installed_programs(list: &str) -> Vec<String> {
    let makefile = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Makefile");
    let text = std::fs::read_to_string(&makefile).expect("Makefile");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(list))
        .unwrap_or_else(|| panic!("no {list} in the Makefile"));
    let (_, names) = line.split_once(":=").expect(":=");
    names.split_whitespace().map(String::from).collect()
}

/// Every installed program and configuration file has a page.
#[test]
fn every_program_and_file_has_a_page() {
    let names: Vec<String> = pages()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let has = |page: &str| names.iter().any(|n| n == page);
    for file in ["main.toml.5", "master.toml.5"] {
        assert!(has(file), "no man page {file}");
    }
    let daemons = installed_programs("DAEMON_PROGRAMS");
    assert!(daemons.iter().any(|d| d == "master"), "{daemons:?}");
    for d in daemons {
        assert!(has(&format!("{d}.8")), "no man page {d}(8)");
    }
    let commands = installed_programs("COMMAND_PROGRAMS");
    assert!(commands.iter().any(|c| c == "sendmail"), "{commands:?}");
    for c in commands {
        assert!(
            has(&format!("{c}.1")) || has(&format!("{c}.8")),
            "no man page {c}(1) or {c}(8)"
        );
    }
}
