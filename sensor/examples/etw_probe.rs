//! `etw_probe [SECONDS]`: runs the Windows ETW sensor for a while (default
//! 30 s) and prints every event as a trawl NDJSON trace line on stdout, with
//! the sensor's counters on stderr. A way to see what the live sensor
//! produces on a Windows machine before `trawl watch` is wired to it; it is
//! also what proves, in CI, that the ferrisetw glue links into a `.exe`.
//!
//! Run it from an elevated console:
//! `cargo run --release --example etw_probe -- 60 > probe.ndjson`.
//!
//! Events go from the ETW callbacks through a bounded queue (full: dropped
//! and counted, as the live pipeline does) to this thread, which adds the PE
//! version strings (`OriginalFileName`, …) — file I/O stays off the callback
//! threads.

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    use trawl_sensor::etw::enrich::{enrich_from_image, Enriched};
    use trawl_sensor::etw::EtwOptions;

    let seconds: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 30,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: etw_probe [SECONDS]");
            return std::process::ExitCode::from(2);
        }
    };
    let (tx, rx) = mpsc::sync_channel(65_536);
    let dropped = Arc::new(AtomicU64::new(0));
    let d = Arc::clone(&dropped);
    let emit = Arc::new(move |ev| {
        if tx.try_send(ev).is_err() {
            d.fetch_add(1, Ordering::Relaxed);
        }
    });
    let session = match trawl_sensor::windows::start(&EtwOptions::default(), emit) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("etw_probe: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut next_stats = Instant::now() + Duration::from_secs(10);
    let (mut enriched, mut enrich_failed) = (0u64, 0u64);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write = |mut ev, enriched: &mut u64, failed: &mut u64| {
        match enrich_from_image(&mut ev) {
            Enriched::Added => *enriched += 1,
            Enriched::Failed(e) => {
                *failed += 1;
                tracing_free_debug(&e);
            }
            Enriched::NoVersionInfo | Enriched::NotApplicable => {}
        }
        let _ = serde_json::to_writer(&mut out, &ev);
        let _ = out.write_all(b"\n");
    };
    while Instant::now() < deadline {
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(200)) {
            write(ev, &mut enriched, &mut enrich_failed);
        }
        if Instant::now() >= next_stats {
            eprintln!("{}", session.stats());
            next_stats += Duration::from_secs(10);
        }
    }
    let stats = session.stop();
    while let Ok(ev) = rx.try_recv() {
        write(ev, &mut enriched, &mut enrich_failed);
    }
    let _ = out.flush();
    eprintln!("{stats}");
    eprintln!(
        "etw_probe: queue drops {}, version strings added {enriched}, images unreadable {enrich_failed}",
        dropped.load(Ordering::Relaxed)
    );
    std::process::ExitCode::SUCCESS
}

#[cfg(windows)]
fn tracing_free_debug(e: &trawl_sensor::etw::pe::PeError) {
    if std::env::var_os("ETW_PROBE_VERBOSE").is_some() {
        eprintln!("etw_probe: {e}");
    }
}

#[cfg(not(windows))]
fn main() -> std::process::ExitCode {
    eprintln!("etw_probe: the ETW sensor runs only on Windows");
    std::process::ExitCode::from(1)
}
