//! Test harness: temp instances of Postern (configuration + spool + log)
//! that run the real binaries through master, unprivileged or as root in
//! development mode, on loopback ports.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where cargo put the workspace binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/integration-HASH -> target/debug
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// A free TCP port on 127.0.0.1 (bound and released; tests run on
/// loopback where reuse races are rare enough).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One Postern instance in a temp directory.
pub struct Instance {
    /// Everything lives under here.
    pub dir: tempfile::TempDir,
    /// `-c` directory with main.toml and master.toml.
    pub config_dir: PathBuf,
    /// queue_directory.
    pub queue_dir: PathBuf,
    /// maillog_file.
    pub log: PathBuf,
    master: Option<Child>,
    /// Run master with `-o smtpd_peername_lookup=no`.
    no_peername_lookup: bool,
}

impl Instance {
    /// Writes a configuration: `main_extra` is appended to the generated
    /// main.toml (which sets the paths, the log file and development mode),
    /// `master_toml` is the service table.
    pub fn new(main_extra: &str, master_toml: &str) -> Instance {
        let dir = tempfile::Builder::new()
            .prefix("postern-test")
            .tempdir()
            .expect("tempdir");
        // Spool parents must not be group/world writable.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let config_dir = dir.path().join("etc");
        let queue_dir = dir.path().join("spool");
        let log = dir.path().join("maillog");
        fs::create_dir(&config_dir).expect("mkdir etc");
        // Five generated lines, so main_extra starts at line 6.
        let dev = if main_extra.contains("development_mode") {
            "# development_mode: see below"
        } else {
            "development_mode = true"
        };
        let host = if main_extra.contains("myhostname") {
            "# myhostname: see below"
        } else {
            "myhostname = \"mail.example.test\""
        };
        let main = format!(
            "queue_directory = \"{}\"\ndaemon_directory = \"{}\"\nmaillog_file = \"{}\"\n\
             {dev}\n{host}\n{main_extra}\n",
            queue_dir.display(),
            bin_dir().display(),
            log.display()
        );
        fs::write(config_dir.join("main.toml"), main).expect("write main.toml");
        fs::write(config_dir.join("master.toml"), master_toml).expect("write master.toml");
        Instance {
            dir,
            config_dir,
            queue_dir,
            log,
            master: None,
            // smtpd looks up no client names unless the test asks for it,
            // so that tests send no queries to the machine's resolver and
            // log `unknown[addr]` whatever its DNS says about loopback
            // addresses. An override, not a main.toml line, keeps
            // `postconf -n` and main.toml line numbers as the test wrote
            // them.
            no_peername_lookup: !main_extra.contains("smtpd_peername_lookup"),
        }
    }

    /// Runs master in the background and waits until it logged its start.
    pub fn start(&mut self) {
        let child = self
            .master_command()
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn master");
        self.master = Some(child);
        self.wait_log("daemon started", Duration::from_secs(20));
    }

    /// A `master -c DIR` command for this instance (with `-o
    /// smtpd_peername_lookup=no` unless `main_extra` set that parameter).
    pub fn master_command(&self) -> Command {
        let mut c = Command::new(bin_dir().join("master"));
        c.arg("-c").arg(&self.config_dir);
        if self.no_peername_lookup {
            c.args(["-o", "smtpd_peername_lookup=no"]);
        }
        c
    }

    /// Runs master in the foreground expecting it to fail; returns its output.
    pub fn run_master_expecting_failure(&self) -> Output {
        let out = self
            .master_command()
            .stdin(Stdio::null())
            .output()
            .expect("run master");
        assert!(!out.status.success(), "master unexpectedly succeeded");
        out
    }

    /// master's pid.
    pub fn master_pid(&self) -> i32 {
        self.master.as_ref().expect("master running").id() as i32
    }

    /// Sends a signal to master.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.master_pid()), sig).expect("kill master");
    }

    /// Stops master with SIGTERM and returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.master.take().expect("master running");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().expect("wait master") {
                return st;
            }
            assert!(Instant::now() < deadline, "master did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log if not.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        self.wait_log_count(needle, 1, timeout)
    }

    /// Waits until the log contains `needle` at least `n` times.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if text.matches(needle).count() >= n {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "log never showed {n} x {needle:?}; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Rewrites main.toml, keeping the generated head.
    pub fn rewrite_main(&self, main_extra: &str) {
        let path = self.config_dir.join("main.toml");
        let text = fs::read_to_string(&path).expect("read main.toml");
        let head: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
        fs::write(&path, format!("{head}{main_extra}\n")).expect("write main.toml");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.master.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// A line-protocol client (for test-echo and, later, SMTP/POP3 by hand).
pub struct LineClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl LineClient {
    /// Connects to 127.0.0.1:port.
    pub fn connect(port: u16) -> LineClient {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect {port}: {e}");
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        LineClient {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Reads one line without its CRLF.
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).expect("read line");
        s.trim_end_matches(['\r', '\n']).to_string()
    }

    /// Sends a line and reads the one-line answer.
    pub fn cmd(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        self.line()
    }
}

/// Whether a process exists.
pub fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

/// A helper process (a peer server, a DNS server) killed when the test
/// ends.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Whether `program` is on the PATH.
pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

pub mod tls;

/// Driving a delivery agent directly, the way qmgr does.
pub mod agent {
    use std::path::Path;
    use std::time::{Duration, Instant, SystemTime};

    use postern_ipc::deliver::{self, RcptStatus, Recipient, Request};
    use postern_queue::{NewRecipient, Queue, QueueFileWriter};

    /// Writes a queue file into `active/`; returns its id and the
    /// recipients with their record offsets.
    pub fn queue_file(
        queue_dir: &Path,
        sender: &str,
        rcpts: &[&str],
        content: &[u8],
    ) -> (String, Vec<Recipient>) {
        let mut w = QueueFileWriter::create(queue_dir, Queue::Active).expect("create");
        w.time(SystemTime::now()).expect("time");
        w.sender(sender).expect("sender");
        let mut out = Vec::new();
        for r in rcpts {
            let offset = w.recipient(&NewRecipient::new(r)).expect("recipient");
            out.push(Recipient {
                address: (*r).to_string(),
                orcpt: (*r).to_string(),
                offset,
                ..Recipient::default()
            });
        }
        w.begin_content().expect("content");
        w.write_content(content).expect("content");
        w.end_content().expect("content");
        let id = w.finish().expect("finish");
        (id.as_str().to_string(), out)
    }

    /// A request for a file in `active/`.
    pub fn request(id: &str, nexthop: &str, sender: &str, recipients: Vec<Recipient>) -> Request {
        Request {
            queue_name: "active".into(),
            queue_id: id.into(),
            arrival: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock")
                .as_secs(),
            nexthop: nexthop.into(),
            sender: sender.into(),
            recipients,
            ..Request::default()
        }
    }

    /// Sends the request to `private/<transport>`, retrying while the
    /// service is not reachable yet.
    pub fn send(queue_dir: &Path, transport: &str, req: &Request) -> Vec<RcptStatus> {
        let wait = Duration::from_secs(20);
        let deadline = Instant::now() + wait;
        loop {
            match deliver::deliver(&mut None, queue_dir, transport, wait, req) {
                Ok(s) => return s,
                Err((e, partial)) => {
                    assert!(partial.is_empty(), "{e}: {partial:?}");
                    assert!(Instant::now() < deadline, "deliver: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// Load and crash tests: many messages over SMTP, processes killed while
/// they are delivered, and a count of what arrived.
pub mod load {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::path::Path;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// The header that numbers each message.
    pub const HEADER: &str = "X-Load-Id";

    fn reply(r: &mut BufReader<TcpStream>) -> Option<String> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            // Multi-line replies: the last line has a space after the code.
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(line);
            }
        }
    }

    /// One SMTP session that sends messages numbered from `next` until
    /// `count`; returns the numbers accepted (250 after the dot), or stops
    /// early when the connection fails (the rest is sent by others).
    fn session(port: u16, to: &str, next: &AtomicU32, count: u32, got: &Mutex<Vec<u32>>) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(mut w) = stream.try_clone() else {
            return false;
        };
        let mut r = BufReader::new(stream);
        let ok = |line: Option<String>, code: &str| line.is_some_and(|l| l.starts_with(code));
        if !ok(reply(&mut r), "220") {
            return false;
        }
        if w.write_all(b"EHLO load.test\r\n").is_err() || !ok(reply(&mut r), "250") {
            return false;
        }
        loop {
            let n = next.fetch_add(1, Ordering::SeqCst);
            if n >= count {
                let _ = w.write_all(b"QUIT\r\n");
                return true;
            }
            // Pipelined envelope, then the content.
            let env = format!("MAIL FROM:<load@remote.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
            let sent = w.write_all(env.as_bytes()).is_ok()
                && ok(reply(&mut r), "250")
                && ok(reply(&mut r), "250")
                && ok(reply(&mut r), "354");
            let msg = format!(
                "{HEADER}: {n}\r\nSubject: load {n}\r\nFrom: load@remote.test\r\n\r\nmessage {n}\r\n.\r\n"
            );
            if !sent || w.write_all(msg.as_bytes()).is_err() {
                // Not accepted: nobody sends it; that is fine, it is not
                // counted as accepted.
                return false;
            }
            match reply(&mut r) {
                Some(l) if l.starts_with("250") => got.lock().expect("lock").push(n),
                Some(_) => {}
                None => return false,
            }
        }
    }

    /// Sends `count` messages to `to` over `connections` parallel SMTP
    /// sessions to 127.0.0.1:`port`; returns the numbers accepted, sorted.
    pub fn send(port: u16, to: &str, count: u32, connections: usize) -> Vec<u32> {
        let next = AtomicU32::new(0);
        let got = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..connections {
                s.spawn(|| {
                    while next.load(Ordering::SeqCst) < count {
                        if !session(port, to, &next, count, &got) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                });
            }
        });
        let mut v = got.into_inner().expect("lock");
        v.sort_unstable();
        v
    }

    /// How many times each message number is in the Maildir `dir`
    /// (`new/` and `cur/`).
    pub fn count_maildir(dir: &Path) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for sub in ["new", "cur"] {
            let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let prefix = format!("{HEADER}: ");
                if let Some(n) = text
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .and_then(|v| v.trim().parse().ok())
                {
                    *out.entry(n).or_insert(0) += 1;
                }
            }
        }
        out
    }

    /// An instance for load tests: smtpd on a free port, cleanup,
    /// trivial-rewrite, qmgr and local, with `load@localhost` aliased to
    /// the Maildir `DIR/Maildir/`, short retry times and a short throttle
    /// for killed daemons. Returns the instance, the SMTP port and the
    /// Maildir.
    pub fn instance() -> (super::Instance, u16, std::path::PathBuf) {
        let port = super::free_port();
        let mut inst = super::Instance::new(
            "",
            &format!(
                "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"smtpd\"\n\
                 [cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
                 [rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
                 [qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"300s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
                 [local]\ntype = \"unix\"\nunpriv = false\ncommand = \"local\"\n"
            ),
        );
        let dir = inst.dir.path().to_path_buf();
        let maildir = dir.join("Maildir");
        std::fs::write(
            dir.join("aliases"),
            format!("load: {}/\n", maildir.display()),
        )
        .expect("aliases");
        inst.rewrite_main(&format!(
            "alias_maps = \"texthash:{}/aliases\"\nmydestination = \"localhost\"\n\
             queue_run_delay = \"1s\"\nminimal_backoff_time = \"1s\"\n\
             maximal_backoff_time = \"2s\"\nservice_throttle_time = \"1s\"\n",
            dir.display()
        ));
        inst.start();
        (inst, port, maildir)
    }

    /// Sends `count` messages to `load@localhost` while killing (SIGKILL)
    /// master's children named `victim` every `every` up to `kills`
    /// times, waits for the queue to drain, and returns the accepted
    /// numbers, the Maildir counts and the number of processes killed.
    pub fn run_with_kills(
        victim: &str,
        count: u32,
        kills: usize,
        every: Duration,
    ) -> (super::Instance, Vec<u32>, BTreeMap<u32, usize>, usize) {
        use std::sync::atomic::AtomicBool;
        let (inst, port, maildir) = instance();
        let master = inst.master_pid();
        let done = AtomicBool::new(false);
        let killed = AtomicU32::new(0);
        let accepted = std::thread::scope(|s| {
            s.spawn(|| {
                let mut rounds = 0;
                while rounds < kills && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(every);
                    let pids = children_named(master, victim);
                    if pids.is_empty() {
                        continue;
                    }
                    for pid in pids {
                        if nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        )
                        .is_ok()
                        {
                            killed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    rounds += 1;
                }
            });
            let accepted = send(port, "load@localhost", count, 8);
            // Keep killing while the rest is delivered, then drain.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while maildir_len(&maildir) < accepted.len() / 2 && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            done.store(true, Ordering::SeqCst);
            accepted
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !(queue_empty(&inst.queue_dir) && maildir_len(&maildir) >= accepted.len())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Anything late (a duplicate in flight) shows up now.
        std::thread::sleep(Duration::from_millis(300));
        let counts = count_maildir(&maildir);
        let killed = usize::try_from(killed.load(Ordering::SeqCst)).unwrap_or(0);
        (inst, accepted, counts, killed)
    }

    /// Whether the queues that hold mail still to deliver are empty:
    /// hidden names are files being written or kept for reuse (see
    /// `postern_queue::retire`), not-ready files are being written or
    /// were placed for messages to come, or left by a killed cleanup (see
    /// `postern_queue::prepare`); no reader takes either for mail.
    pub fn queue_empty(queue_dir: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        ["incoming", "active", "deferred"].iter().all(|q| {
            std::fs::read_dir(queue_dir.join(q)).is_ok_and(|rd| {
                rd.flatten().all(|e| {
                    e.file_name().as_encoded_bytes().starts_with(b".")
                        || e.metadata()
                            .is_ok_and(|m| m.permissions().mode() & 0o100 == 0)
                })
            })
        })
    }

    /// The number of files in the Maildir `dir` (`new/` and `cur/`).
    pub fn maildir_len(dir: &Path) -> usize {
        ["new", "cur"]
            .iter()
            .filter_map(|s| std::fs::read_dir(dir.join(s)).ok())
            .map(|rd| rd.count())
            .sum()
    }

    /// The pids of the children of `parent` whose command name is `name`
    /// (from `/proc`).
    pub fn children_named(parent: i32, name: &str) -> Vec<i32> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let ppid = stat[close + 1..]
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok());
            if comm == name && ppid == Some(parent) {
                out.push(pid);
            }
        }
        out
    }
}

/// A DNS query for `name` type A, by hand (12-byte header, question).
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// dnsmasq on a free loopback port serving `records` (dnsmasq options
/// such as `--mx-host=a.test,mx1.a.test,10` or `--ptr-record=...`) for
/// `*.test` only: other names under `test` (and under further
/// `--local=/zone/` options) are NXDOMAIN, names elsewhere REFUSED.
/// Returns the process (stopped when dropped) and the port.
pub fn dnsmasq(records: &[String]) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new("dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        &format!("--port={port}"),
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--local=/test/",
    ]);
    if is_root() {
        cmd.arg("--user=root");
    }
    cmd.args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = Proc(cmd.spawn().expect("dnsmasq (apt-get install dnsmasq-base)"));
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("udp timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    loop {
        let _ = sock.send_to(&dns_query("ready.test"), ("127.0.0.1", port));
        if sock.recv_from(&mut buf).is_ok() {
            return (child, port);
        }
        assert!(Instant::now() < deadline, "dnsmasq did not answer");
    }
}
