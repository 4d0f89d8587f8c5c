//! Process events from trawl's eBPF programs (`sensor/bpf/process.bpf.c`).
//!
//! The object is embedded in the binary (built from its C source and
//! committed; see `sensor/bpf/build.sh`), loaded with aya against the
//! running kernel's BTF (CO-RE), and attached to the `sched_process_exec`,
//! `sched_process_fork` and `sched_process_exit` BTF tracepoints. One reader
//! thread drains the ring buffer into the [`Intake`]: execs become
//! `process_start` events, exits `process_exit`, forks update the process
//! table. Records the kernel could not queue are counted per kind in the
//! program's `lost` map and shown as `ebpf.lost_exec` / `lost_fork` /
//! `lost_exit`.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};
use trawl_engine::event::{fields, Event, EventKind, FieldKey, Os, Value};

use super::clock::KernelClock;
use super::exec_record::{
    absolute, command_line, path_from_components, Record, FLAG_ARGV_TRUNCATED,
    FLAG_ARGV_UNREADABLE, FLAG_CWD_TRUNCATED, FLAG_EXE_TRUNCATED, KIND_EXEC, KIND_EXIT, KIND_FORK,
};
use super::reader::{wait_readable, Reader};
use super::users::UserNames;
use crate::live::enrich::EXEC_FILENAME;
use crate::live::intake::Intake;
use crate::live::run::SourceHandle;

/// The compiled programs, aligned as the ELF parser needs.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../bpf/process.bpf.o");

/// (program, tracepoint) pairs.
const PROGRAMS: [(&str, &str); 3] = [
    ("trawl_exec", "sched_process_exec"),
    ("trawl_fork", "sched_process_fork"),
    ("trawl_exit", "sched_process_exit"),
];

/// Ring buffer size; `TRAWL_RINGBUF_BYTES` (a power of two, at least a page)
/// overrides it, which tests use to provoke kernel-side loss.
const RINGBUF_BYTES: u32 = 8 << 20;

/// A running eBPF source.
pub struct EbpfSource {
    reader: Reader,
    counters: Arc<Counters>,
    lost: PerCpuArray<MapData, u64>,
    /// Keeps the programs attached until the source is dropped.
    _ebpf: Ebpf,
}

#[derive(Debug, Default)]
struct Counters {
    records: AtomicU64,
    malformed: AtomicU64,
    argv_unreadable: AtomicU64,
}

/// Loads and attaches the programs and starts the reader thread.
pub fn start(
    intake: &Intake,
    clock: KernelClock,
    users: Arc<UserNames>,
) -> anyhow::Result<EbpfSource> {
    let btf = Btf::from_sys_fs().context("reading the kernel's BTF (/sys/kernel/btf/vmlinux)")?;
    let ringbuf = std::env::var("TRAWL_RINGBUF_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RINGBUF_BYTES);
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .map_max_entries("events", ringbuf)
        .load(OBJECT)
        .context("loading the BPF object")?;
    for (name, tracepoint) in PROGRAMS {
        let program: &mut BtfTracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the BPF object"))?
            .try_into()
            .with_context(|| format!("program {name} is not a BTF tracepoint"))?;
        program
            .load(tracepoint, &btf)
            .with_context(|| format!("verifying {name}"))?;
        program
            .attach()
            .with_context(|| format!("attaching {name} to {tracepoint}"))?;
    }
    let events = RingBuf::try_from(ebpf.take_map("events").context("map `events` missing")?)
        .context("opening the ring buffer")?;
    let lost = PerCpuArray::try_from(ebpf.take_map("lost").context("map `lost` missing")?)
        .context("opening the loss counters")?;
    let counters = Arc::new(Counters::default());
    let reader = {
        let (counters, intake) = (Arc::clone(&counters), intake.clone());
        Reader::spawn("trawl-ebpf", move |stop| {
            read_loop(events, stop, &counters, &intake, clock, &users)
        })
        .context("starting the ring buffer reader")?
    };
    Ok(EbpfSource {
        reader,
        counters,
        lost,
        _ebpf: ebpf,
    })
}

fn read_loop(
    mut ring: RingBuf<MapData>,
    stop: &AtomicBool,
    counters: &Counters,
    intake: &Intake,
    clock: KernelClock,
    users: &UserNames,
) {
    let fd = ring.as_raw_fd();
    loop {
        // Drain what is queued, then check for stop (at most a ring buffer's
        // worth per round, so a busy host cannot keep the reader from it).
        let mut budget = 1 << 16;
        while budget > 0 {
            let Some(item) = ring.next() else { break };
            budget -= 1;
            counters.records.fetch_add(1, Ordering::Relaxed);
            match Record::parse(&item) {
                Ok(r) => deliver(&r, counters, intake, clock, users),
                Err(e) => {
                    counters.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("eBPF record skipped: {e}");
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        wait_readable(fd);
    }
}

fn deliver(
    r: &Record<'_>,
    counters: &Counters,
    intake: &Intake,
    clock: KernelClock,
    users: &UserNames,
) {
    match r.kind {
        KIND_EXEC => {
            if r.flags & FLAG_ARGV_UNREADABLE != 0 {
                counters.argv_unreadable.fetch_add(1, Ordering::Relaxed);
            }
            intake.push(exec_event(r, clock, users));
        }
        KIND_FORK => intake.push_fork(r.ppid, r.pid, r.start_ns),
        KIND_EXIT => {
            let mut ev = Event::new(
                EventKind::ProcessExit,
                Os::Linux,
                clock.boot_to_wall(r.ktime_ns),
            );
            ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(r.pid)));
            ev.push_unchecked(
                FieldKey::from_name("ExitCode"),
                Value::Int(i64::from(r.exit_code >> 8)),
            );
            intake.push(ev);
        }
        other => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("eBPF record of unknown kind {other} skipped");
        }
    }
}

/// A `process_start` from an exec record.
fn exec_event(r: &Record<'_>, clock: KernelClock, users: &UserNames) -> Event {
    let mut ev = Event::new(
        EventKind::ProcessStart,
        Os::Linux,
        clock.boot_to_wall(r.ktime_ns),
    );
    let cwd = path_from_components(r.cwd, r.flags & FLAG_CWD_TRUNCATED != 0);
    ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(r.pid)));
    ev.push_unchecked(fields::PARENT_PROCESS_ID, Value::Int(i64::from(r.ppid)));
    ev.push_unchecked(
        fields::IMAGE,
        Value::Str(path_from_components(
            r.exe,
            r.flags & FLAG_EXE_TRUNCATED != 0,
        )),
    );
    ev.push_unchecked(fields::COMMAND_LINE, Value::Str(command_line(r.argv)));
    if !r.filename.is_empty() {
        let file = String::from_utf8_lossy(r.filename);
        ev.push_unchecked(
            FieldKey::from_name(EXEC_FILENAME),
            Value::Str(absolute(&file, &cwd)),
        );
    }
    ev.push_unchecked(fields::CURRENT_DIRECTORY, Value::Str(cwd));
    ev.push_unchecked(FieldKey::from_name("User"), Value::Str(users.name(r.uid)));
    ev.push_unchecked(FieldKey::from_name("Uid"), Value::Int(i64::from(r.uid)));
    ev.push_unchecked(FieldKey::from_name("Gid"), Value::Int(i64::from(r.gid)));
    if r.flags & FLAG_ARGV_TRUNCATED != 0 {
        ev.push_unchecked(fields::TRUNCATED, Value::Bool(true));
    }
    ev
}

impl SourceHandle for EbpfSource {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let lost = |kind: u32| -> u64 {
            self.lost
                .get(&kind, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0)
        };
        let c = &self.counters;
        vec![
            ("records", c.records.load(Ordering::Relaxed)),
            ("lost_exec", lost(KIND_EXEC)),
            ("lost_fork", lost(KIND_FORK)),
            ("lost_exit", lost(KIND_EXIT)),
            ("malformed", c.malformed.load(Ordering::Relaxed)),
            ("argv_unreadable", c.argv_unreadable.load(Ordering::Relaxed)),
        ]
    }

    fn stop(&mut self) {
        self.reader.stop();
    }
}
