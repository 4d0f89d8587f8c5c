//! Linux live sources: eBPF (or the netlink proc connector) for processes,
//! fanotify for files, `/proc` for the process table seed.
//!
//! All of it needs root (CAP_BPF + CAP_PERFMON for eBPF, CAP_SYS_ADMIN for
//! fanotify filesystem marks, CAP_DAC_READ_SEARCH to resolve file handles,
//! CAP_NET_ADMIN for the proc connector).

mod clock;
mod ebpf;
mod exec_record;
mod fanotify;
mod mounts;
mod proc_connector;
mod procfs;
mod reader;
mod users;

use std::sync::Arc;

use crate::live::intake::Intake;
use crate::live::proctable::ProcessInfo;
use crate::live::run::{LivePlatform, ProcessSource, SourceHandle, SourceOptions};

/// The Linux side of `trawl watch` / `trawl record`.
pub struct LinuxPlatform;

/// What the proc connector cannot see, said whenever it is the process source.
const PROC_CONNECTOR_LOSS: &str = "image, command line, working directory and user are read from /proc after each \
     exec, so they are missing for a process that exits first (proc_connector.exec_unreadable), and belong to its \
     next program if it exec'd again at once";

impl LivePlatform for LinuxPlatform {
    fn start_sources(
        &self,
        intake: &Intake,
        options: &SourceOptions,
    ) -> anyhow::Result<(Vec<Box<dyn SourceHandle>>, String)> {
        let clock = clock::KernelClock::now();
        let users = Arc::new(users::UserNames::load());
        let process: Box<dyn SourceHandle> = match options.process_source {
            Some(ProcessSource::Ebpf) => Box::new(ebpf::start(intake, clock, Arc::clone(&users))?),
            Some(ProcessSource::ProcConnector) => {
                eprintln!("trawl: process events by the netlink proc connector (--source proc-connector): {PROC_CONNECTOR_LOSS}");
                Box::new(proc_connector::start(intake, clock, Arc::clone(&users))?)
            }
            None => match ebpf::start(intake, clock, Arc::clone(&users)) {
                Ok(s) => Box::new(s),
                Err(e) => {
                    eprintln!(
                        "trawl: eBPF process events cannot load ({e:#}); falling back to the netlink proc connector: {PROC_CONNECTOR_LOSS}"
                    );
                    Box::new(proc_connector::start(intake, clock, Arc::clone(&users))?)
                }
            },
        };
        let mut what = vec![match process.name() {
            "ebpf" => "process events by eBPF",
            _ => "process events by the netlink proc connector",
        }
        .to_owned()];
        let mut sources = vec![process];
        match fanotify::start(intake, &options.watch) {
            Ok((source, description)) => {
                sources.push(Box::new(source));
                what.push(description);
            }
            Err(e) if options.watch.is_empty() => {
                eprintln!("trawl: file events unavailable: {e:#}; watching process events only");
            }
            Err(e) => return Err(e),
        }
        Ok((sources, format!("watching {}", what.join(", "))))
    }

    fn seed_processes(&self) -> Vec<(u32, ProcessInfo)> {
        procfs::seed()
    }

    fn host_name(&self) -> Option<String> {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
        // on success when the name fits.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return None;
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        Some(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}
