//! The corpus events the matcher spends the most time on, with the rules
//! that fire on them: for finding what makes a rule set slow.
//!
//! `cargo run --release -p trawl-bench --example slowest -- [EVENTS] [TOP] [RULES PATH]...`

use std::path::PathBuf;
use std::time::Instant;

use trawl_engine::event::fields;
use trawl_engine::matcher::Scratch;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let top: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let rules = trawl_bench::sources::load_rules(&paths).expect("rules load");
    let rs = rules.ruleset;
    let events = trawl_bench::corpus(n, 42);
    let mut scratch = Scratch::new(&rs);
    let mut out = Vec::new();
    let mut timed: Vec<(f64, usize, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            out.clear();
            let start = Instant::now();
            rs.evaluate(ev, &mut scratch, &mut out);
            (start.elapsed().as_secs_f64() * 1e6, i, out.len())
        })
        .collect();
    let total: f64 = timed.iter().map(|t| t.0).sum();
    println!(
        "{n} events, {:.1} µs per event on average",
        total / n as f64
    );
    // Cost by command-line length: where a matcher's time goes.
    for (lo, hi) in [(0, 128), (128, 512), (512, 2048), (2048, usize::MAX)] {
        let in_bucket: Vec<f64> = timed
            .iter()
            .filter(|(_, i, _)| {
                let len = events[*i]
                    .get(&fields::COMMAND_LINE)
                    .and_then(|v| v.as_str())
                    .map_or(0, str::len);
                (lo..hi).contains(&len)
            })
            .map(|t| t.0)
            .collect();
        let sum: f64 = in_bucket.iter().sum();
        let upper = if hi == usize::MAX {
            String::new()
        } else {
            hi.to_string()
        };
        println!(
            "  command line {lo}..{upper} bytes: {} events, {:.1} µs each, {:.0}% of the time",
            in_bucket.len(),
            sum / in_bucket.len().max(1) as f64,
            100.0 * sum / total
        );
    }
    timed.sort_by(|a, b| b.0.total_cmp(&a.0));
    for &(us, i, fired) in timed.iter().take(top) {
        let ev = &events[i];
        let cmd = ev
            .get(&fields::COMMAND_LINE)
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let cut: String = cmd.chars().take(160).collect();
        println!(
            "{us:9.1} µs  #{i} {} {} fired {fired}  {} | {cut}",
            ev.kind,
            ev.os,
            ev.get(&fields::IMAGE)
                .and_then(|v| v.as_str())
                .unwrap_or(""),
        );
        out.clear();
        rs.evaluate(ev, &mut scratch, &mut out);
        for d in out.iter().take(5) {
            println!("           {}", rs.rule(d.rule).title);
        }
    }
}
