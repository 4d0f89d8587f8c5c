//! How fast the `evtx` crate alone reads a folder of `.evtx` files, to set
//! trawl's own EVTX figures against: records/s for the crate's record
//! iterator alone (`iter`) and with each record rendered to JSON (`json`,
//! what trawl needs to read a record), on every core, files shared out.
//!
//! ```sh
//! cargo run --release -p trawl-replay --example evtx_ceiling -- /tmp/evtx20
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use evtx::{EvtxParser, ParserSettings};

fn main() {
    let Some(root) = std::env::args().nth(1) else {
        eprintln!("usage: evtx_ceiling FOLDER");
        std::process::exit(2);
    };
    let files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "evtx"))
        .map(|e| e.into_path())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for render in [false, true] {
        let next = AtomicUsize::new(0);
        let records = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let settings = Arc::new(ParserSettings::new().indent(false));
                    while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let Ok(parser) = EvtxParser::from_path(f) else {
                            continue;
                        };
                        for chunk in parser.into_chunks().flatten() {
                            let mut chunk = chunk;
                            let Ok(mut c) = chunk.parse(Arc::clone(&settings)) else {
                                continue;
                            };
                            for r in c.iter().flatten() {
                                if render {
                                    let _ = std::hint::black_box(r.into_json_bytes());
                                }
                                records.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        let n = records.load(Ordering::Relaxed);
        println!(
            "{}: {} files, {n} records in {secs:.3} s on {threads} threads = {:.0} records/s",
            if render { "iter+json" } else { "iter" },
            files.len(),
            n as f64 / secs
        );
    }
}
