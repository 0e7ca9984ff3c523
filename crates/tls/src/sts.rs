//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file, an
//! HTTPS fetcher and an on-disk cache.
//!
//! The order of use (§5): look up `_mta-sts.DOMAIN` TXT and read its id
//! ([`txt_id`]); [`Cache::get`] returns the cached policy when it is
//! fresh and has that id, and otherwise calls [`fetch`] and stores the
//! result. A policy in `enforce` mode restricts delivery to MX hosts that
//! [`Policy::matches_mx`] accepts, over TLS with a certificate valid for
//! the MX name (WebPKI, [`crate::client::Policy::Verify`]); `testing`
//! only reports; `none` says the domain withdrew its policy.
//!
//! Limits: the policy file is read up to 64 KiB (§3.3), HTTP headers up
//! to 16 KiB, the whole fetch within the caller's time limit; redirects
//! are not followed (§3.3); only `200` with `Content-Type: text/plain`
//! counts. Domains in cache file names are checked to be DNS names, so
//! a hostile domain cannot name a path.

use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::MaybeTls;
use crate::client::{ClientTls, Policy as TlsPolicy, server_name};

/// Largest policy body (RFC 8461 §3.3: "64 kilobytes").
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
/// Largest HTTP response head.
const MAX_HEAD_SIZE: usize = 16 * 1024;
/// Largest `max_age` (RFC 8461 §3.2: 31557600 seconds, a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// The policy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts with validated TLS.
    Enforce,
    /// Deliver anyway; report failures.
    Testing,
    /// No policy (withdrawn).
    None,
}

impl Mode {
    /// The policy file's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `mx` patterns, lower case, without trailing dots.
    pub mx: Vec<String>,
    /// `max_age` in seconds (at most [`MAX_AGE_LIMIT`]).
    pub max_age: u64,
}

impl Policy {
    /// Parses a policy file (§3.2): `key: value` lines ending in CRLF (LF
    /// accepted), `version: STSv1`, `mode`, `max_age` and, unless the
    /// mode is `none`, at least one `mx`. Unknown keys are ignored; for a
    /// repeated key other than `mx` the first value counts.
    pub fn parse(text: &str) -> Result<Policy, String> {
        if text.len() > MAX_POLICY_SIZE {
            return Err("policy larger than 64 KiB".into());
        }
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("bad policy line \"{}\"", printable(line)));
            };
            let value = value.trim_matches([' ', '\t']);
            match key.trim() {
                "version" => {
                    version.get_or_insert(value);
                }
                "mode" => {
                    mode.get_or_insert(value);
                }
                "max_age" => {
                    max_age.get_or_insert(value);
                }
                "mx" => {
                    if value.is_empty() || value.contains(char::is_whitespace) {
                        return Err(format!("bad mx \"{}\"", printable(value)));
                    }
                    mx.push(value.trim_end_matches('.').to_ascii_lowercase());
                }
                _ => {}
            }
        }
        if version != Some("STSv1") {
            return Err("version is not STSv1".into());
        }
        let mode = match mode {
            Some("enforce") => Mode::Enforce,
            Some("testing") => Mode::Testing,
            Some("none") => Mode::None,
            Some(other) => return Err(format!("unknown mode \"{}\"", printable(other))),
            None => return Err("no mode".into()),
        };
        let max_age = match max_age {
            Some(v) if !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<u64>()
                .map_err(|e| e.to_string())?
                .min(MAX_AGE_LIMIT),
            Some(v) => return Err(format!("bad max_age \"{}\"", printable(v))),
            None => return Err("no max_age".into()),
        };
        if mx.is_empty() && mode != Mode::None {
            return Err("no mx".into());
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether `host` (an MX host name) is allowed (§4.1): an exact match,
    /// or `*.example.com` matching exactly one more label on the left.
    pub fn matches_mx(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => *pattern == host,
            })
    }
}

/// The policy id from the TXT records at `_mta-sts.DOMAIN` (§3.1): of
/// the records, those starting with `v=STSv1`; exactly one must exist,
/// with an `id` of 1 to 32 letters and digits. `None` means "no policy
/// announced".
pub fn txt_id(records: &[String]) -> Option<String> {
    let mut sts = records.iter().filter(|r| r.starts_with("v=STSv1"));
    let record = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    let mut fields = record.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next() != Some("v=STSv1") {
        return None;
    }
    fields.find_map(|f| {
        let id = f.strip_prefix("id=")?;
        let ok = (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| id.to_string())
    })
}

/// Why a fetch failed (TLS-RPT `sts-policy-fetch-error`,
/// `sts-webpki-invalid` or `sts-policy-invalid`).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connecting, the handshake (other than the certificate), reading,
    /// writing, the time limit.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server's certificate is not valid for `mta-sts.DOMAIN`.
    #[error("certificate: {0}")]
    Certificate(String),
    /// Not `200`, wrong content type, too large, bad HTTP.
    #[error("{0}")]
    Http(String),
    /// The body is not a valid policy.
    #[error("invalid policy: {0}")]
    Policy(String),
}

/// Fetches `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` and parses it.
/// `connect` opens the TCP connection to a host and port (443): the
/// caller resolves the name (tests point it at a local server); the
/// certificate is checked against `client`'s CA roots for
/// `mta-sts.DOMAIN`. Everything must be done within `timeout`. Returns the
/// body (to cache) and the policy.
pub fn fetch<C>(
    domain: &str,
    client: &ClientTls,
    timeout: Duration,
    connect: C,
) -> Result<(String, Policy), FetchError>
where
    C: FnOnce(&str, u16, Duration) -> io::Result<TcpStream>,
{
    let deadline = Instant::now() + timeout;
    let host = format!(
        "mta-sts.{}",
        domain.trim_end_matches('.').to_ascii_lowercase()
    );
    let bad = |e: crate::TlsError| FetchError::Http(e.to_string());
    let config = client
        .config(&TlsPolicy::Verify {
            names: vec![host.clone()],
        })
        .map_err(bad)?;
    let name = server_name(&host).map_err(bad)?;
    let sock = connect(&host, 443, timeout)?;
    set_deadline(&sock, deadline)?;
    let mut tls = MaybeTls::Plain(sock).connect(config, name).map_err(|e| {
        let text = e.to_string();
        if text.contains("invalid peer certificate") {
            FetchError::Certificate(text)
        } else {
            FetchError::Io(e)
        }
    })?;
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\n\
         User-Agent: Postern MTA-STS\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())?;
    tls.flush()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        set_deadline(tls.get_ref(), deadline)?;
        let n = tls.read(&mut buf)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(buf.get(..n).unwrap_or_default());
        if response.len() > MAX_HEAD_SIZE + MAX_POLICY_SIZE + 1024 {
            return Err(FetchError::Http("response too large".into()));
        }
        if complete(&response) {
            break;
        }
    }
    let body = parse_response(&response)?;
    let text = String::from_utf8(body).map_err(|_| FetchError::Policy("not UTF-8".into()))?;
    let policy = Policy::parse(&text).map_err(FetchError::Policy)?;
    Ok((text, policy))
}

fn set_deadline(sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "time limit exceeded",
        ));
    }
    sock.set_read_timeout(Some(left))?;
    sock.set_write_timeout(Some(left))
}

/// Whether a response with Content-Length is complete (others end at
/// the end of the connection).
fn complete(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(response.get(..end).unwrap_or_default());
    header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| response.len() >= end + 4 + len)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Checks status and headers, returns the body (de-chunked).
fn parse_response(response: &[u8]) -> Result<Vec<u8>, FetchError> {
    let http = |s: String| FetchError::Http(s);
    let end = find(response, b"\r\n\r\n").ok_or_else(|| http("incomplete HTTP response".into()))?;
    if end > MAX_HEAD_SIZE {
        return Err(http("HTTP header too large".into()));
    }
    let head = String::from_utf8_lossy(response.get(..end).unwrap_or_default()).into_owned();
    let body = response.get(end + 4..).unwrap_or_default();
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(http(format!(
            "not an HTTP response: {}",
            printable(status_line)
        )));
    }
    if status != "200" {
        // Redirects included (RFC 8461 §3.3).
        return Err(http(format!("HTTP status {}", printable(status))));
    }
    let ctype = header(&head, "content-type").unwrap_or_default();
    let media = ctype.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("text/plain") {
        return Err(http(format!(
            "Content-Type is \"{}\", not text/plain",
            printable(ctype)
        )));
    }
    let chunked = header(&head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(body).ok_or_else(|| http("bad chunked encoding".into()))?
    } else {
        match header(&head, "content-length").map(str::parse::<usize>) {
            Some(Ok(len)) => body
                .get(..len)
                .ok_or_else(|| http("body shorter than Content-Length".into()))?
                .to_vec(),
            Some(Err(_)) => return Err(http("bad Content-Length".into())),
            None => body.to_vec(),
        }
    };
    if body.len() > MAX_POLICY_SIZE {
        return Err(http("policy larger than 64 KiB".into()));
    }
    Ok(body)
}

/// Decodes `Transfer-Encoding: chunked`.
fn dechunk(mut input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(input, b"\r\n")?;
        let size_text = std::str::from_utf8(input.get(..eol)?).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        input = input.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        if out.len() + size > MAX_POLICY_SIZE {
            return None;
        }
        out.extend_from_slice(input.get(..size)?);
        input = input.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

fn printable(s: &str) -> String {
    s.chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Where a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Fresh in the cache, same id.
    Cache,
    /// Fetched now (and cached).
    Fetched,
    /// The fetch failed; the cached policy, still within its max_age,
    /// stays in force (§5.1).
    StaleCache,
}

/// What [`Cache::get`] found.
#[derive(Debug)]
pub enum Lookup {
    /// A policy applies (its mode may be `testing` or `none`).
    Found(Policy, Source),
    /// The domain announces no policy and none is cached.
    NoPolicy,
    /// A policy is announced but could not be fetched and none is
    /// cached: deliver as without a policy, and report
    /// (`sts-policy-fetch-error`).
    FetchFailed(FetchError),
}

/// Policies on disk, one file per domain: `ID FETCHED_UNIX_TIME\n` then
/// the policy text. Written to a temporary file and renamed, so readers
/// never see half a file.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir` (created when missing), e.g.
    /// `$data_directory/mta-sts`.
    pub fn new(dir: &Path) -> io::Result<Cache> {
        fs::create_dir_all(dir)?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The policy for `domain` (§5.1). `txt_id` is the id from the TXT
    /// record ([`txt_id`]; `None` when there is none or the lookup
    /// failed); `fetch` is called when the cache cannot answer: nothing
    /// cached, expired, or a different id.
    pub fn get<F>(&self, domain: &str, txt_id: Option<&str>, fetch: F) -> Lookup
    where
        F: FnOnce() -> Result<(String, Policy), FetchError>,
    {
        let now = unix_now();
        let cached = self.read(domain);
        let fresh = cached
            .as_ref()
            .filter(|(_, fetched, p)| now < fetched.saturating_add(p.max_age));
        match (txt_id, fresh) {
            (Some(id), Some((cached_id, _, p))) if cached_id == id => {
                return Lookup::Found(p.clone(), Source::Cache);
            }
            // No TXT record (or no answer): a cached policy lives on
            // until max_age (§5.1: "senders ... continue to use the
            // cached policy").
            (None, Some((_, _, p))) => return Lookup::Found(p.clone(), Source::Cache),
            (None, None) => return Lookup::NoPolicy,
            _ => {}
        }
        let id = txt_id.unwrap_or_default();
        match fetch() {
            Ok((text, policy)) => {
                // A failure to cache is not a failure to deliver.
                let _ = self.write(domain, id, now, &text);
                Lookup::Found(policy, Source::Fetched)
            }
            Err(e) => match fresh {
                Some((_, _, p)) => Lookup::Found(p.clone(), Source::StaleCache),
                None => Lookup::FetchFailed(e),
            },
        }
    }

    fn path(&self, domain: &str) -> Option<PathBuf> {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && !d.starts_with('.')
            && !d.contains("..")
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        ok.then(|| self.dir.join(d))
    }

    fn read(&self, domain: &str) -> Option<(String, u64, Policy)> {
        let path = self.path(domain)?;
        let mut text = String::new();
        fs::File::open(path)
            .ok()?
            .take((MAX_POLICY_SIZE + 200) as u64)
            .read_to_string(&mut text)
            .ok()?;
        let (first, policy) = text.split_once('\n')?;
        let (id, fetched) = first.split_once(' ')?;
        let policy = Policy::parse(policy).ok()?;
        Some((id.to_string(), fetched.parse().ok()?, policy))
    }

    fn write(&self, domain: &str, id: &str, now: u64, text: &str) -> io::Result<()> {
        let path = self
            .path(domain)
            .ok_or_else(|| io::Error::other("not a domain name"))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(format!("{id} {now}\n{text}").as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    }

    #[cfg(test)]
    fn age(&self, domain: &str, seconds: u64) {
        let (id, fetched, _) = self.read(domain).unwrap();
        let path = self.path(domain).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let rest = text.split_once('\n').unwrap().1;
        fs::write(&path, format!("{id} {}\n{rest}", fetched - seconds)).unwrap();
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
