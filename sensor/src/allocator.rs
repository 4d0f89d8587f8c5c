//! The `trawl` binary's allocator on Linux: mimalloc; the live sensor
//! hands freed memory back to the OS at once.
//!
//! Why mimalloc: events are many small allocations, and the live pipeline
//! builds them on one thread and frees them on others, a hand-over glibc's
//! malloc pays for; a large EVTX replay (which builds, matches and frees
//! each event on one thread) still ran about 10% faster with it (medians of
//! 6 alternated runs, 0.46 against 0.51 s). Why at once for the live sensor: by
//! default mimalloc keeps freed pages for a second (their arenas ten)
//! before handing them back, and only does so when it is called again; an
//! idle `trawl watch` then held 76 MB where glibc holds 45 MB. Purged at
//! once it holds 33 MB. A replay keeps the default: purging at once made a large
//! one 5–10% slower for 6 MB less peak RSS. The Windows build keeps the
//! system allocator (not measured there).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (milliseconds; default 1000). The Rust
/// bindings do not name it: it comes just before `mi_option_use_numa_nodes`
/// (16). A test checks it still does.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Makes freed memory go back to the OS at once, for long-running commands
/// (`watch`, `record`). Call it before any other thread starts.
pub fn return_freed_memory_at_once() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table
    // (not thread-safe, hence before other threads start).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_set_and_takes_effect() {
        // No other test touches mimalloc's options, so no other thread races
        // these calls. Only purge_delay defaults to 1000 among the options, so this
        // fails if the option numbers move in a mimalloc update.
        // SAFETY: reading an option is a plain load from mimalloc's table.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 1000);
        return_freed_memory_at_once();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 0);
    }
}
