//! The configuration and control tools: postconf, postern, postmap,
//! postalias, newaliases and `sendmail -bd`, against temp configurations
//! and running instances.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postern_tests::{Instance, LineClient, alive, bin_dir, free_port};

/// Runs a workspace binary with `args` and `stdin`.
fn run(tool: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin_dir().join(tool))
        .args(args)
        .env_remove("MAIL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("wait")
}

/// `tool -c DIR args...`.
fn tool(inst: &Instance, tool: &str, args: &[&str]) -> Output {
    let dir = inst.config_dir.to_str().expect("utf-8");
    let mut all = vec!["-c", dir];
    all.extend_from_slice(args);
    run(tool, &all, b"")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit status `code` and returns stdout.
fn expect(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

const MAIN_EXTRA: &str = "# Bigger mail for the lists.\n\
                          message_size_limit = 20480000   # 20 MB\n\
                          \n\
                          # Sender domain.\n\
                          myorigin = \"$mydomain\"\n";

#[test]
fn postconf_shows_parameters() {
    let inst = Instance::new(MAIN_EXTRA, "");
    let all = expect(&tool(&inst, "postconf", &[]), 0);
    let names: Vec<&str> = all
        .lines()
        .map(|l| l.split(" =").next().unwrap_or(""))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "not sorted");
    assert!(all.contains("\nmessage_size_limit = 20480000\n"), "{all}");
    // Raw by default, expanded with -x; an empty value is "name =".
    assert!(all.contains("\nmyorigin = $mydomain\n"), "{all}");
    assert!(all.contains("\nrelayhost =\n"), "{all}");
    assert_eq!(
        expect(&tool(&inst, "postconf", &["-x", "myorigin"]), 0),
        "myorigin = example.test\n"
    );
    assert_eq!(
        expect(
            &tool(&inst, "postconf", &["-hx", "myorigin", "mydomain"]),
            0
        ),
        "example.test\nexample.test\n"
    );
    assert_eq!(
        expect(&tool(&inst, "postconf", &["-d", "message_size_limit"]), 0),
        "message_size_limit = 10240000\n"
    );
    // -o overrides what is shown.
    assert_eq!(
        expect(
            &tool(
                &inst,
                "postconf",
                &["-o", "relayhost=[x]", "-h", "relayhost"]
            ),
            0
        ),
        "[x]\n"
    );

    // -n: exactly the parameters in main.toml, sorted.
    let n = expect(&tool(&inst, "postconf", &["-n"]), 0);
    let names: Vec<&str> = n.lines().map(|l| l.split(" =").next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "daemon_directory",
            "development_mode",
            "maillog_file",
            "message_size_limit",
            "myhostname",
            "myorigin",
            "queue_directory"
        ]
    );

    // Unknown names: a warning, the known ones still shown.
    let out = tool(&inst, "postconf", &["no_such_thing", "mail_name"]);
    assert_eq!(expect(&out, 0), "mail_name = Postern\n");
    assert!(
        stderr(&out).contains("postconf: warning: no_such_thing: unknown parameter"),
        "{}",
        stderr(&out)
    );

    // -m lists table types; usage errors are 64; --help works.
    let types = expect(&tool(&inst, "postconf", &["-m"]), 0);
    assert!(types.lines().any(|t| t == "regexp"), "{types}");
    expect(&tool(&inst, "postconf", &["-Q"]), 64);
    expect(&tool(&inst, "postconf", &["-d", "-n"]), 64);
    assert!(expect(&run("postconf", &["--help"], b""), 0).contains("-e"));

    // A broken main.toml is reported with file, line and key.
    fs::write(
        inst.config_dir.join("main.toml"),
        "mail_name = \"x\"\nsmtpd_timeout = \"soon\"\n",
    )
    .unwrap();
    let out = tool(&inst, "postconf", &[]);
    expect(&out, 78);
    assert!(
        stderr(&out).contains("main.toml:2: smtpd_timeout: expected a time"),
        "{}",
        stderr(&out)
    );
}

/// `postconf -d` is the parameter table in crates/config/src/params.rs:
/// every row, in order, with its default.
#[test]
fn postconf_defaults_come_from_the_parameter_table() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/config/src/params.rs");
    let text = fs::read_to_string(&table).unwrap();
    let rows: Vec<(String, String)> = text
        .split("    Param {\n")
        .skip(1)
        .map(|row| {
            let field = |key: &str| {
                let at = row.find(key).unwrap_or_else(|| panic!("{key} in {row}"));
                let rest = &row[at + key.len()..];
                rest[..rest.find("\",\n").unwrap()].replace("\\\"", "\"")
            };
            (field("name: \""), field("default: \""))
        })
        .collect();
    assert!(rows.len() > 100, "{}", rows.len());
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("main.toml"), "").unwrap();
    let out = expect(
        &run("postconf", &["-d", "-c", dir.path().to_str().unwrap()], b""),
        0,
    );
    let shown: Vec<&str> = out.lines().collect();
    assert_eq!(shown.len(), rows.len());
    for ((name, default), line) in rows.iter().zip(shown) {
        // myhostname and mydomain are computed from the host name.
        if name == "myhostname" || name == "mydomain" {
            assert!(line.starts_with(&format!("{name} = ")), "{line}");
            continue;
        }
        let want = if default.is_empty() {
            format!("{name} =")
        } else {
            format!("{name} = {default}")
        };
        assert_eq!(line, want);
    }
}

#[test]
fn postconf_edits_keep_comments_and_refuse_bad_values() {
    let inst = Instance::new(MAIN_EXTRA, "");
    let path = inst.config_dir.join("main.toml");
    let before = fs::read_to_string(&path).unwrap();

    expect(
        &tool(
            &inst,
            "postconf",
            &[
                "-e",
                "message_size_limit=30000000",
                "relayhost = [smart.example]",
            ],
        ),
        0,
    );
    let after = fs::read_to_string(&path).unwrap();
    // The value changes in place (its comment stays); a new parameter
    // goes after the last one.
    let want = before
        .replace(
            "message_size_limit = 20480000   # 20 MB",
            "message_size_limit = 30000000   # 20 MB",
        )
        .replace(
            "myorigin = \"$mydomain\"\n",
            "myorigin = \"$mydomain\"\nrelayhost = \"[smart.example]\"\n",
        );
    assert_eq!(after, want);
    assert_eq!(
        expect(&tool(&inst, "postconf", &["-h", "relayhost"]), 0),
        "[smart.example]\n"
    );

    // Bad values, unknown names and bad references are refused; the file
    // is untouched.
    for bad in [
        "message_size_limit=ten",
        "no_such_parameter=1",
        "myorigin=$nosuch",
        "smtpd_timeout=0",
    ] {
        let out = tool(&inst, "postconf", &["-e", "mail_name=Fine", bad]);
        expect(&out, 78);
        let name = bad.split('=').next().unwrap();
        assert!(stderr(&out).contains(name), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("postconf: fatal: "),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), want, "{bad}");
    }
    expect(&tool(&inst, "postconf", &["-e", "no_equals_sign"]), 64);

    // -X removes the line, not the comment above it.
    expect(&tool(&inst, "postconf", &["-X", "myorigin"]), 0);
    let removed = fs::read_to_string(&path).unwrap();
    assert_eq!(removed, want.replace("myorigin = \"$mydomain\"\n", ""));
    assert!(removed.contains("# Sender domain.\n"), "{removed}");
    let n = expect(&tool(&inst, "postconf", &["-n", "myorigin"]), 0);
    assert_eq!(n, "");
    // No temporary files left in the directory.
    let mut names: Vec<String> = fs::read_dir(&inst.config_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["main.toml", "master.toml"]);
}

#[test]
fn postconf_shows_the_service_table() {
    let port = free_port();
    let table = format!(
        "# services\n[echo]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\nmaxproc = 3\n\
         command = \"test-echo\"\nargs = [\"-o\", \"max_idle=$max_use\"]\n\n\
         [tick]\ntype = \"unix\"\nwakeup = \"10s\"\nmaxproc = 1\ncommand = \"test-trigger\"\n"
    );
    let inst = Instance::new("", &table);
    let out = expect(&tool(&inst, "postconf", &["-M"]), 0);
    assert_eq!(
        out,
        "echo       inet  n       y       n       -       3       test-echo -o max_idle=100\n\
         tick       unix  y       y       n       10      1       test-trigger\n"
    );
    assert_eq!(
        expect(&tool(&inst, "postconf", &["-M", "tick/unix"]), 0),
        "tick       unix  y       y       n       10      1       test-trigger\n"
    );
    let out = tool(&inst, "postconf", &["-M", "nosuch"]);
    assert_eq!(expect(&out, 0), "");
    assert!(stderr(&out).contains("nosuch: unknown service"));
}

/// Kills whatever master the pid file names, for tests that start master
/// in the background with `postern start`.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(pid) = pid_in(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Waits until `pid` has exited: no such process, or a zombie (the
/// background master's parent is init, which may reap it late).
fn gone(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(false);
        if !alive(pid) || zombie {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn pid_in(pid_file: &Path) -> Option<i32> {
    fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

#[test]
fn postern_starts_reloads_stops_and_aborts_master() {
    let port = free_port();
    let table = format!(
        "[echo]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"test-echo\"\n"
    );
    let inst = Instance::new("", &table);
    let pid_file = inst.queue_dir.join("pid/master.pid");
    let _reaper = Reaper(pid_file.clone());

    let out = tool(&inst, "postern", &["status"]);
    expect(&out, 1);
    assert!(
        stderr(&out).contains("postern/postern-script: the Postern mail system is not running"),
        "{}",
        stderr(&out)
    );
    expect(&tool(&inst, "postern", &["stop"]), 1);
    expect(&tool(&inst, "postern", &["reload"]), 1);

    // start returns once master is up, in the background.
    let out = tool(&inst, "postern", &["start"]);
    expect(&out, 0);
    assert!(stderr(&out).contains("starting the Postern mail system"));
    let pid = pid_in(&pid_file).expect("pid file");
    assert!(alive(pid));
    let mut c = LineClient::connect(port);
    assert!(c.line().starts_with("220 "));
    drop(c);
    let out = tool(&inst, "postern", &["status"]);
    expect(&out, 0);
    assert!(
        stderr(&out).contains(&format!(
            "postern/postern-script: the Postern mail system is running: PID: {pid}"
        )),
        "{}",
        stderr(&out)
    );
    let out = tool(&inst, "postern", &["start"]);
    expect(&out, 1);
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));

    // reload: SIGHUP after a configuration check.
    expect(&tool(&inst, "postern", &["reload"]), 0);
    inst.wait_log("reload -- version", Duration::from_secs(10));
    fs::write(inst.config_dir.join("master.toml"), "[broken\n").unwrap();
    let out = tool(&inst, "postern", &["reload"]);
    expect(&out, 1);
    assert!(stderr(&out).contains("master.toml:1"), "{}", stderr(&out));
    fs::write(inst.config_dir.join("master.toml"), &table).unwrap();

    // stop waits until master is gone.
    let out = tool(&inst, "postern", &["stop"]);
    expect(&out, 0);
    assert!(gone(pid));
    expect(&tool(&inst, "postern", &["status"]), 1);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // sendmail -bd does what postern start does; abort kills master.
    let dir = inst.config_dir.to_str().unwrap();
    expect(&run("sendmail", &["-C", dir, "-bd"], b""), 0);
    let pid = pid_in(&pid_file).expect("pid file");
    assert!(alive(pid));
    expect(&tool(&inst, "postern", &["status"]), 0);
    let out = tool(&inst, "postern", &["abort"]);
    expect(&out, 0);
    assert!(stderr(&out).contains("aborting the Postern mail system"));
    assert!(gone(pid));
    expect(&tool(&inst, "postern", &["status"]), 1);
    assert!(
        inst.log_text().contains("postern/postern-script["),
        "the commands log too"
    );
}

#[test]
fn postern_start_reports_a_failed_start() {
    let inst = Instance::new(
        "",
        "[echo]\ntype = \"unix\"\ncommand = \"no-such-daemon\"\n",
    );
    let out = tool(&inst, "postern", &["start"]);
    expect(&out, 1);
    assert!(
        stderr(&out).contains("no-such-daemon: program is missing"),
        "{}",
        stderr(&out)
    );
    // A spool master refuses is reported by master itself.
    let inst = Instance::new("", "");
    fs::create_dir_all(inst.queue_dir.join("incoming")).unwrap();
    fs::set_permissions(&inst.queue_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(
        inst.queue_dir.join("incoming"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let out = tool(&inst, "postern", &["start"]);
    expect(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("unsafe spool") && err.contains("incoming"),
        "{err}"
    );
    assert!(err.contains("mail system startup failed"), "{err}");
}

#[test]
fn postern_flush_triggers_qmgr() {
    let table = "[qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"60s\"\nmaxproc = 1\n\
                 command = \"qmgr\"\n";
    let mut inst = Instance::new("", table);
    let out = tool(&inst, "postern", &["flush"]);
    expect(&out, 69);
    assert!(
        stderr(&out).contains("mail system is down"),
        "{}",
        stderr(&out)
    );
    inst.start();
    expect(&tool(&inst, "postern", &["flush"]), 0);
    inst.stop();
}

#[test]
fn postern_check_and_set_permissions() {
    let inst = Instance::new("", "[echo]\ntype = \"unix\"\ncommand = \"test-echo\"\n");
    // Nothing there yet.
    let out = tool(&inst, "postern", &["check"]);
    expect(&out, 1);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = tool(&inst, "postern", &["set-permissions"]);
    expect(&out, 0);
    assert!(stderr(&out).contains("created"), "{}", stderr(&out));
    let out = tool(&inst, "postern", &["check"]);
    expect(&out, 0);
    assert_eq!(stderr(&out), "");

    // A wrong mode is found, with the fix, and fixed.
    let incoming = inst.queue_dir.join("incoming");
    fs::set_permissions(&incoming, fs::Permissions::from_mode(0o755)).unwrap();
    let out = tool(&inst, "postern", &["check"]);
    expect(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "postern/postern-script: warning: {}: mode 0755, expected 0700; fix: chmod 0700",
            incoming.display()
        )),
        "{err}"
    );
    expect(&tool(&inst, "postern", &["set-permissions"]), 0);
    let mode = fs::metadata(&incoming).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
    expect(&tool(&inst, "postern", &["check"]), 0);

    // A symbolic link is reported, never followed or "fixed".
    let hold = inst.queue_dir.join("hold");
    fs::remove_dir(&hold).unwrap();
    std::os::unix::fs::symlink("/tmp", &hold).unwrap();
    let out = tool(&inst, "postern", &["set-permissions"]);
    expect(&out, 1);
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    fs::remove_file(&hold).unwrap();

    // Configuration problems: a service whose program is missing.
    fs::write(
        inst.config_dir.join("master.toml"),
        "[echo]\ntype = \"unix\"\ncommand = \"no-such-daemon\"\n",
    )
    .unwrap();
    let out = tool(&inst, "postern", &["check"]);
    expect(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("service echo (unix)") && err.contains("no-such-daemon"),
        "{err}"
    );
    assert!(err.contains("hold: does not exist"), "{err}");
    // Usage errors.
    expect(&tool(&inst, "postern", &["explode"]), 64);
    expect(&run("postern", &[], b""), 64);
}

#[test]
fn postmap_queries_lists_and_checks_every_table_type() {
    let inst = Instance::new("", "");
    let d = inst.dir.path();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let hash = write(
        "transport",
        "# transports\nExample.COM   smtp:[relay.example]\n.example.com relay:[x]\n",
    );
    let regexp = write(
        "checks",
        "/^Subject: .*viagra/ REJECT spam\n/^(.*)@old\\.example$/ $1@new.example\n",
    );
    let cidr = write("clients", "192.0.2.0/24 REJECT\n2001:db8::/32 OK\n");
    let q = |args: &[&str]| tool(&inst, "postmap", args);

    // -q: found (exit 0) or not (exit 1), for each table type.
    assert_eq!(
        expect(&q(&["-q", "example.com", &format!("hash:{hash}")]), 0),
        "smtp:[relay.example]\n"
    );
    // Without a type, default_database_type (hash); keys fold case.
    assert_eq!(
        expect(&q(&["-q", "EXAMPLE.com", &hash]), 0),
        "smtp:[relay.example]\n"
    );
    assert_eq!(
        expect(&q(&["-q", ".example.com", &format!("texthash:{hash}")]), 0),
        "relay:[x]\n"
    );
    expect(&q(&["-q", "other.example", &hash]), 1);
    assert_eq!(
        expect(
            &q(&["-q", "joe@old.example", &format!("regexp:{regexp}")]),
            0
        ),
        "joe@new.example\n"
    );
    expect(
        &q(&["-q", "joe@other.example", &format!("pcre:{regexp}")]),
        1,
    );
    assert_eq!(
        expect(&q(&["-q", "192.0.2.7", &format!("cidr:{cidr}")]), 0),
        "REJECT\n"
    );
    assert_eq!(
        expect(&q(&["-q", "2001:db8::1", &format!("cidr:{cidr}")]), 0),
        "OK\n"
    );
    expect(&q(&["-q", "198.51.100.1", &format!("cidr:{cidr}")]), 1);
    assert_eq!(expect(&q(&["-q", "b", "inline:{a=1, b=2}"]), 0), "2\n");
    assert_eq!(expect(&q(&["-q", "anything", "static:OK"]), 0), "OK\n");
    assert_eq!(
        expect(&q(&["-q", "root", "unix:passwd.byname"]), 0),
        "root\n"
    );
    expect(&q(&["-q", "no-such-user-here", "unix:passwd.byname"]), 1);
    let out = q(&["-q", "x", "fail:test"]);
    expect(&out, 75);
    // The first table that has the key wins.
    assert_eq!(
        expect(
            &q(&["-q", "example.com", "inline:{example.com=first}", &hash]),
            0
        ),
        "first\n"
    );
    // -q - reads keys from standard input.
    let dir = inst.config_dir.to_str().unwrap();
    let out = run(
        "postmap",
        &["-c", dir, "-q", "-", &hash],
        b"example.com\nnothing\n.example.com\n",
    );
    assert_eq!(
        expect(&out, 0),
        "example.com smtp:[relay.example]\n.example.com relay:[x]\n"
    );

    // -s lists a table; pattern tables cannot be listed.
    assert_eq!(
        expect(&q(&["-s", &hash]), 0),
        ".example.com relay:[x]\nexample.com smtp:[relay.example]\n"
    );
    expect(&q(&["-s", &format!("regexp:{regexp}")]), 69);

    // Checking: clean tables pass quietly; each bad line is reported.
    let out = q(&[&hash, &format!("regexp:{regexp}"), &format!("cidr:{cidr}")]);
    expect(&out, 0);
    assert_eq!(stderr(&out), "");
    let bad = write("bad", " orphan\ngood value\nlonely\n\"open quote\n");
    let bad_re = write("bad_re", "/(unclosed/ x\n");
    let bad_cidr = write("bad_cidr", "192.0.2.0/33 x\n");
    let out = q(&[
        &bad,
        &format!("regexp:{bad_re}"),
        &format!("cidr:{bad_cidr}"),
    ]);
    expect(&out, 65);
    let err = stderr(&out);
    for want in [
        format!("postmap: warning: {bad}, line 1: "),
        format!("postmap: warning: {bad}, line 3: "),
        format!("postmap: warning: {bad}, line 4: "),
        format!("postmap: warning: {bad_re}, line 1: "),
        format!("postmap: warning: {bad_cidr}, line 1: "),
    ] {
        assert!(err.contains(&want), "{want} in:\n{err}");
    }
    let out = q(&[&d.join("missing").to_string_lossy()]);
    expect(&out, 66);
    assert!(stderr(&out).contains("No such file"), "{}", stderr(&out));
    expect(&q(&[]), 64);
}

#[test]
fn postalias_and_newaliases_check_alias_files() {
    let inst = Instance::new("", "");
    let aliases = inst.dir.path().join("aliases");
    fs::write(
        &aliases,
        "# aliases\nPostmaster: root\nroot: admin, \"|/usr/bin/logger\"\nbad line\nuser@remote.example: x\n",
    )
    .unwrap();
    let a = aliases.to_str().unwrap();
    assert_eq!(
        expect(&tool(&inst, "postalias", &["-q", "postmaster", a]), 0),
        "root\n"
    );
    assert_eq!(
        expect(
            &tool(&inst, "postalias", &["-q", "root", &format!("hash:{a}")]),
            0
        ),
        "admin, \"|/usr/bin/logger\"\n"
    );
    expect(&tool(&inst, "postalias", &["-q", "nobody-here", a]), 1);
    assert_eq!(
        expect(&tool(&inst, "postalias", &["-s", a]), 0),
        "postmaster: root\nroot: admin, \"|/usr/bin/logger\"\n"
    );
    let out = tool(&inst, "postalias", &[a]);
    expect(&out, 65);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("postalias: warning: {a}, line 4: ")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{a}, line 5: name must be local")),
        "{err}"
    );

    // newaliases (sendmail -bi) runs the same check over alias_database.
    inst.rewrite_main(&format!("alias_database = \"hash:{a}\""));
    let dir = inst.config_dir.to_str().unwrap();
    let out = run("sendmail", &["-C", dir, "-bi"], b"");
    expect(&out, 65);
    assert!(
        stderr(&out).contains(&format!("{a}, line 4: ")),
        "{}",
        stderr(&out)
    );
    fs::write(&aliases, "postmaster: root\n").unwrap();
    let out = run("sendmail", &["-C", dir, "-bi"], b"");
    expect(&out, 0);
    assert_eq!(stderr(&out), "");
    expect(&tool(&inst, "postalias", &[a]), 0);
}
