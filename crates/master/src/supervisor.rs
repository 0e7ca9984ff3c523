//! The service table at run time: listeners, processes, status, signals
//! (Postfix `master_service.c`, `master_spawn.c`, `master_avail.c`,
//! `master_status.c`, `master_wakeup.c`, `master_sig.c`).
//!
//! master is one thread around `poll(2)`: level-triggered readiness is
//! what "spawn while a client waits and nobody is free" needs, and it
//! keeps the process safe to fork.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, socketpair};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use postern_config::{CommonArgs, Config, Listen, MasterTable, Service, ServiceKind};
use postern_server::proto::{self, LISTEN_FD, STATUS_FD, STATUS_LEN, Status};
use postern_util::{debug, error, info, spawn, warn};

use crate::listen;

/// How long stopping processes get before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often "process limit reached" may be logged per service.
const LIMIT_WARN_INTERVAL: Duration = Duration::from_secs(1000);

/// A configuration as read and validated, with the exact texts, so that
/// what children read is what master checked.
pub(crate) struct Loaded {
    pub(crate) config: Config,
    pub(crate) table: MasterTable,
    main_text: String,
    master_text: String,
}

/// Reads and validates `main.toml` and `master.toml` once.
pub(crate) fn load(common: &CommonArgs) -> Result<Loaded, String> {
    let read = |name: &str| {
        let path = common.config_dir.join(name);
        std::fs::read_to_string(&path)
            .map(|t| (t, path.clone()))
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))
    };
    let (main_text, main_path) = read("main.toml")?;
    let config =
        Config::parse(&main_text, &main_path, &common.overrides).map_err(|e| e.to_string())?;
    let (master_text, master_path) = read("master.toml")?;
    let table =
        MasterTable::parse(&master_text, &master_path, &config).map_err(|e| e.to_string())?;
    Ok(Loaded {
        config,
        table,
        main_text,
        master_text,
    })
}

/// Writes the validated configuration of `generation` to
/// `pid/config.N/` in the spool; daemons are started with `-c` pointing
/// there. An admin's half-edited `main.toml` thus never reaches a new
/// process: changes take effect on reload, and only if they are valid.
fn snapshot(queue_dir: &Path, generation: u32, loaded: &Loaded) -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let pid_dir = queue_dir.join("pid");
    let dir = pid_dir.join(format!("config.{generation}"));
    let fail = |e: std::io::Error| format!("configuration snapshot {}: {e}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(fail)?;
    std::fs::write(dir.join("main.toml"), &loaded.main_text).map_err(fail)?;
    std::fs::write(dir.join("master.toml"), &loaded.master_text).map_err(fail)?;
    // Keep the previous generation (a child may be starting from it);
    // remove older ones.
    if let Ok(entries) = std::fs::read_dir(&pid_dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix("config."))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if n + 1 < generation {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(dir)
}

/// One service of the table, at run time.
struct Svc {
    def: Service,
    /// Absolute path of the program.
    program: PathBuf,
    /// One socket per listen address (fds 6, 7, ... in the child).
    listeners: Vec<OwnedFd>,
    /// master's end of the status channel.
    status: OwnedFd,
    /// The children's end, placed at `STATUS_FD` in each child.
    child_end: OwnedFd,
    /// Unix socket path, removed when the service goes away.
    socket_path: Option<PathBuf>,
    generation: u32,
    /// Live processes of this generation, and how many are free.
    total: u32,
    avail: u32,
    /// Consecutive bad starts, and when the throttle lifts.
    failures: u32,
    throttled_until: Option<Instant>,
    next_wakeup: Option<Instant>,
    /// When "process limit reached" was last logged (rate limited).
    limit_warned: Option<Instant>,
}

struct Child {
    service: (String, ServiceKind),
    generation: u32,
    program: PathBuf,
    avail: bool,
    used: bool,
}

/// Signal flags, set by handlers and read by the loop.
struct Signals {
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    chld: Arc<AtomicBool>,
    /// Read end of the self-pipe that wakes `poll`.
    wake: UnixStream,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
        let (wake, wake_tx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            int: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
            chld: Arc::new(AtomicBool::new(false)),
            wake,
        };
        for (sig, flag) in [
            (SIGTERM, &s.term),
            (SIGINT, &s.int),
            (SIGHUP, &s.hup),
            (SIGCHLD, &s.chld),
        ] {
            // Flag first, then the wakeup: the loop sees the flag when it wakes.
            signal_hook::flag::register(sig, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register(sig, wake_tx.try_clone()?)?;
        }
        Ok(s)
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// The running master.
pub(crate) struct Master {
    common: CommonArgs,
    /// The validated copy of the configuration children are started with.
    snapshot_dir: PathBuf,
    verbose: bool,
    config: Config,
    services: Vec<Svc>,
    children: HashMap<i32, Child>,
    generation: u32,
    signals: Signals,
}

impl Master {
    /// Opens every listener and installs signal handlers; nothing is
    /// started if any listener fails.
    pub(crate) fn start(
        common: CommonArgs,
        verbose: bool,
        loaded: Loaded,
    ) -> Result<Master, String> {
        let signals = Signals::install().map_err(|e| format!("signal setup: {e}"))?;
        let snapshot_dir = snapshot(&loaded.config.path("queue_directory"), 1, &loaded)?;
        let Loaded { config, table, .. } = loaded;
        let services = build_services(&config, table, 1, &mut HashMap::new())?;
        let master = Master {
            common,
            snapshot_dir,
            verbose,
            config,
            services,
            children: HashMap::new(),
            generation: 1,
            signals,
        };
        master.log_services();
        Ok(master)
    }

    /// The configuration directory in use.
    pub(crate) fn config_dir(&self) -> &Path {
        &self.common.config_dir
    }

    fn log_services(&self) {
        for s in &self.services {
            let at = match &s.def.listen {
                Listen::Inet(addrs) => addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                Listen::Unix(p) => p.display().to_string(),
            };
            info!(
                "service {} ({} {at}): {} maxproc={}",
                s.def.name,
                s.def.kind.as_str(),
                s.program.display(),
                s.def.maxproc
            );
        }
    }

    /// Runs until SIGTERM or SIGINT.
    pub(crate) fn run(&mut self) {
        loop {
            if self.signals.term.swap(false, Ordering::SeqCst) {
                self.stop(15);
                return;
            }
            if self.signals.int.swap(false, Ordering::SeqCst) {
                self.stop(2);
                return;
            }
            if self.signals.chld.swap(false, Ordering::SeqCst) {
                self.reap();
            }
            if self.signals.hup.swap(false, Ordering::SeqCst) {
                self.reload();
            }
            let now = Instant::now();
            self.send_wakeups(now);
            self.poll_once(now);
        }
    }

    fn send_wakeups(&mut self, now: Instant) {
        for s in &mut self.services {
            let (Some(when), Some(every)) = (s.next_wakeup, s.def.wakeup) else {
                continue;
            };
            if when > now || s.throttled_until.is_some_and(|t| t > now) {
                continue;
            }
            s.next_wakeup = Some(now + every);
            if let Some(path) = &s.socket_path
                && let Err(e) = listen::wakeup(path)
                && e.kind() != std::io::ErrorKind::WouldBlock
            {
                warn!("wakeup {}: {e}", path.display());
            }
        }
    }

    /// Whether a service's listener needs watching: a client may be
    /// waiting and no process is free to take it.
    fn wants_listener(s: &Svc, now: Instant) -> bool {
        s.avail == 0
            && (s.def.maxproc == 0 || s.total < s.def.maxproc)
            && s.throttled_until.is_none_or(|t| t <= now)
    }

    /// Warns when every process of a service is busy at its limit, at
    /// most once per `LIMIT_WARN_INTERVAL` (Postfix `master_avail.c`).
    /// Single-process services (qmgr, pickup: trigger servers report busy
    /// while they work) are busy by design and never warned about.
    fn warn_busy(&mut self, now: Instant) {
        for s in &mut self.services {
            let busy = s.avail == 0 && s.def.maxproc > 1 && s.total >= s.def.maxproc;
            if busy
                && s.limit_warned
                    .is_none_or(|t| now.duration_since(t) >= LIMIT_WARN_INTERVAL)
            {
                warn!(
                    "service \"{}\" ({}) has reached its process limit \"{}\": new clients may experience noticeable delays",
                    s.def.name,
                    s.def.kind.as_str(),
                    s.def.maxproc
                );
                s.limit_warned = Some(now);
            }
        }
    }

    fn poll_once(&mut self, now: Instant) {
        self.warn_busy(now);
        // Descriptor roles, parallel to `fds`.
        enum Role {
            Wake,
            Status(usize),
            Listener(usize),
        }
        let mut roles = vec![Role::Wake];
        let mut fds = vec![PollFd::new(self.signals.wake.as_fd(), PollFlags::POLLIN)];
        let mut deadline: Option<Instant> = None;
        let mut earliest = |t: Instant| {
            deadline = Some(deadline.map_or(t, |d: Instant| d.min(t)));
        };
        for (i, s) in self.services.iter().enumerate() {
            fds.push(PollFd::new(s.status.as_fd(), PollFlags::POLLIN));
            roles.push(Role::Status(i));
            if Self::wants_listener(s, now) {
                for l in &s.listeners {
                    fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                    roles.push(Role::Listener(i));
                }
            } else if s.avail == 0
                && let Some(t) = s.throttled_until
            {
                earliest(t);
            }
            if let Some(w) = s.next_wakeup {
                earliest(w);
            }
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(now).as_millis();
                // Round up so we do not spin just before the deadline.
                PollTimeout::try_from(u32::try_from(ms + 1).unwrap_or(u32::MAX))
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return,
            Err(e) => {
                error!("poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        }
        let ready: Vec<&Role> = fds
            .iter()
            .zip(roles.iter())
            .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, r)| r)
            .collect();
        let mut status = Vec::new();
        let mut spawn_for = Vec::new();
        let mut wake = false;
        for r in ready {
            match r {
                Role::Wake => wake = true,
                Role::Status(i) => status.push(*i),
                Role::Listener(i) => spawn_for.push(*i),
            }
        }
        drop(fds);
        if wake {
            self.signals.drain();
        }
        for i in status {
            self.read_status(i);
        }
        spawn_for.dedup();
        for i in spawn_for {
            // A status update may have freed a process meanwhile.
            if Self::wants_listener(&self.services[i], Instant::now()) {
                self.spawn(i);
            }
        }
    }

    fn read_status(&mut self, i: usize) {
        let mut buf = [0u8; STATUS_LEN + 1];
        loop {
            let n = match recv(
                self.services[i].status.as_raw_fd(),
                &mut buf,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(0) => return,
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            let Some((pid, generation, status)) = buf.get(..n).and_then(proto::decode) else {
                warn!(
                    "service {}: bad status record of {n} bytes",
                    self.services[i].def.name
                );
                continue;
            };
            let svc = &mut self.services[i];
            let Some(child) = i32::try_from(pid)
                .ok()
                .and_then(|p| self.children.get_mut(&p))
            else {
                debug!("status from unknown pid {pid}");
                continue;
            };
            if child.generation != svc.generation || generation != svc.generation {
                continue;
            }
            match status {
                Status::Avail => {
                    if !child.avail {
                        child.avail = true;
                        svc.avail += 1;
                    }
                }
                Status::Taken => {
                    child.used = true;
                    if child.avail {
                        child.avail = false;
                        svc.avail = svc.avail.saturating_sub(1);
                    }
                }
            }
        }
    }

    fn spawn(&mut self, i: usize) {
        let svc = &mut self.services[i];
        if svc.def.maxproc > 0 && svc.total >= svc.def.maxproc {
            return;
        }
        let mut cmd = Command::new(&svc.program);
        cmd.arg0(&svc.def.command);
        cmd.arg("-c").arg(&self.snapshot_dir);
        for o in &self.common.overrides {
            cmd.arg("-o").arg(o);
        }
        if self.verbose {
            cmd.arg("-v");
        }
        cmd.args(["-n", &svc.def.name, "-t", svc.def.kind.as_str()]);
        if svc.def.unpriv {
            cmd.arg("-u");
        }
        if svc.def.chroot {
            cmd.arg("-j");
        }
        cmd.arg("-g").arg(svc.generation.to_string());
        cmd.arg("-s").arg(svc.listeners.len().to_string());
        cmd.args(&svc.def.args);
        cmd.stdin(Stdio::null());
        // Own process group: a terminal's Ctrl-C reaches master only, and
        // master stops the children in order.
        cmd.process_group(0);
        let mut fds = vec![(svc.child_end.as_raw_fd(), STATUS_FD)];
        for (n, l) in svc.listeners.iter().enumerate() {
            fds.push((l.as_raw_fd(), LISTEN_FD + n as i32));
        }
        spawn::place_fds(&mut cmd, &fds);
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id() as i32;
                // We reap with waitpid(-1); std's handle is not needed.
                drop(child);
                debug!("spawn {} pid {pid}", svc.program.display());
                svc.total += 1;
                svc.avail += 1;
                self.children.insert(
                    pid,
                    Child {
                        service: (svc.def.name.clone(), svc.def.kind),
                        generation: svc.generation,
                        program: svc.program.clone(),
                        avail: true,
                        used: false,
                    },
                );
            }
            Err(e) => {
                error!("spawn {}: {e}", svc.program.display());
                throttle(svc, &self.config);
            }
        }
    }

    fn reap(&mut self) {
        loop {
            let st = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return,
                Ok(st) => st,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            let (pid, normal, why) = match st {
                WaitStatus::Exited(pid, 0) => (pid, true, String::new()),
                WaitStatus::Exited(pid, code) => (pid, false, format!("exit status {code}")),
                WaitStatus::Signaled(pid, sig, _) => {
                    (pid, false, format!("killed by signal {}", sig as i32))
                }
                _ => continue,
            };
            let Some(child) = self.children.remove(&pid.as_raw()) else {
                continue;
            };
            if !normal {
                warn!("process {} pid {pid} {why}", child.program.display());
            }
            let Some(svc) = self.services.iter_mut().find(|s| {
                (&s.def.name, s.def.kind) == (&child.service.0, child.service.1)
                    && s.generation == child.generation
            }) else {
                continue;
            };
            svc.total = svc.total.saturating_sub(1);
            if child.avail {
                svc.avail = svc.avail.saturating_sub(1);
            }
            if !normal && !child.used {
                warn!(
                    "{}: bad command startup -- throttling",
                    child.program.display()
                );
                throttle(svc, &self.config);
            } else {
                svc.failures = 0;
            }
            // A trigger service (qmgr, pickup) must come back without
            // waiting a whole wakeup interval.
            if svc.def.wakeup.is_some() && svc.total == 0 {
                svc.next_wakeup = Some(svc.throttled_until.unwrap_or_else(Instant::now));
            }
        }
    }

    fn reload(&mut self) {
        let loaded = match load(&self.common) {
            Ok(l) => l,
            Err(e) => {
                error!("reload: {e} -- keeping the old configuration");
                return;
            }
        };
        if loaded.config.path("queue_directory") != self.config.path("queue_directory") {
            error!(
                "reload: queue_directory cannot change while running -- restart instead; keeping the old configuration"
            );
            return;
        }
        let mut old: HashMap<(String, ServiceKind), Svc> = self
            .services
            .drain(..)
            .map(|s| ((s.def.name.clone(), s.def.kind), s))
            .collect();
        let generation = self.generation + 1;
        let snapshot_dir = match snapshot(&self.config.path("queue_directory"), generation, &loaded)
        {
            Ok(d) => d,
            Err(e) => {
                error!("reload: {e} -- keeping the old configuration");
                self.services = old.into_values().collect();
                self.services.sort_by_key(|s| s.def.line);
                return;
            }
        };
        let Loaded { config, table, .. } = loaded;
        match build_services(&config, table, generation, &mut old) {
            Ok(services) => {
                // What is left of the old table went away: close its
                // listeners and status channels (its processes exit when
                // idle) and remove its sockets.
                for (_, s) in old {
                    if let Some(p) = &s.socket_path
                        && !services.iter().any(|n| n.socket_path.as_ref() == Some(p))
                    {
                        let _ = std::fs::remove_file(p);
                    }
                }
                self.services = services;
                self.generation = generation;
                self.snapshot_dir = snapshot_dir;
                if let Err(e) = postern_server::init_logging("master", &config) {
                    error!("reload: logging: {e}");
                }
                self.config = config;
                info!(
                    "reload -- version {}, configuration {}",
                    crate::VERSION,
                    self.common.config_dir.display()
                );
                self.log_services();
            }
            Err(e) => {
                error!("reload: {e} -- keeping the old configuration");
                // build_services put back every listener it borrowed.
                self.services = old.into_values().collect();
                self.services.sort_by_key(|s| s.def.line);
            }
        }
    }

    fn stop(&mut self, signo: i32) {
        info!("terminating on signal {signo}");
        for pid in self.children.keys() {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !self.children.is_empty() && Instant::now() < deadline {
            self.reap_quietly();
            std::thread::sleep(Duration::from_millis(20));
        }
        for (pid, c) in &self.children {
            warn!(
                "process {} pid {pid} did not stop -- killing it",
                c.program.display()
            );
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        while !self.children.is_empty() {
            match waitpid(Pid::from_raw(-1), None) {
                Ok(st) => {
                    if let Some(pid) = st.pid() {
                        self.children.remove(&pid.as_raw());
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    /// Reaps without logging: processes we told to stop.
    fn reap_quietly(&mut self) {
        while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            match st.pid() {
                Some(pid) => {
                    self.children.remove(&pid.as_raw());
                }
                None => return,
            }
        }
    }
}

fn throttle(svc: &mut Svc, config: &Config) {
    svc.failures = svc.failures.saturating_add(1);
    let limit = config.time("service_throttle_time");
    let shift = svc.failures.saturating_sub(1).min(16);
    let delay = Duration::from_secs(1u64 << shift).min(limit);
    svc.throttled_until = Some(Instant::now() + delay);
}

/// Resolves a service's program: a bare name lives in `daemon_directory`.
fn program_path(config: &Config, command: &str) -> PathBuf {
    if command.contains('/') {
        PathBuf::from(command)
    } else {
        config.path("daemon_directory").join(command)
    }
}

/// Builds the run-time table. Listeners of `old` services whose name,
/// type and address are unchanged are taken over (and removed from `old`);
/// on error every taken listener is put back so the caller can keep the
/// old table.
fn build_services(
    config: &Config,
    table: MasterTable,
    generation: u32,
    old: &mut HashMap<(String, ServiceKind), Svc>,
) -> Result<Vec<Svc>, String> {
    let queue_dir = config.path("queue_directory");
    let mut built: Vec<Svc> = Vec::new();
    let mut taken: Vec<Svc> = Vec::new();
    let mut failure = None;
    for def in table.services {
        let program = program_path(config, &def.command);
        if let Err(e) = check_program(&program) {
            failure = Some(format!(
                "{}:{}: service {}: command {}: {e}",
                table.file.display(),
                def.line,
                def.name,
                program.display()
            ));
            break;
        }
        let key = (def.name.clone(), def.kind);
        let reuse = old.get(&key).is_some_and(|o| o.def.listen == def.listen);
        let (listeners, socket_path) = if reuse {
            let Some(mut o) = old.remove(&key) else {
                unreachable!("checked above")
            };
            let l = match o.listeners.iter().map(|l| l.try_clone()).collect() {
                Ok(l) => l,
                Err(e) => {
                    failure = Some(format!("service {}: {e}", def.name));
                    old.insert(key, o);
                    break;
                }
            };
            let p = o.socket_path.take();
            o.socket_path.clone_from(&p);
            taken.push(o);
            (l, p)
        } else {
            match open_listener(&queue_dir, &def) {
                Ok(x) => x,
                Err(e) => {
                    failure = Some(format!("service {}: {e}", def.name));
                    break;
                }
            }
        };
        let (status, child_end) = match socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(p) => p,
            Err(e) => {
                failure = Some(format!("status channel: {e}"));
                break;
            }
        };
        let next_wakeup = def.wakeup.map(|_| Instant::now());
        built.push(Svc {
            program,
            listeners,
            status,
            child_end,
            socket_path,
            generation,
            total: 0,
            avail: 0,
            failures: 0,
            throttled_until: None,
            next_wakeup,
            limit_warned: None,
            def,
        });
    }
    if let Some(e) = failure {
        for o in taken {
            old.insert((o.def.name.clone(), o.def.kind), o);
        }
        return Err(e);
    }
    // The old services whose listeners were taken over are dropped here:
    // their status channels close, so their processes exit when idle.
    drop(taken);
    Ok(built)
}

fn check_program(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err("not an executable file".into());
    }
    Ok(())
}

fn open_listener(
    queue_dir: &Path,
    def: &Service,
) -> Result<(Vec<OwnedFd>, Option<PathBuf>), String> {
    match (&def.kind, &def.listen) {
        (ServiceKind::Inet, Listen::Inet(addrs)) => {
            if addrs.is_empty() {
                return Err("no listen address".into());
            }
            let fds = addrs
                .iter()
                .map(listen::inet)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            Ok((fds, None))
        }
        (_, Listen::Unix(rel)) => {
            let path = queue_dir.join(rel);
            let fd = listen::unix(&path).map_err(|e| e.to_string())?;
            Ok((vec![fd], Some(path)))
        }
        (kind, _) => Err(format!("{} service without a socket path", kind.as_str())),
    }
}
