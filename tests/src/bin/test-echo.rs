//! test-echo - a line service for master's tests, on the single-server
//! skeleton.
//!
//! Greets with `220 SERVICE PID GENERATION`, then answers each line:
//! `GET name` with `250 value` (the effective configuration parameter),
//! `SLEEP n` after n seconds, `ID` with `250 uid=U gid=G groups=N`,
//! `EXISTS path` with `250 yes` or `250 no` (to see a chroot), `QUIT` with
//! `221` and a close, anything else with `250 line`.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use postern_server::{Conn, Context, single};

fn serve(conn: Conn, ctx: &Context) {
    let _ = conn.set_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = conn_clone(&conn) else {
        return;
    };
    // One write per line: clients may read a line per segment.
    let greeting = format!(
        "220 {} {} {}\r\n",
        ctx.args.service,
        std::process::id(),
        ctx.args.generation
    );
    let _ = out.write_all(greeting.as_bytes());
    let mut lines = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end();
        let reply = if let Some(name) = cmd.strip_prefix("GET ") {
            format!("250 {}", ctx.config.str(name.trim()))
        } else if let Some(n) = cmd.strip_prefix("SLEEP ") {
            std::thread::sleep(Duration::from_secs(n.trim().parse().unwrap_or(1)));
            "250 slept".to_string()
        } else if cmd == "ID" {
            format!(
                "250 uid={} gid={} groups={}",
                nix::unistd::getuid(),
                nix::unistd::getgid(),
                nix::unistd::getgroups().map(|g| g.len()).unwrap_or(0)
            )
        } else if let Some(path) = cmd.strip_prefix("EXISTS ") {
            let yes = std::path::Path::new(path.trim()).exists();
            format!("250 {}", if yes { "yes" } else { "no" })
        } else if cmd.eq_ignore_ascii_case("QUIT") {
            let _ = out.write_all(b"221 bye\r\n");
            return;
        } else {
            format!("250 {cmd}")
        };
        if out.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
            return;
        }
    }
}

fn conn_clone(conn: &Conn) -> std::io::Result<Conn> {
    Ok(match conn {
        Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        Conn::Unix(s) => Conn::Unix(s.try_clone()?),
    })
}

fn main() {
    single::run("test-echo", |_ctx| Ok(serve))
}
