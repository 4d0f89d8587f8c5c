use std::time::{Duration, Instant};

use super::*;
use crate::etw::recorded::{kernel_start, kernel_stop, mof_start};

const TIMEOUT: Duration = Duration::from_secs(3);

fn joined(offer: Offer) -> JoinedStart {
    match offer {
        Offer::Joined(j) => j,
        other => panic!("expected a join, got {other:?}"),
    }
}

#[test]
fn either_half_may_come_first() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 16);
    assert_eq!(j.offer_mof(mof_start(), t0, &mut out), Offer::Pending);
    let a = joined(j.offer_kernel(kernel_start(), t0, &mut out));
    assert!(a.is_complete());
    assert_eq!(a.process_id(), 4312);

    assert_eq!(j.offer_kernel(kernel_start(), t0, &mut out), Offer::Pending);
    assert!(j
        .pending(4312)
        .is_some_and(|(m, k)| m.is_none() && k.is_some()));
    let b = joined(j.offer_mof(mof_start(), t0, &mut out));
    assert_eq!(a, b);
    assert!(out.is_empty());
    assert_eq!(j.stats().joined, 2);
    assert_eq!(j.stats().pending, 0);
}

#[test]
fn a_lone_half_is_released_at_the_timeout_and_its_partner_is_late() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 16);
    j.offer_mof(mof_start(), t0, &mut out);
    j.expire(t0 + TIMEOUT - Duration::from_millis(1), &mut out);
    assert!(out.is_empty(), "not yet");
    j.expire(t0 + TIMEOUT, &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].mof.is_some() && out[0].kernel.is_none());
    assert_eq!(j.stats().mof_only, 1);

    let late = j.offer_kernel(kernel_start(), t0 + TIMEOUT, &mut out);
    assert_eq!(late, Offer::Late(LateHalf::Kernel(kernel_start())));
    assert_eq!(j.stats().late, 1);
    assert_eq!(j.stats().pending, 0);
}

#[test]
fn a_reused_id_after_a_lone_release_is_a_new_start_not_a_late_half() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 16);
    j.offer_mof(mof_start(), t0, &mut out);
    j.expire(t0 + TIMEOUT, &mut out);
    // Another MOF start for 4312: the same half again, so a new process.
    assert_eq!(
        j.offer_mof(mof_start(), t0 + TIMEOUT, &mut out),
        Offer::Pending
    );
    assert_eq!(j.stats().late, 0);
}

#[test]
fn the_same_half_twice_releases_the_first() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 16);
    j.offer_kernel(kernel_start(), t0, &mut out);
    j.offer_kernel(kernel_start(), t0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(j.stats().kernel_only, 1);
    assert_eq!(j.stats().pending, 1);
}

#[test]
fn a_full_map_evicts_the_oldest_half() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 2);
    for pid in [1, 2, 3] {
        let mut m = mof_start();
        m.process_id = pid;
        assert_eq!(j.offer_mof(m, t0, &mut out), Offer::Pending);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].process_id(), 1);
    let s = j.stats();
    assert_eq!((s.evicted, s.mof_only, s.pending), (1, 1, 2));
}

#[test]
fn a_stop_waits_for_its_start() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 16);
    j.offer_kernel(kernel_start(), t0, &mut out);
    assert_eq!(j.offer_stop(kernel_stop()), None, "held with the start");
    let start = joined(j.offer_mof(mof_start(), t0, &mut out));
    assert_eq!(start.stop, Some(kernel_stop()));
    // With nothing pending a stop goes straight through.
    assert_eq!(j.offer_stop(kernel_stop()), Some(kernel_stop()));
}

#[test]
fn drain_releases_everything_in_arrival_order() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut j = StartJoiner::new(TIMEOUT, 16);
    let mut m = mof_start();
    m.process_id = 7;
    j.offer_mof(m, t0, &mut out);
    j.offer_kernel(kernel_start(), t0, &mut out);
    j.drain(t0, &mut out);
    let pids: Vec<u32> = out.iter().map(JoinedStart::process_id).collect();
    assert_eq!(pids, [7, 4312]);
    assert_eq!(j.stats().pending, 0);
}
