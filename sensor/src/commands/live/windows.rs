//! The Windows side of `trawl watch` / `trawl record`: the ETW sessions of
//! [`trawl_sensor::windows`] push into the live pipeline's intake, and the
//! hash workers read `OriginalFileName` (and the other version strings) from
//! each started image.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use trawl_engine::event::Event;
use trawl_sensor::etw::enrich::{enrich_from_image, EnrichOutcomes, Enriched};
use trawl_sensor::etw::watch_paths::WatchedPaths;
use trawl_sensor::etw::{EtwOptions, EtwStats};
use trawl_sensor::windows::EtwSession;

use crate::live::enrich::ImageEnricher;
use crate::live::intake::Intake;
use crate::live::proctable::ProcessInfo;
use crate::live::run::{LivePlatform, ProcessSource, SourceHandle, SourceOptions};

/// ETW for processes and file creates; the PE reader on the hash workers.
#[derive(Default)]
pub struct WindowsPlatform {
    pe: Arc<PeVersionEnricher>,
}

impl LivePlatform for WindowsPlatform {
    fn start_sources(
        &self,
        intake: &Intake,
        options: &SourceOptions,
    ) -> anyhow::Result<(Vec<Box<dyn SourceHandle>>, String)> {
        // ETW is the only process source on Windows (`--source etw`).
        match options.process_source {
            Some(ProcessSource::Etw) | None => {}
        }
        let mut watched = Vec::new();
        for p in &options.watch {
            let abs = std::path::absolute(p)
                .and_then(|abs| std::fs::metadata(&abs).map(|_| abs))
                .with_context(|| format!("--watch {}", p.display()))?;
            watched.push(abs.to_string_lossy().into_owned());
        }
        let filter = WatchedPaths::new(&watched);
        let outside = Arc::new(AtomicU64::new(0));
        let (intake, out) = (intake.clone(), Arc::clone(&outside));
        // Runs on ETW's callback threads: a filter and a non-blocking push.
        let emit = Arc::new(move |ev: Event| {
            if filter.keeps(&ev) {
                intake.push(ev);
            } else {
                out.fetch_add(1, Ordering::Relaxed);
            }
        });
        let session = trawl_sensor::windows::start(&EtwOptions::default(), emit)?;
        let files = if watched.is_empty() {
            "file creates on every drive".to_owned()
        } else {
            format!("file creates under {}", watched.join(", "))
        };
        let source = EtwSource {
            session: Some(session),
            last: EtwStats::default(),
            outside_watch: outside,
        };
        Ok((
            vec![Box::new(source)],
            format!("watching process events and {files} by ETW"),
        ))
    }

    /// None: the ETW converter keeps its own table, seeded from a process
    /// snapshot when the sessions start, and puts `ParentImage`,
    /// `ParentCommandLine` and file events' `Image` on the events itself
    /// (the normalizer keeps them).
    fn seed_processes(&self) -> Vec<(u32, ProcessInfo)> {
        Vec::new()
    }

    fn image_enricher(&self) -> Option<Arc<dyn ImageEnricher>> {
        Some(Arc::clone(&self.pe) as Arc<dyn ImageEnricher>)
    }

    fn host_name(&self) -> Option<String> {
        trawl_sensor::windows::host_name()
    }
}

/// The two ETW sessions as one live source (`etw.*` in stats lines).
struct EtwSource {
    session: Option<EtwSession>,
    /// The counters [`EtwSession::stop`] returned.
    last: EtwStats,
    /// File events outside every `--watch` path (filtered, not lost).
    outside_watch: Arc<AtomicU64>,
}

impl SourceHandle for EtwSource {
    fn name(&self) -> &'static str {
        "etw"
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let stats = self.session.as_ref().map_or(self.last, EtwSession::stats);
        let mut counters = stats.counters();
        counters.push((
            "files_outside_watch",
            self.outside_watch.load(Ordering::Relaxed),
        ));
        counters
    }

    /// Stops both sessions; the process starts still waiting for their
    /// other half are pushed before this returns.
    fn stop(&mut self) {
        if let Some(session) = self.session.take() {
            self.last = session.stop();
        }
    }
}

/// `OriginalFileName`, `Company`, … from the PE version resource (`pe.*`).
#[derive(Default)]
struct PeVersionEnricher {
    outcomes: EnrichOutcomes,
}

impl ImageEnricher for PeVersionEnricher {
    fn enrich(&self, _image: &Path, event: &mut Event) {
        let outcome = enrich_from_image(event);
        if let Enriched::Failed(e) = &outcome {
            tracing::debug!("no version strings: {e}");
        }
        self.outcomes.count(&outcome);
    }

    fn name(&self) -> &'static str {
        "pe"
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        self.outcomes.counters()
    }
}
