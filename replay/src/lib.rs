//! Trace readers and the replay driver.
