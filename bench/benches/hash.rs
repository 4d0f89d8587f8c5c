//! SHA-256 of files through the engine's [`HashCache`]: cold (a fresh cache,
//! so every call reads and hashes the file; the OS page cache is warm, so
//! this is hashing speed, not disk speed) in MB/s, and a cache hit (`stat`,
//! open, `fstat`, lookup) in ns, for 4 KiB, 1 MiB and 64 MiB files.

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trawl_engine::hash::HashCache;

const SIZES: &[(&str, usize)] = &[("4KiB", 4 << 10), ("1MiB", 1 << 20), ("64MiB", 64 << 20)];

fn temp_file(size: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("a temp file");
    // Not all zeros: some file systems treat those specially.
    let mut rng = trawl_bench::Rng::new(size as u64);
    let chunk: Vec<u8> = (0..(1 << 16)).map(|_| rng.next_u64() as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).expect("writing the temp file");
        left -= n;
    }
    f.flush().expect("flushing the temp file");
    f
}

fn hash(c: &mut Criterion) {
    let files: Vec<_> = SIZES
        .iter()
        .map(|&(name, size)| (name, size, temp_file(size)))
        .collect();
    let mut g = c.benchmark_group("hash_cold");
    for (name, size, file) in &files {
        if *size >= 64 << 20 {
            g.sample_size(10).measurement_time(Duration::from_secs(8));
        }
        g.throughput(Throughput::Bytes(*size as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                HashCache::new(16, 1 << 30)
                    .sha256(file.path())
                    .expect("the temp file hashes")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("hash_hit");
    for (name, _, file) in &files {
        let cache = HashCache::new(16, 1 << 30);
        cache.sha256(file.path()).expect("the temp file hashes");
        g.bench_function(*name, |b| {
            b.iter(|| cache.sha256(file.path()).expect("the temp file hashes"))
        });
        assert!(cache.stats().misses == 1, "every later call was a hit");
    }
    g.finish();
}

criterion_group!(benches, hash);
criterion_main!(benches);
