//! Joins the two halves of a process start.
//!
//! Windows reports a process start twice, in two sessions: the kernel's MOF
//! `Process/Start` has the command line and the user but only a short image
//! name; Microsoft-Windows-Kernel-Process event 1 has the full image path but
//! no command line. trawl needs both on one event, so [`StartJoiner`] holds
//! whichever half arrives first (the sessions flush their buffers
//! independently, so either may) until its partner comes, keyed by process id.
//!
//! Nothing waits forever: a half whose partner has not come within the
//! timeout is released alone (counted), and so is the oldest half when the
//! pending map is full (counted as evicted). A partner that shows up after its
//! half was released is handed back as [`Offer::Late`] so the caller can still
//! learn from it, never as a second start. A stop that arrives while its start
//! is still pending is held and released right after the start, so a
//! short-lived process never exits before it started.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::props::{KernelProcessStart, KernelProcessStop, MofProcess};

/// The two halves (or the one that came) of a process start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedStart {
    pub mof: Option<MofProcess>,
    pub kernel: Option<KernelProcessStart>,
    /// The process's stop, if it came before the start was released.
    pub stop: Option<KernelProcessStop>,
}

impl JoinedStart {
    /// The process id (both halves carry the same).
    pub fn process_id(&self) -> u32 {
        match (&self.kernel, &self.mof) {
            (Some(k), _) => k.process_id,
            (None, Some(m)) => m.process_id,
            (None, None) => 0,
        }
    }

    /// Whether both halves are present.
    pub fn is_complete(&self) -> bool {
        self.mof.is_some() && self.kernel.is_some()
    }
}

/// What became of a half offered to the joiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Held until its partner comes.
    Pending,
    /// Both halves are here: the start is ready.
    Joined(JoinedStart),
    /// The partner of this half was already released alone; this half adds
    /// what it knows to the process table but is not a new start.
    Late(LateHalf),
}

/// A half that arrived after its start was released without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateHalf {
    Mof(MofProcess),
    Kernel(KernelProcessStart),
}

/// Counters of a [`StartJoiner`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Starts released with both halves.
    pub joined: u64,
    /// Starts released with only the MOF half (no full image path).
    pub mof_only: u64,
    /// Starts released with only the Kernel-Process half (no command line).
    pub kernel_only: u64,
    /// Of the lone releases, how many were forced out by a full pending map.
    pub evicted: u64,
    /// Halves that came after their start was released alone.
    pub late: u64,
    /// Halves pending right now.
    pub pending: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Mof,
    Kernel,
}

struct Pending {
    generation: u64,
    mof: Option<MofProcess>,
    kernel: Option<KernelProcessStart>,
    stop: Option<KernelProcessStop>,
}

/// Pairs MOF and Kernel-Process starts by process id. Single-threaded: the
/// caller serializes access (both ETW sessions feed one converter).
pub struct StartJoiner {
    pending: HashMap<u32, Pending>,
    /// Arrival order of pending entries: (arrival, pid, generation). Entries
    /// whose generation no longer matches were released already.
    order: VecDeque<(Instant, u32, u64)>,
    /// Process ids released alone, when, and which half they lacked: that
    /// half arriving now is late, not a new start.
    released_alone: HashMap<u32, (Instant, Half)>,
    next_generation: u64,
    timeout: Duration,
    capacity: usize,
    stats: JoinStats,
}

impl std::fmt::Debug for StartJoiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartJoiner")
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl StartJoiner {
    /// A joiner that waits at most `timeout` for a partner and holds at most
    /// `capacity` pending halves.
    pub fn new(timeout: Duration, capacity: usize) -> StartJoiner {
        StartJoiner {
            pending: HashMap::new(),
            order: VecDeque::new(),
            released_alone: HashMap::new(),
            next_generation: 0,
            timeout,
            capacity: capacity.max(1),
            stats: JoinStats::default(),
        }
    }

    /// Offers the MOF half. Starts forced out to make room go to `released`.
    pub fn offer_mof(
        &mut self,
        mof: MofProcess,
        now: Instant,
        released: &mut Vec<JoinedStart>,
    ) -> Offer {
        let pid = mof.process_id;
        if self.is_late(pid, now, Half::Mof) {
            self.stats.late += 1;
            return Offer::Late(LateHalf::Mof(mof));
        }
        match self.pending.get_mut(&pid) {
            Some(p) if p.mof.is_none() => {
                p.mof = Some(mof);
                Offer::Joined(self.take(pid))
            }
            _ => {
                self.hold(pid, now, released, |p| p.mof = Some(mof));
                Offer::Pending
            }
        }
    }

    /// Offers the Kernel-Process half.
    pub fn offer_kernel(
        &mut self,
        kernel: KernelProcessStart,
        now: Instant,
        released: &mut Vec<JoinedStart>,
    ) -> Offer {
        let pid = kernel.process_id;
        if self.is_late(pid, now, Half::Kernel) {
            self.stats.late += 1;
            return Offer::Late(LateHalf::Kernel(kernel));
        }
        match self.pending.get_mut(&pid) {
            Some(p) if p.kernel.is_none() => {
                p.kernel = Some(kernel);
                Offer::Joined(self.take(pid))
            }
            _ => {
                self.hold(pid, now, released, |p| p.kernel = Some(kernel));
                Offer::Pending
            }
        }
    }

    /// Offers a stop: held (and `None` returned) when the process's start is
    /// still pending, else handed back to be emitted now.
    pub fn offer_stop(&mut self, stop: KernelProcessStop) -> Option<KernelProcessStop> {
        match self.pending.get_mut(&stop.process_id) {
            Some(p) if p.stop.is_none() => {
                p.stop = Some(stop);
                None
            }
            _ => Some(stop),
        }
    }

    /// The pending halves of `pid`, for lookups (a child may start before
    /// its parent's start is released).
    pub fn pending(&self, pid: u32) -> Option<(Option<&MofProcess>, Option<&KernelProcessStart>)> {
        self.pending
            .get(&pid)
            .map(|p| (p.mof.as_ref(), p.kernel.as_ref()))
    }

    /// Releases every half that has waited `timeout` or longer by `now`.
    pub fn expire(&mut self, now: Instant, released: &mut Vec<JoinedStart>) {
        while let Some(&(since, pid, generation)) = self.order.front() {
            if now.saturating_duration_since(since) < self.timeout {
                break;
            }
            self.order.pop_front();
            if self
                .pending
                .get(&pid)
                .is_some_and(|p| p.generation == generation)
            {
                released.push(self.release_alone(pid, now));
            }
        }
        let keep = self.timeout * 2;
        self.released_alone
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < keep);
    }

    /// Releases everything pending (the session is stopping).
    pub fn drain(&mut self, now: Instant, released: &mut Vec<JoinedStart>) {
        while let Some((_, pid, generation)) = self.order.pop_front() {
            if self
                .pending
                .get(&pid)
                .is_some_and(|p| p.generation == generation)
            {
                released.push(self.release_alone(pid, now));
            }
        }
    }

    /// The joiner's counters.
    pub fn stats(&self) -> JoinStats {
        JoinStats {
            pending: self.pending.len() as u64,
            ..self.stats
        }
    }

    fn is_late(&self, pid: u32, now: Instant, arriving: Half) -> bool {
        !self.pending.contains_key(&pid)
            && self.released_alone.get(&pid).is_some_and(|(at, lacked)| {
                *lacked == arriving && now.saturating_duration_since(*at) < self.timeout * 2
            })
    }

    fn hold(
        &mut self,
        pid: u32,
        now: Instant,
        released: &mut Vec<JoinedStart>,
        fill: impl FnOnce(&mut Pending),
    ) {
        if self.pending.contains_key(&pid) {
            // The same half twice for one id: the earlier process is gone
            // (id reused) or its partner never came. Release it first.
            released.push(self.release_alone(pid, now));
        }
        while self.pending.len() >= self.capacity {
            let Some((_, old, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .pending
                .get(&old)
                .is_some_and(|p| p.generation == generation)
            {
                self.stats.evicted += 1;
                released.push(self.release_alone(old, now));
            }
        }
        self.released_alone.remove(&pid);
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut p = Pending {
            generation,
            mof: None,
            kernel: None,
            stop: None,
        };
        fill(&mut p);
        self.pending.insert(pid, p);
        self.order.push_back((now, pid, generation));
        if self.order.len() > 4 * self.capacity {
            let pending = &self.pending;
            self.order
                .retain(|(_, pid, g)| pending.get(pid).is_some_and(|p| p.generation == *g));
        }
    }

    fn take(&mut self, pid: u32) -> JoinedStart {
        let p = self.pending.remove(&pid).map(|p| JoinedStart {
            mof: p.mof,
            kernel: p.kernel,
            stop: p.stop,
        });
        self.stats.joined += 1;
        p.unwrap_or(JoinedStart {
            mof: None,
            kernel: None,
            stop: None,
        })
    }

    fn release_alone(&mut self, pid: u32, now: Instant) -> JoinedStart {
        let start = match self.pending.remove(&pid) {
            Some(p) => JoinedStart {
                mof: p.mof,
                kernel: p.kernel,
                stop: p.stop,
            },
            None => JoinedStart {
                mof: None,
                kernel: None,
                stop: None,
            },
        };
        let lacked = if start.mof.is_some() {
            self.stats.mof_only += 1;
            Half::Kernel
        } else {
            self.stats.kernel_only += 1;
            Half::Mof
        };
        // Remember it so its partner, should it still come, is taken as late.
        self.released_alone.insert(pid, (now, lacked));
        start
    }
}

#[cfg(test)]
mod tests;
