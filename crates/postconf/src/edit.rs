//! `postconf -e` and `-X`: editing `main.toml` without losing its comments
//! or layout (Postfix `postconf_edit.c`).
//!
//! The file is edited as a TOML document ([`toml_edit::DocumentMut`]), so
//! only the changed values change. The result is loaded exactly as the
//! daemons load it ([`Config::parse`]) before anything is written; then it
//! goes to a temporary file in the same directory that is fsynced and
//! renamed over the old one, and the directory is fsynced.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

use postern_config::{Config, Kind, params, value};
use toml_edit::{Array, DocumentMut, Item, Value};

/// What to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// `-X`: remove these parameters.
    Remove(Vec<String>),
    /// `-e`: set these parameters.
    Set(Vec<(String, String)>),
}

/// Why nothing was changed.
#[derive(Debug)]
pub(crate) enum Error {
    /// The file or the result is not a valid main.toml.
    Invalid(String),
    /// The file could not be read or written.
    Io(String),
}

/// Applies `change` to the main.toml at `path` (created when missing).
pub(crate) fn apply(path: &Path, change: &Change) -> Result<(), Error> {
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && matches!(change, Change::Set(_)) => {
            String::new()
        }
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", path.display()))),
    };
    let new = edit_text(&old, path, change)?;
    if new == old {
        return Ok(());
    }
    // Load the result exactly as every program will.
    Config::parse(&new, path, &[]).map_err(|e| {
        Error::Invalid(format!(
            "{e}; {} not changed",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ))
    })?;
    write_atomically(path, &new).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

/// The edited text.
pub(crate) fn edit_text(text: &str, path: &Path, change: &Change) -> Result<String, Error> {
    let mut doc = DocumentMut::from_str(text).map_err(|e| {
        Error::Invalid(format!(
            "{}: TOML syntax error: {}",
            path.display(),
            e.message()
        ))
    })?;
    match change {
        Change::Set(pairs) => {
            for (name, text) in pairs {
                let param = params::lookup(name).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{name}: unknown parameter; {} not changed",
                        path.display()
                    ))
                })?;
                set(&mut doc, param.name, param.kind, text);
            }
        }
        Change::Remove(names) => {
            for name in names {
                remove(&mut doc, name);
            }
        }
    }
    Ok(doc.to_string())
}

/// Sets `name`, keeping the TOML type the file used for it where the new
/// value fits that type, and the comments around it.
fn set(doc: &mut DocumentMut, name: &str, kind: Kind, text: &str) {
    let table = doc.as_table_mut();
    let Some(old) = table.get_mut(name).and_then(Item::as_value_mut) else {
        table.insert(name, toml_edit::value(text));
        return;
    };
    let mut new = match (&*old, kind) {
        (Value::Integer(_), Kind::Int { .. } | Kind::Size | Kind::Time { .. }) => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(text)),
        (Value::Boolean(_), Kind::Bool) => value::parse_bool(text)
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(text)),
        (Value::Array(_), Kind::List | Kind::NetList) => {
            let mut array = Array::new();
            for word in value::split_list(text) {
                array.push(word);
            }
            Value::Array(array)
        }
        _ => Value::from(text),
    };
    *new.decor_mut() = old.decor().clone();
    *old = new;
}

/// Removes `name`; the comment lines above it are kept, attached to the
/// next parameter (or the end of the file).
fn remove(doc: &mut DocumentMut, name: &str) {
    let table = doc.as_table_mut();
    let Some(prefix) = table.get_key_value(name).map(|(key, _)| {
        key.leaf_decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_owned()
    }) else {
        return;
    };
    let position = table.iter().position(|(k, _)| k == name).unwrap_or(0);
    table.remove(name);
    // Comments carry over with the blank lines around them; a prefix of
    // blank lines only goes with the key.
    if !prefix.contains('#') {
        return;
    }
    let comments = prefix.as_str();
    let next = table.iter().nth(position).map(|(k, _)| k.to_owned());
    let follows = match next.as_deref().and_then(|k| table.key_mut(k)) {
        Some(mut key) => {
            let old = key
                .leaf_decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_owned();
            key.leaf_decor_mut().set_prefix(format!("{comments}{old}"));
            true
        }
        None => false,
    };
    if !follows {
        let old = doc.trailing().as_str().unwrap_or_default().to_owned();
        doc.set_trailing(format!("{comments}{old}"));
    }
}

/// Writes `text` to `path` through a temporary file and rename(2), with
/// the old file's permissions (0644 for a new file).
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let tmp = dir.join(format!(
        ".{}.postconf.{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        postern_util::fs::sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Site settings\n\
                        \n\
                        # Who we are.\n\
                        myhostname = \"mail.example.com\"   # the FQDN\n\
                        \n\
                        # Bigger mail.\n\
                        message_size_limit = 20480000\n\
                        mydestination = [\"a.example\", \"b.example\"]\n\
                        disable_vrfy_command = true\n";

    fn set(pairs: &[(&str, &str)]) -> String {
        let change = Change::Set(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        );
        edit_text(FILE, Path::new("/etc/postern/main.toml"), &change).unwrap()
    }

    #[test]
    fn set_keeps_comments_and_types() {
        let out = set(&[
            ("myhostname", "mx.example.com"),
            ("message_size_limit", "30000000"),
            ("mydestination", "c.example, d.example"),
            ("disable_vrfy_command", "no"),
            ("relayhost", "[smarthost.example]"),
        ]);
        assert_eq!(
            out,
            "# Site settings\n\
             \n\
             # Who we are.\n\
             myhostname = \"mx.example.com\"   # the FQDN\n\
             \n\
             # Bigger mail.\n\
             message_size_limit = 30000000\n\
             mydestination = [\"c.example\", \"d.example\"]\n\
             disable_vrfy_command = false\n\
             relayhost = \"[smarthost.example]\"\n"
        );
        // A value that does not fit the old TOML type becomes a string,
        // for validation to judge.
        let out = set(&[("message_size_limit", "ten")]);
        assert!(out.contains("message_size_limit = \"ten\"\n"), "{out}");
    }

    #[test]
    fn remove_keeps_the_comments_above() {
        let change = Change::Remove(vec!["message_size_limit".into(), "nosuch".into()]);
        let out = edit_text(FILE, Path::new("/x"), &change).unwrap();
        assert_eq!(
            out,
            "# Site settings\n\
             \n\
             # Who we are.\n\
             myhostname = \"mail.example.com\"   # the FQDN\n\
             \n\
             # Bigger mail.\n\
             mydestination = [\"a.example\", \"b.example\"]\n\
             disable_vrfy_command = true\n"
        );
        let change = Change::Remove(vec!["relayhost".into()]);
        let out = edit_text(
            "mail_name = \"x\"\n# last\nrelayhost = \"y\"\n",
            Path::new("/x"),
            &change,
        )
        .unwrap();
        assert_eq!(out, "mail_name = \"x\"\n# last\n");
    }

    #[test]
    fn refuses_bad_values_and_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("main.toml");
        fs::write(&path, FILE).unwrap();
        let bad = Change::Set(vec![("message_size_limit".into(), "ten".into())]);
        match apply(&path, &bad) {
            Err(Error::Invalid(m)) => assert!(
                m.contains("message_size_limit: expected a size in bytes, found \"ten\""),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let unknown = Change::Set(vec![("no_such_thing".into(), "1".into())]);
        assert!(matches!(apply(&path, &unknown), Err(Error::Invalid(_))));
        assert_eq!(fs::read_to_string(&path).unwrap(), FILE);
        let good = Change::Set(vec![("mail_name".into(), "Test".into())]);
        apply(&path, &good).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .ends_with("mail_name = \"Test\"\n")
        );
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
