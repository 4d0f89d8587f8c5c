//! The two ways of reading an EVTX chunk (template plans, and the `evtx`
//! crate's JSON renderer), and the replay driver's whole-file reader, give
//! the same events, counts and problems, on real logs: the attack recordings in `../shared/corpus` (read in CI; the
//! test passes with a message where that folder is absent).

use std::path::{Path, PathBuf};

use support::shown;
use trawl_replay::evtx_file::{chunks, read_chunk_with, read_file, settings, ChunkReader};
use trawl_replay::unit::UnitOutput;

mod support;

fn shared_samples() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/evtx-attack-samples");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent (it is there in CI)", dir.display());
        None
    }
}

#[test]
fn shared_template_plans_read_every_attack_sample_as_the_renderer_does() {
    let Some(dir) = shared_samples() else { return };
    let settings = settings();
    let (mut files, mut chunks_read, mut by_plans, mut events) = (0, 0, 0, 0);
    for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
        let entry = entry.expect("the samples folder is readable");
        if entry.path().extension().is_none_or(|x| x != "evtx") {
            continue;
        }
        files += 1;
        let (mut plans, mut rendered) = (UnitOutput::default(), UnitOutput::default());
        let Ok(all) = chunks(entry.path()) else {
            continue;
        };
        let mut cut = true;
        for chunk in all {
            let Ok(chunk) = chunk else {
                cut = false;
                continue;
            };
            chunks_read += 1;
            let mut copy = evtx::EvtxChunkData::new(chunk.data.clone(), false)
                .expect("a chunk the parser gave reads again");
            copy.number = chunk.number;
            let how = read_chunk_with(
                ChunkReader::TemplatePlans,
                Box::new(copy),
                &settings,
                &mut plans,
            );
            by_plans += usize::from(how == ChunkReader::TemplatePlans);
            read_chunk_with(ChunkReader::Renderer, chunk, &settings, &mut rendered);
        }
        events += rendered.events.len();
        if cut {
            // The replay driver's whole-file reader gives the same.
            let mut whole = UnitOutput::default();
            read_file(entry.path(), &settings, &mut whole);
            assert_eq!(shown(&whole), shown(&plans), "{}", entry.path().display());
        }
        let (a, b) = (shown(&plans), shown(&rendered));
        if a != b {
            let first = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            panic!(
                "{}: the readers differ at line {first}:\n plans:    {:?}\n renderer: {:?}",
                entry.path().display(),
                a.get(first),
                b.get(first)
            );
        }
    }
    eprintln!("{files} files, {chunks_read} chunks ({by_plans} read by plans), {events} events");
    assert!(
        files > 200 && events > 1000,
        "{files} files, {events} events"
    );
    // The plans are the fast way only if they cover nearly every chunk.
    assert!(
        by_plans * 10 >= chunks_read * 9,
        "{by_plans} of {chunks_read} chunks by plans"
    );
}
