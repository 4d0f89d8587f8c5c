//! The thread each Linux source reads its kernel interface on, and how it
//! is stopped: a flag the thread checks at least every [`POLL_MS`].

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Longest a reader sleeps before it looks at its stop flag again.
pub const POLL_MS: i32 = 100;

/// A running reader thread.
pub struct Reader {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts `body` on a thread named `name`; `body` returns once the flag
    /// it is given is set.
    pub fn spawn(
        name: &str,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(&flag))?;
        Ok(Reader {
            stop,
            handle: Some(handle),
        })
    }

    /// Sets the flag and waits for the thread to end.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits until `fd` is readable or [`POLL_MS`] have passed.
pub fn wait_readable(fd: RawFd) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
}
