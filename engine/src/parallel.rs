//! An ordered parallel map for start-up work (parsing rule files, building
//! automata): every core works, the results keep their order, so what is
//! built never depends on the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Applies `f` to every item on every core; the results come back in item
/// order. Workers take `take` items at a time from a shared counter, so one
/// slow item does not hold up the others.
pub(crate) fn map_in_parallel<T: Sync, R: Send>(
    items: &[T],
    take: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let take = take.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().div_ceil(take));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let start = next.fetch_add(take, Ordering::Relaxed);
                        if start >= items.len() {
                            return out;
                        }
                        for (i, item) in items.iter().enumerate().skip(start).take(take) {
                            out.push((i, f(item)));
                        }
                    }
                })
            })
            .collect();
        join_in_item_order(workers)
    })
}

/// Joins workers that each return `(item index, result)` pairs, and puts
/// the results in item order; a worker's panic is resumed here.
fn join_in_item_order<R>(
    workers: Vec<std::thread::ScopedJoinHandle<'_, Vec<(usize, R)>>>,
) -> Vec<R> {
    let mut done: Vec<(usize, R)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        .collect();
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// [`map_in_parallel`] over owned items, one at a time, for work that
/// consumes its input.
pub(crate) fn map_owned_in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    map_in_parallel(&slots, 1, |slot| {
        let item = slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("each slot is taken once");
        f(item)
    })
}

/// [`map_in_parallel`] over items the calling thread produces while the
/// others work: `items` is drawn on this thread (a folder walk, say) and each
/// item handed to a worker as soon as it is drawn, so producing and working
/// overlap. The results come back in item order.
pub(crate) fn map_iter_in_parallel<T: Send, R: Send>(
    items: impl Iterator<Item = T>,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 {
        return items.map(f).collect();
    }
    let (work_tx, work_rx) = crossbeam_channel::bounded::<(usize, T)>(256);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let work_rx = work_rx.clone();
                let f = &f;
                scope.spawn(move || work_rx.iter().map(|(i, t)| (i, f(t))).collect::<Vec<_>>())
            })
            .collect();
        for item in items.enumerate() {
            if work_tx.send(item).is_err() {
                break; // every worker is gone: a panic, resumed below
            }
        }
        drop(work_tx);
        join_in_item_order(workers)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order() {
        let items: Vec<u32> = (0..1000).collect();
        let squares = map_in_parallel(&items, 8, |i| i * i);
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert!(map_in_parallel(&[] as &[u32], 8, |i| *i).is_empty());
        let strings: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        let lens = map_owned_in_parallel(strings, |s| s.len());
        assert_eq!(lens[9], 1);
        assert_eq!(lens[10], 2);
    }

    #[test]
    fn streamed_results_keep_item_order() {
        // A producer slower than the work, and work of uneven cost.
        let produced = (0..2000u64).inspect(|i| {
            if i % 500 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let out = map_iter_in_parallel(produced, |i| {
            (0..(i % 7) * 1000).fold(i, |a, b| a.wrapping_mul(31).wrapping_add(b))
        });
        let expected: Vec<u64> = (0..2000u64)
            .map(|i| (0..(i % 7) * 1000).fold(i, |a, b| a.wrapping_mul(31).wrapping_add(b)))
            .collect();
        assert_eq!(out, expected);
        assert!(map_iter_in_parallel(std::iter::empty::<u8>(), |i| i).is_empty());
    }
}
