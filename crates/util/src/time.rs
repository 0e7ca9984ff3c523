//! The local time zone, read once per process.
//!
//! `jiff::tz::TimeZone::system()` finds the zone's name through jiff's
//! zone database, and building that database walks all of
//! `/usr/share/zoneinfo`: about 0.6 ms of every daemon start (a quarter of
//! a new cleanup's cost), paid again by every process that `max_use`
//! replaces. The zone itself is one file, `/etc/localtime`, read here
//! once; the name only labels it (the formats used print offsets and
//! abbreviations, which come from the file).

use std::sync::OnceLock;

use jiff::tz::TimeZone;

/// Where the system's zone is (a symlink into the zone files, usually).
const LOCALTIME: &str = "/etc/localtime";

/// The process's local time zone: `TZ` when set (jiff's own rules), else
/// `/etc/localtime`, else UTC. Read at the first call (daemons call it
/// before a chroot, when they first log) and kept.
pub fn local_zone() -> TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| {
        if std::env::var_os("TZ").is_some() {
            return TimeZone::system();
        }
        read_zone(LOCALTIME).unwrap_or(TimeZone::UTC)
    })
    .clone()
}

/// Now, in the local time zone.
pub fn now_local() -> jiff::ZonedDateTime {
    jiff::Timestamp::now().to_zoned_datetime(local_zone())
}

/// The TZif file `path`, named after the zone file it links to.
fn read_zone(path: &str) -> Option<TimeZone> {
    let data = std::fs::read(path).ok()?;
    let target = std::fs::read_link(path).ok();
    let name = target
        .as_deref()
        .and_then(|t| t.to_str())
        .and_then(|t| t.rfind("zoneinfo/").map(|i| &t[i + "zoneinfo/".len()..]))
        .unwrap_or("localtime");
    TimeZone::tzif(name, &data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_file_is_read_with_its_offsets() {
        let d = tempfile::tempdir().unwrap();
        // Any zone file of this machine will do; UTC has offset zero.
        let Ok(utc) = std::fs::read("/usr/share/zoneinfo/UTC") else {
            return;
        };
        let path = d.path().join("zoneinfo/Etc/UTC");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, utc).unwrap();
        let link = d.path().join("localtime");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let tz = read_zone(link.to_str().unwrap()).unwrap();
        assert_eq!(tz.iana_name(), Some("Etc/UTC"));
        let t = jiff::Timestamp::from_second(0)
            .unwrap()
            .to_zoned_datetime(tz);
        assert_eq!(t.strftime("%H:%M %z").to_string(), "00:00 +0000");
    }

    #[test]
    fn a_missing_zone_file_is_none() {
        assert!(read_zone("/nonexistent/localtime").is_none());
    }
}
