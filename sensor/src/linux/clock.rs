//! Kernel timestamps to wall-clock time.
//!
//! eBPF stamps events with CLOCK_BOOTTIME, the proc connector with
//! CLOCK_MONOTONIC; both are turned into UTC by the offset to CLOCK_REALTIME
//! taken when the sources start.

use trawl_engine::event::Timestamp;

/// Offsets from the kernel's clocks to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct KernelClock {
    boot_to_real_ns: i128,
    mono_to_real_ns: i128,
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl KernelClock {
    /// The offsets now.
    pub fn now() -> KernelClock {
        let real = clock_ns(libc::CLOCK_REALTIME);
        KernelClock {
            boot_to_real_ns: real - clock_ns(libc::CLOCK_BOOTTIME),
            mono_to_real_ns: real - clock_ns(libc::CLOCK_MONOTONIC),
        }
    }

    /// A CLOCK_BOOTTIME reading as wall-clock time.
    pub fn boot_to_wall(&self, ns: u64) -> Timestamp {
        to_ts(self.boot_to_real_ns + i128::from(ns))
    }

    /// A CLOCK_MONOTONIC reading as wall-clock time.
    pub fn monotonic_to_wall(&self, ns: u64) -> Timestamp {
        to_ts(self.mono_to_real_ns + i128::from(ns))
    }
}

fn to_ts(ns: i128) -> Timestamp {
    Timestamp::from_nanosecond(ns).unwrap_or_else(|_| Timestamp::now())
}

/// Wall-clock time now.
pub fn wall_now() -> Timestamp {
    Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_clocks_map_to_now() {
        let c = KernelClock::now();
        let boot = clock_ns(libc::CLOCK_BOOTTIME) as u64;
        let d = c.boot_to_wall(boot).duration_since(Timestamp::now());
        assert!(d.abs().as_secs_f64() < 1.0, "{d:?}");
        let mono = clock_ns(libc::CLOCK_MONOTONIC) as u64;
        let d = c.monotonic_to_wall(mono).duration_since(Timestamp::now());
        assert!(d.abs().as_secs_f64() < 1.0, "{d:?}");
    }
}
