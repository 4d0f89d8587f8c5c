//! Process events from the netlink process connector: the fallback when
//! eBPF cannot load (no BTF, no CAP_BPF, an old kernel).
//!
//! The connector reports only numbers (fork: parent and child; exec: the
//! pid; exit: the pid and code). Everything else is read from `/proc/PID`
//! when the message arrives — so for a process that has already exited, or
//! exec'd again, the image, command line and working directory are missing
//! or belong to the later program (`proc_connector.exec_unreadable` counts
//! the first case). A socket overrun (`ENOBUFS`) means the kernel dropped
//! messages; each is counted as `proc_connector.lost_overruns`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use trawl_engine::event::{fields, Event, EventKind, FieldKey, Os, Value};

use super::clock::KernelClock;
use super::procfs;
use super::reader::{Reader, POLL_MS};
use super::users::UserNames;
use crate::live::intake::Intake;
use crate::live::run::SourceHandle;

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;

/// A running proc connector source.
pub struct ProcConnectorSource {
    reader: Reader,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    overruns: AtomicU64,
    exec_unreadable: AtomicU64,
}

/// Subscribes to the connector and starts the reader thread.
pub fn start(
    intake: &Intake,
    clock: KernelClock,
    users: Arc<UserNames>,
) -> anyhow::Result<ProcConnectorSource> {
    let sock = subscribe().context("subscribing to the netlink process connector (needs root)")?;
    let counters = Arc::new(Counters::default());
    let reader = {
        let (counters, intake) = (Arc::clone(&counters), intake.clone());
        Reader::spawn("trawl-proc-cn", move |stop| {
            read_loop(&sock, stop, &counters, &intake, clock, &users)
        })
        .context("starting the proc connector reader")?
    };
    Ok(ProcConnectorSource { reader, counters })
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn subscribe() -> io::Result<OwnedFd> {
    // SAFETY: plain syscalls on a descriptor we own; every result is checked.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_CONNECTOR,
        ))?;
        let sock = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = CN_IDX_PROC;
        check(libc::bind(
            fd,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        ))?;
        // A large receive buffer rides out bursts (as root, past rmem_max).
        let size: libc::c_int = 8 << 20;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: libc::suseconds_t::from(POLL_MS) * 1000,
        };
        check(libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        ))?;
        let msg = listen_message();
        check(libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) as libc::c_int)?;
        Ok(sock)
    }
}

/// nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN.
fn listen_message() -> Vec<u8> {
    let total = (NLMSG_HDR + CN_MSG + 4) as u32;
    let mut m = Vec::with_capacity(total as usize);
    m.extend_from_slice(&total.to_ne_bytes());
    m.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&4u16.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

/// One connector message, decoded.
#[derive(Debug, PartialEq, Eq)]
enum ProcEvent {
    Fork { parent: u32, child: u32, ts: u64 },
    Exec { pid: u32, ts: u64 },
    Exit { pid: u32, code: u32, ts: u64 },
    Other,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes the netlink messages of one datagram.
fn parse(mut b: &[u8]) -> Vec<ProcEvent> {
    let mut out = Vec::new();
    while let Some(len) = u32_at(b, 0).map(|l| l as usize) {
        if len < NLMSG_HDR || len > b.len() {
            break;
        }
        let msg = &b[..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        let ev = NLMSG_HDR + CN_MSG;
        let (Some(what), Some(lo), Some(hi)) =
            (u32_at(msg, ev), u32_at(msg, ev + 8), u32_at(msg, ev + 12))
        else {
            continue;
        };
        let ts = u64::from(lo) | (u64::from(hi) << 32);
        let data = ev + 16;
        let field = |i: usize| u32_at(msg, data + 4 * i);
        out.push(match what {
            PROC_EVENT_FORK => match (field(1), field(2), field(3)) {
                // A new thread shares its group: not a process.
                (Some(parent), Some(child_pid), Some(child)) if child_pid == child => {
                    ProcEvent::Fork { parent, child, ts }
                }
                _ => ProcEvent::Other,
            },
            PROC_EVENT_EXEC => match field(1) {
                Some(pid) => ProcEvent::Exec { pid, ts },
                None => ProcEvent::Other,
            },
            PROC_EVENT_EXIT => match (field(0), field(1), field(2)) {
                (Some(tid), Some(pid), Some(code)) if tid == pid => {
                    ProcEvent::Exit { pid, code, ts }
                }
                _ => ProcEvent::Other,
            },
            _ => ProcEvent::Other,
        });
    }
    out
}

fn read_loop(
    sock: &OwnedFd,
    stop: &AtomicBool,
    counters: &Counters,
    intake: &Intake,
    clock: KernelClock,
    users: &UserNames,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ENOBUFS) => {
                    counters.overruns.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("proc connector overrun: the kernel dropped process events");
                }
                Some(libc::EAGAIN | libc::EINTR) => {}
                _ => {
                    tracing::error!(
                        "reading the proc connector failed: {err}; process events stop"
                    );
                    return;
                }
            }
            continue;
        }
        for ev in parse(&buf[..n as usize]) {
            counters.messages.fetch_add(1, Ordering::Relaxed);
            match ev {
                ProcEvent::Fork { parent, child, ts } => intake.push_fork(parent, child, ts),
                ProcEvent::Exec { pid, ts } => {
                    intake.push(exec_event(pid, ts, counters, clock, users))
                }
                ProcEvent::Exit { pid, code, ts } => {
                    let mut ev = Event::new(
                        EventKind::ProcessExit,
                        Os::Linux,
                        clock.monotonic_to_wall(ts),
                    );
                    ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(pid)));
                    ev.push_unchecked(
                        FieldKey::from_name("ExitCode"),
                        Value::Int(i64::from(code >> 8)),
                    );
                    intake.push(ev);
                }
                ProcEvent::Other => {}
            }
        }
    }
}

fn exec_event(
    pid: u32,
    ts: u64,
    counters: &Counters,
    clock: KernelClock,
    users: &UserNames,
) -> Event {
    let s = procfs::snapshot(pid);
    let mut ev = Event::new(
        EventKind::ProcessStart,
        Os::Linux,
        clock.monotonic_to_wall(ts),
    );
    ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(pid)));
    if let Some(ppid) = s.ppid {
        ev.push_unchecked(fields::PARENT_PROCESS_ID, Value::Int(i64::from(ppid)));
    }
    if s.image.is_none() {
        counters.exec_unreadable.fetch_add(1, Ordering::Relaxed);
    }
    let text = |key: FieldKey, v: Option<String>, ev: &mut Event| {
        if let Some(v) = v {
            ev.push_unchecked(key, Value::Str(v));
        }
    };
    text(fields::IMAGE, s.image, &mut ev);
    text(fields::COMMAND_LINE, s.command_line, &mut ev);
    text(fields::CURRENT_DIRECTORY, s.cwd, &mut ev);
    if let Some(uid) = s.uid {
        ev.push_unchecked(FieldKey::from_name("User"), Value::Str(users.name(uid)));
        ev.push_unchecked(FieldKey::from_name("Uid"), Value::Int(i64::from(uid)));
    }
    if let Some(gid) = s.gid {
        ev.push_unchecked(FieldKey::from_name("Gid"), Value::Int(i64::from(gid)));
    }
    ev
}

impl SourceHandle for ProcConnectorSource {
    fn name(&self) -> &'static str {
        "proc_connector"
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        vec![
            ("messages", c.messages.load(Ordering::Relaxed)),
            ("lost_overruns", c.overruns.load(Ordering::Relaxed)),
            ("exec_unreadable", c.exec_unreadable.load(Ordering::Relaxed)),
        ]
    }

    fn stop(&mut self) {
        self.reader.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, ts: u64, data: &[u32]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR + CN_MSG];
        m.extend_from_slice(&what.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&ts.to_ne_bytes());
        for d in data {
            m.extend_from_slice(&d.to_ne_bytes());
        }
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn connector_messages_decode_and_threads_are_skipped() {
        let mut b = message(PROC_EVENT_FORK, 5, &[10, 10, 11, 11]);
        b.extend(message(PROC_EVENT_FORK, 6, &[10, 10, 12, 10]));
        b.extend(message(PROC_EVENT_EXEC, 7, &[11, 11]));
        b.extend(message(PROC_EVENT_EXIT, 8, &[11, 11, 256, 17, 10, 10]));
        b.extend(message(PROC_EVENT_EXIT, 9, &[12, 10, 0, 17, 10, 10]));
        assert_eq!(
            parse(&b),
            [
                ProcEvent::Fork {
                    parent: 10,
                    child: 11,
                    ts: 5
                },
                ProcEvent::Other,
                ProcEvent::Exec { pid: 11, ts: 7 },
                ProcEvent::Exit {
                    pid: 11,
                    code: 256,
                    ts: 8
                },
                ProcEvent::Other,
            ]
        );
        // Truncated datagrams end the walk without a panic.
        for cut in 0..b.len() {
            let _ = parse(&b[..cut]);
        }
    }

    #[test]
    fn the_listen_message_is_well_formed() {
        let m = listen_message();
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }
}
