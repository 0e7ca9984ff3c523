//! Installing: `make install` into a DESTDIR with another PREFIX, and
//! `make deb` (dpkg-deb) from the debug build. The Debian package is
//! inspected with dpkg-deb, never installed here (see README, "Install",
//! for the manual check on a clean machine).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use postern_config::{Config, MasterTable};
use postern_tests::bin_dir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root")
}

/// Runs `make ARGS` in the workspace with the binaries of this test run;
/// returns standard output.
fn make(args: &[&str]) -> String {
    let out = Command::new("make")
        .arg("-C")
        .arg(workspace())
        .arg("--no-print-directory")
        .arg("NO_BUILD=1")
        .arg(format!("BIN={}", bin_dir().display()))
        .args(args)
        .output()
        .expect("make (Debian package make) must be installed");
    assert!(
        out.status.success(),
        "make {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names in one of the Makefile's program lists.
fn programs(list: &str) -> Vec<String> {
    let text = fs::read_to_string(workspace().join("Makefile")).expect("Makefile");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(list))
        .unwrap_or_else(|| panic!("no {list} in the Makefile"));
    line.split_once(":=")
        .expect(":=")
        .1
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[test]
fn make_install_lays_out_programs_config_pages_and_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("root");
    let destdir = format!("DESTDIR={}", dest.display());
    make(&["install", "PREFIX=/opt/postern", &destdir]);
    let prefix = dest.join("opt/postern");
    for d in programs("DAEMON_PROGRAMS") {
        assert!(executable(&prefix.join("libexec/postern").join(&d)), "{d}");
    }
    for c in programs("COMMAND_PROGRAMS") {
        assert!(executable(&prefix.join("sbin").join(&c)), "{c}");
    }
    for link in ["mailq", "newaliases"] {
        let target = fs::read_link(prefix.join("bin").join(link)).expect(link);
        assert_eq!(target, Path::new("/opt/postern/sbin/sendmail"), "{link}");
    }
    for page in [
        "man5/main.toml.5",
        "man5/master.toml.5",
        "man8/master.8",
        "man1/sendmail.1",
    ] {
        assert!(prefix.join("share/man").join(page).is_file(), "{page}");
    }
    let unit = fs::read_to_string(prefix.join("lib/systemd/system/postern.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/opt/postern/libexec/postern/master -c /etc/postern\n"),
        "{unit}"
    );

    // The samples load as they are, and point at this PREFIX.
    let etc = dest.join("etc/postern");
    let config = Config::load(&etc, &[]).expect("installed main.toml");
    assert_eq!(
        config.path("daemon_directory"),
        Path::new("/opt/postern/libexec/postern")
    );
    assert_eq!(
        config.path("command_directory"),
        Path::new("/opt/postern/sbin")
    );
    let table = MasterTable::load(&etc, &config).expect("installed master.toml");
    let commands: Vec<&str> = table.services.iter().map(|s| s.command.as_str()).collect();
    for d in programs("DAEMON_PROGRAMS") {
        if d != "master" {
            assert!(commands.contains(&d.as_str()), "{d} not in master.toml");
        }
    }

    // A second install keeps the administrator's configuration.
    fs::write(etc.join("main.toml"), "myhostname = \"mine.example\"\n").unwrap();
    let said = make(&["install", "PREFIX=/opt/postern", &destdir]);
    assert!(said.contains("keeping the existing"), "{said}");
    assert_eq!(
        fs::read_to_string(etc.join("main.toml")).unwrap(),
        "myhostname = \"mine.example\"\n"
    );
}

/// `make install` with the default PREFIX needs no path settings: the
/// built-in defaults are the install paths.
#[test]
fn make_install_default_prefix_matches_builtin_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("root");
    make(&["install", &format!("DESTDIR={}", dest.display())]);
    let etc = dest.join("etc/postern");
    let main = fs::read_to_string(etc.join("main.toml")).unwrap();
    assert!(!main.contains("\ndaemon_directory"), "{main}");
    let config = Config::load(&etc, &[]).unwrap();
    let daemon_dir = config.path("daemon_directory");
    let command_dir = config.path("command_directory");
    let rel = |p: &Path| dest.join(p.strip_prefix("/").unwrap());
    assert!(
        executable(&rel(&daemon_dir).join("master")),
        "{daemon_dir:?}"
    );
    assert!(
        executable(&rel(&command_dir).join("postdrop")),
        "{command_dir:?}"
    );
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("dpkg-deb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn make_deb_builds_a_package_with_users_alternatives_and_conffiles() {
    let tmp = tempfile::tempdir().unwrap();
    let out = make(&[
        "deb",
        "DEB_PROFILE=debug",
        &format!("DEB_OUT={}", tmp.path().display()),
        // Uncompressed: this is about the contents, and debug binaries are big.
        "DEB_COMPRESS=-Znone",
    ]);
    let deb = PathBuf::from(out.lines().last().expect("the .deb path").trim());
    assert!(deb.is_file(), "{out}");

    let info = dpkg_deb(&["--info"], &deb);
    for field in [
        "Package: postern\n",
        "Provides: mail-transport-agent\n",
        "Conflicts: mail-transport-agent\n",
        "Replaces: mail-transport-agent\n",
        "Depends: libc6, libgcc-s1, adduser\n",
    ] {
        assert!(info.contains(field), "{field:?} not in:\n{info}");
    }

    let contents = dpkg_deb(&["--contents"], &deb);
    let has = |path: &str| {
        contents
            .lines()
            .any(|l| l.ends_with(&format!(" ./{path}")) && l.contains("root/root"))
    };
    for d in programs("DAEMON_PROGRAMS") {
        assert!(has(&format!("usr/libexec/postern/{d}")), "{d}:\n{contents}");
    }
    for c in programs("COMMAND_PROGRAMS") {
        let name = if c == "sendmail" {
            "sendmail.postern".to_string()
        } else {
            c
        };
        assert!(has(&format!("usr/sbin/{name}")), "{name}:\n{contents}");
    }
    for path in [
        "etc/postern/main.toml",
        "etc/postern/master.toml",
        "usr/lib/systemd/system/postern.service",
        "usr/share/man/man5/main.toml.5.gz",
        "usr/share/man/man1/sendmail.postern.1.gz",
        "usr/share/doc/postern/copyright",
        "usr/share/doc/postern/changelog.gz",
        "var/spool/postern/",
    ] {
        assert!(has(path), "{path}:\n{contents}");
    }
    // update-alternatives owns these names, so the package must not.
    for path in ["usr/sbin/sendmail", "usr/bin/mailq", "usr/bin/newaliases"] {
        assert!(!has(path), "{path} is in the package:\n{contents}");
    }
    // Set-group-id comes from dpkg-statoverride in postinst.
    assert!(!contents.contains("-rwxr-s"), "{contents}");

    // The control area: conffiles and maintainer scripts.
    let ctl = tmp.path().join("control");
    let st = Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&ctl)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        fs::read_to_string(ctl.join("conffiles")).unwrap(),
        "/etc/postern/main.toml\n/etc/postern/master.toml\n"
    );
    let postinst = fs::read_to_string(ctl.join("postinst")).unwrap();
    for needle in [
        "addgroup --quiet --system postdrop",
        "adduser --quiet --system --group --home /var/spool/postern --no-create-home postern",
        "setgid_programs=\"postdrop",
        "dpkg-statoverride --update --add root postdrop 2555",
        "update-alternatives --quiet --install /usr/sbin/sendmail sendmail /usr/sbin/sendmail.postern",
        "--slave /usr/bin/mailq mailq",
        "--slave /usr/bin/newaliases newaliases",
    ] {
        assert!(postinst.contains(needle), "{needle:?} not in postinst");
    }
    assert!(
        !postinst.contains("@SETGID"),
        "unfilled placeholder:\n{postinst}"
    );
    let prerm = fs::read_to_string(ctl.join("prerm")).unwrap();
    assert!(
        prerm.contains("update-alternatives --quiet --remove sendmail /usr/sbin/sendmail.postern")
    );
    let postrm = fs::read_to_string(ctl.join("postrm")).unwrap();
    assert!(postrm.contains("dpkg-statoverride --remove"), "{postrm}");
    assert!(
        postrm.contains("deb-systemd-helper purge postern.service"),
        "{postrm}"
    );
    assert!(postinst.contains("deb-systemd-helper enable postern.service"));
    for script in ["postinst", "prerm", "postrm"] {
        let path = ctl.join(script);
        assert!(executable(&path), "{script}");
        let st = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(st.success(), "{script}: sh -n failed");
    }
}
