//! test-trigger - a trigger service for master's tests: appends every
//! request it receives to the file named by its first service argument.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use postern_server::Context;
use postern_server::trigger::{self, TriggerService};

struct Recorder {
    file: PathBuf,
}

impl TriggerService for Recorder {
    fn trigger(&mut self, _ctx: &Context, request: &[u8]) {
        if let Ok(mut f) = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.file)
        {
            let _ = f.write_all(request);
        }
    }
}

fn main() {
    trigger::run("test-trigger", |ctx| {
        let file = ctx
            .args
            .rest
            .first()
            .ok_or("usage: test-trigger FILE")?
            .into();
        Ok(Recorder { file })
    })
}
