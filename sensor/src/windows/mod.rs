//! The Windows live sensor: two ETW sessions through ferrisetw, feeding the
//! platform-free converter of [`crate::etw`].
//!
//! - a kernel session (`KernelTrace` with `kernel_providers::PROCESS_PROVIDER`)
//!   for the MOF process events: command line, user, parent;
//! - a user session (`UserTrace`) with Microsoft-Windows-Kernel-Process
//!   (events 1 and 2: full image path, stop) and Microsoft-Windows-Kernel-File
//!   (event 30, and 12 when overwrites are asked for).
//!
//! Callbacks only parse the record, convert it and push the events through
//! `emit` (which must not block: the live pipeline's intake drops and counts
//! when full). A ticker thread releases start halves whose partner is late.
//! Both sessions need an elevated process.
//!
//! ```no_run
//! use std::sync::Arc;
//! use trawl_sensor::etw::EtwOptions;
//!
//! let session = trawl_sensor::windows::start(
//!     &EtwOptions::default(),
//!     Arc::new(|ev: trawl_engine::event::Event| println!("{ev:?}")),
//! )?;
//! std::thread::sleep(std::time::Duration::from_secs(10));
//! eprintln!("{}", session.stats());
//! session.stop();
//! # Ok::<(), trawl_sensor::etw::EtwError>(())
//! ```

mod records;
mod system;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrisetw::provider::{kernel_providers, Provider};
use ferrisetw::schema_locator::SchemaLocator;
use ferrisetw::trace::{
    stop_trace_by_name, KernelTrace, TraceError, TraceProperties, TraceTrait, UserTrace,
};
use ferrisetw::{EventRecord, GUID};
use trawl_engine::event::Event;

use crate::etw::convert::{Converter, ConverterConfig};
use crate::etw::props::EtwRecord;
use crate::etw::sid::AccountNames;
pub use crate::etw::{EtwError, EtwOptions, EtwStats};

/// Microsoft-Windows-Kernel-Process.
const KERNEL_PROCESS: GUID = GUID::from_u128(0x22fb2cd6_0e7b_422b_a0c7_2fad1fd0e716);
/// Microsoft-Windows-Kernel-File.
const KERNEL_FILE: GUID = GUID::from_u128(0xedd08927_9cc4_4e65_b970_c2560fb5c289);
/// `WINEVENT_KEYWORD_PROCESS`: process start and stop.
const KEYWORD_PROCESS: u64 = 0x10;
/// `KERNEL_FILE_KEYWORD_CREATE_NEW_FILE` (event 30).
const KEYWORD_CREATE_NEW_FILE: u64 = 0x1000;
/// `KERNEL_FILE_KEYWORD_CREATE` (event 12, every open).
const KEYWORD_CREATE: u64 = 0x80;
/// How often lone start halves are released and the table purged.
const TICK: Duration = Duration::from_millis(500);
/// At most this often the drive-letter table is rebuilt after a miss.
const DEVICE_REFRESH: Duration = Duration::from_secs(30);

/// The emit callback: the live pipeline's intake.
pub type Emit = Arc<dyn Fn(Event) + Send + Sync>;

/// State the callbacks share.
struct Shared {
    converter: Mutex<Converter>,
    emit: Emit,
    seen: AtomicU64,
    unreadable: AtomicU64,
}

impl Shared {
    fn converter(&self) -> MutexGuard<'_, Converter> {
        // A panic while holding the lock is caught and counted; the state it
        // left is still usable, so a poisoned lock is taken as it is.
        self.converter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One ETW record: parse, convert, push. Never blocks on I/O and never
    /// lets a panic reach ferrisetw (which would end the process).
    fn on_record(
        &self,
        record: &EventRecord,
        locator: &SchemaLocator,
        read: fn(&EventRecord, &SchemaLocator) -> Result<Option<EtwRecord>, records::Unreadable>,
    ) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        let done = catch_unwind(AssertUnwindSafe(|| match read(record, locator) {
            Ok(Some(rec)) => {
                let emit = &self.emit;
                self.converter()
                    .on_record(rec, Instant::now(), &mut |ev| emit(ev));
                true
            }
            Ok(None) => true,
            Err(e) => {
                tracing::debug!(shape = e.shape, reason = %e.reason, "unreadable ETW record");
                false
            }
        }));
        if !matches!(done, Ok(true)) {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A running Windows sensor. Dropping it stops the sessions too, but
/// [`EtwSession::stop`] also releases pending starts and returns the final
/// counters.
pub struct EtwSession {
    kernel: Option<KernelTrace>,
    user: Option<UserTrace>,
    names: [String; 2],
    shared: Arc<Shared>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for EtwSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtwSession")
            .field("names", &self.names)
            .finish()
    }
}

/// This machine's DNS name, for the `host` of live events (`None` if the
/// system will not say).
pub fn host_name() -> Option<String> {
    system::host_name()
}

/// Starts the sessions and begins pushing events into `emit`.
pub fn start(opts: &EtwOptions, emit: Emit) -> Result<EtwSession, EtwError> {
    let mut converter = Converter::new(
        ConverterConfig {
            join_timeout: opts.join_timeout,
            host: opts.host.clone(),
            ..ConverterConfig::default()
        },
        system::device_map(),
        AccountNames::new(Box::new(system::account_name), 4096),
    );
    converter.seed(system::process_snapshot());
    let shared = Arc::new(Shared {
        converter: Mutex::new(converter),
        emit,
        seen: AtomicU64::new(0),
        unreadable: AtomicU64::new(0),
    });
    let kernel_name = format!("{}-kernel", opts.session_prefix);
    let user_name = format!("{}-user", opts.session_prefix);
    // A session of the same name left by a run that crashed would make the
    // start fail; it is ours, so stop it (an error just means there was none).
    let _ = stop_trace_by_name(&kernel_name);
    let _ = stop_trace_by_name(&user_name);
    let properties = TraceProperties {
        buffer_size: opts.buffer_kb,
        flush_timer: Duration::from_secs(1),
        ..TraceProperties::default()
    };
    let mut threads = Vec::new();

    let s = Arc::clone(&shared);
    let processes = Provider::kernel(&kernel_providers::PROCESS_PROVIDER)
        .add_callback(move |r: &EventRecord, l: &SchemaLocator| {
            s.on_record(r, l, records::mof_process)
        })
        .build();
    let (kernel, handle) = KernelTrace::new()
        .named(kernel_name.clone())
        .set_trace_properties(properties)
        .enable(processes)
        .start()
        .map_err(|e| session_error(&kernel_name, e))?;
    threads.push(process_thread(kernel_name.clone(), move || {
        KernelTrace::process_from_handle(handle)
    }));

    let s = Arc::clone(&shared);
    let kernel_process = Provider::by_guid(KERNEL_PROCESS)
        .any(KEYWORD_PROCESS)
        .add_callback(move |r: &EventRecord, l: &SchemaLocator| {
            s.on_record(r, l, records::kernel_process)
        })
        .build();
    let s = Arc::clone(&shared);
    let file_keywords = KEYWORD_CREATE_NEW_FILE
        | if opts.file_overwrites {
            KEYWORD_CREATE
        } else {
            0
        };
    let kernel_file = Provider::by_guid(KERNEL_FILE)
        .any(file_keywords)
        .add_callback(move |r: &EventRecord, l: &SchemaLocator| {
            s.on_record(r, l, records::kernel_file)
        })
        .build();
    let (user, handle) = UserTrace::new()
        .named(user_name.clone())
        .set_trace_properties(properties)
        .enable(kernel_process)
        .enable(kernel_file)
        .start()
        .map_err(|e| session_error(&user_name, e))?;
    threads.push(process_thread(user_name.clone(), move || {
        UserTrace::process_from_handle(handle)
    }));

    let stopping = Arc::new(AtomicBool::new(false));
    threads.push(ticker(Arc::clone(&shared), Arc::clone(&stopping)));
    tracing::info!(kernel = %kernel_name, user = %user_name, "ETW sessions started");
    Ok(EtwSession {
        kernel: Some(kernel),
        user: Some(user),
        names: [kernel_name, user_name],
        shared,
        stopping,
        threads,
    })
}

impl EtwSession {
    /// The counters so far, ETW's own losses included.
    pub fn stats(&self) -> EtwStats {
        let (mut events_lost, mut buffers_lost) = (0, 0);
        for name in &self.names {
            if let Some((e, b)) = system::session_losses(name) {
                events_lost += e;
                buffers_lost += b;
            }
        }
        EtwStats {
            events_seen: self.shared.seen.load(Ordering::Relaxed),
            events_lost,
            buffers_lost,
            conversion_failures: self.shared.unreadable.load(Ordering::Relaxed),
            convert: self.shared.converter().stats(),
        }
    }

    /// Stops both sessions, releases the starts still waiting for a partner
    /// (through `emit`) and returns the final counters.
    pub fn stop(mut self) -> EtwStats {
        // Read ETW's counters while the sessions still exist.
        let mut stats = self.stats();
        self.stopping.store(true, Ordering::Relaxed);
        for (name, result) in [
            (&self.names[0], self.kernel.take().map(KernelTrace::stop)),
            (&self.names[1], self.user.take().map(UserTrace::stop)),
        ] {
            if let Some(Err(e)) = result {
                tracing::warn!(session = %name, error = ?e, "stopping ETW session failed");
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let emit = Arc::clone(&self.shared.emit);
        let mut conv = self.shared.converter();
        conv.drain(Instant::now(), &mut |ev| emit(ev));
        stats.events_seen = self.shared.seen.load(Ordering::Relaxed);
        stats.conversion_failures = self.shared.unreadable.load(Ordering::Relaxed);
        stats.convert = conv.stats();
        stats
    }
}

impl Drop for EtwSession {
    /// A session dropped without [`EtwSession::stop`] still ends its ticker;
    /// the traces stop themselves when dropped.
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

fn session_error(session: &str, e: TraceError) -> EtwError {
    let session = session.to_owned();
    match e {
        TraceError::EtwNativeError(ferrisetw::native::EvntraceNativeError::IoError(io))
            if io.raw_os_error() == Some(5) =>
        {
            EtwError::AccessDenied { session }
        }
        other => EtwError::Session {
            session,
            reason: format!("{other:?}"),
        },
    }
}

/// Runs `ProcessTrace` (blocking until the session stops) on its own thread.
fn process_thread(
    name: String,
    process: impl FnOnce() -> Result<(), TraceError> + Send + 'static,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("etw {name}"))
        .spawn(move || {
            if let Err(e) = process() {
                tracing::error!(session = %name, error = ?e, "ETW session stopped delivering events");
            }
        })
        .expect("spawning a thread")
}

/// Releases late start halves, purges the table, and rebuilds the drive
/// table when paths stopped mapping (a volume was mounted).
fn ticker(shared: Arc<Shared>, stopping: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("etw ticker".into())
        .spawn(move || {
            let mut unmapped_seen = 0;
            let mut last_refresh = Instant::now();
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                let now = Instant::now();
                let unmapped = shared.converter().unmapped_paths();
                let refresh =
                    unmapped > unmapped_seen && now.duration_since(last_refresh) >= DEVICE_REFRESH;
                // Built outside the lock: it makes system calls.
                let devices = refresh.then(system::device_map);
                let emit = &shared.emit;
                let mut conv = shared.converter();
                if let Some(d) = devices {
                    conv.set_devices(d);
                    unmapped_seen = unmapped;
                    last_refresh = now;
                }
                conv.tick(now, &mut |ev| emit(ev));
            }
        })
        .expect("spawning a thread")
}
