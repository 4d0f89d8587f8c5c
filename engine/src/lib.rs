//! trawl's detection engine.
//!
//! Platform-free: it knows events, rules, hashing and the pipeline that joins
//! them, and nothing of where events come from. Sources (the live sensor, the
//! trace readers) produce [`event::Event`]s; rule front ends ([`sigma`],
//! [`ioc`], [`kql`]) produce [`rule::Rule`]s; [`matcher::Ruleset`] compiles all rules
//! into per-field multi-pattern automata and evaluates events against them;
//! [`pipeline`] runs that on worker threads and hands [`alert::Alert`]s to a
//! sink in input order.

pub mod alert;
pub mod derived;
pub mod event;
pub mod hash;
pub mod ioc;
pub mod kql;
pub mod load;
pub mod matcher;
mod parallel;
pub mod pipeline;
pub mod rule;
pub mod seed;
pub mod sigma;
pub mod walk;
