//! The detector's windows and the counts kept over them: the slot lengths a track buckets its
//! events by, and the counts replicas share (both the in-process tracks and the Redis-shared
//! state read them from here).

pub const SHORT_SLOT_US: i64 = 5 * 60 * 1_000_000;
pub const LONG_SLOT_US: i64 = 60 * 60 * 1_000_000;
pub const DAY_SLOT_US: i64 = 8 * LONG_SLOT_US;
/// One calendar-free day: the week's buckets (seven of them).
pub const WEEK_SLOT_US: i64 = 24 * LONG_SLOT_US;

/// Counts across replicas, as of `at_us`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub at_us: i64,
    pub short: u64,
    pub long: u64,
    pub day: u64,
}
