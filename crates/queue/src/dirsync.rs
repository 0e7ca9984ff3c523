//! Directory fsyncs started early, in a helper thread.
//!
//! A new queue file has its name in the queue directory from the start
//! (the writer links it under its queue id before any content), so the
//! directory's fsync need not wait for the content: it runs here while
//! the message is still being received, and [`Pending::wait`] at commit
//! usually finds it done. The client then waits for one flush (the
//! file's) instead of two in a row.

use std::fs::File;
use std::io;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

type Slot = Arc<(Mutex<Option<io::Result<()>>>, Condvar)>;

/// The helper thread's queue of directories to fsync.
type Queue = Mutex<Sender<(File, Slot)>>;

/// A directory fsync under way.
#[derive(Debug)]
pub(crate) struct Pending(Slot);

impl Pending {
    /// Waits for the fsync to finish and returns its result.
    pub(crate) fn wait(self) -> io::Result<()> {
        let (lock, cv) = &*self.0;
        let mut done = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = done.take() {
                return result;
            }
            done = cv.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The helper thread's queue (one thread per process, started on first
/// use); `None` when it could not be started.
fn helper() -> Option<&'static Queue> {
    static HELPER: OnceLock<Option<Queue>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let (tx, rx) = channel::<(File, Slot)>();
            std::thread::Builder::new()
                .name("dirsync".into())
                .spawn(move || {
                    for (dir, slot) in rx {
                        let result = dir.sync_all();
                        let (lock, cv) = &*slot;
                        *lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                        cv.notify_one();
                    }
                })
                .ok()?;
            Some(Mutex::new(tx))
        })
        .as_ref()
}

/// Starts an fsync of the directory `dir` (a handle of its own is made);
/// where no helper thread can run, the fsync is done here and now.
pub(crate) fn start(dir: &File) -> Pending {
    let slot: Slot = Arc::new((Mutex::new(None), Condvar::new()));
    let sent = match (helper(), dir.try_clone()) {
        (Some(tx), Ok(own)) => tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((own, Arc::clone(&slot)))
            .is_ok(),
        _ => false,
    };
    if !sent {
        *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.sync_all());
    }
    Pending(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsyncs_in_the_background_and_reports() {
        let d = tempfile::tempdir().unwrap();
        let dir = File::open(d.path()).unwrap();
        let pending: Vec<Pending> = (0..4).map(|_| start(&dir)).collect();
        for p in pending {
            p.wait().unwrap();
        }
    }
}
