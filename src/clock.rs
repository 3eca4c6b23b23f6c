//! Time: wall-clock timestamps for records, a monotonic reading for every elapsed-time rule,
//! and the injectable clock that provides both.
//!
//! A grace period must never be shortened by a wall-clock step (an NTP correction, an operator
//! fixing the date). So a clock reading is a [`Moment`]: the wall time, which the library records
//! (audit entries, node timestamps), and a monotonic time, from which every grace and timeout is
//! measured. The monotonic time is "wall time at process start plus time elapsed since": it is
//! monotonic within a process, and a value persisted by one process still means roughly the same
//! instant to the next one, so graces that span a restart are measured on the wall clock across
//! the downtime (the best any process can do) and monotonically again from then on.
//!
//! All arithmetic saturates: no clock value or duration can overflow or panic.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC (wall clock). Serialised as a plain integer.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating instead of overflowing for absurd durations.
    pub fn plus(self, d: Duration) -> Timestamp {
        self.plus_ms(duration_ms(d).unsigned_abs())
    }

    /// `self + ms`, saturating.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)))
    }

    /// Milliseconds from `earlier` to `self`; zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }

    pub fn to_datetime(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// A duration as whole milliseconds, saturating at `i64::MAX`.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One reading of the library clock.
///
/// `wall` is what gets recorded; `mono` is what elapsed time is measured on. Persisted as the
/// pair `[wall, mono]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Moment {
    pub wall: Timestamp,
    /// Monotonic milliseconds, anchored at the wall time when the process started.
    pub mono: i64,
}

impl Moment {
    /// A moment where both clocks agree (a fresh manual clock, tests).
    pub fn at(wall: Timestamp) -> Moment {
        Moment { wall, mono: wall.0 }
    }

    /// Monotonic milliseconds from `earlier` to `self`; zero if `earlier` is later.
    pub fn elapsed_since(self, earlier: Moment) -> u64 {
        self.mono.saturating_sub(earlier.mono).max(0) as u64
    }

    /// The wall time `ms` from now (when a timer that still has `ms` to run will fire).
    pub fn wall_in(self, ms: u64) -> Timestamp {
        self.wall.plus_ms(ms)
    }

    /// Whether `self` happened strictly before `other` on the monotonic clock.
    pub fn before(self, other: Moment) -> bool {
        self.mono < other.mono
    }
}

impl Serialize for Moment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.wall.0, self.mono).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Moment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (wall, mono) = <(i64, i64)>::deserialize(d)?;
        Ok(Moment {
            wall: Timestamp(wall),
            mono,
        })
    }
}

/// A source of "now". Implementations must be cheap and thread-safe, and `mono` must never go
/// backwards.
pub trait Clock: Send + Sync {
    fn now(&self) -> Moment;
}

/// The system clock: wall time from the OS, monotonic time from [`std::time::Instant`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// The process-wide anchor of the monotonic time: (wall ms, instant) at first use.
static MONO_ANCHOR: once_cell::sync::Lazy<(i64, std::time::Instant)> =
    once_cell::sync::Lazy::new(|| (wall_now_ms(), std::time::Instant::now()));

fn wall_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Clock for SystemClock {
    fn now(&self) -> Moment {
        let (anchor_wall, anchor) = *MONO_ANCHOR;
        let elapsed = i64::try_from(anchor.elapsed().as_millis()).unwrap_or(i64::MAX);
        Moment {
            wall: Timestamp(wall_now_ms()),
            mono: anchor_wall.saturating_add(elapsed),
        }
    }
}

/// A clock that only moves when told to; for tests, examples and simulations.
///
/// [`ManualClock::advance`] moves both clocks (time passes); [`ManualClock::set`] steps only the
/// wall clock, as an NTP correction or an operator would, so tests can show that a step never
/// shortens a grace.
#[derive(Debug, Default)]
pub struct ManualClock {
    wall_ms: AtomicI64,
    mono_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            wall_ms: AtomicI64::new(start.0),
            mono_ms: AtomicI64::new(start.0),
        }
    }

    /// Lets `d` pass: both clocks move forward, saturating at the end of time.
    pub fn advance(&self, d: Duration) {
        let ms = duration_ms(d);
        for clock in [&self.wall_ms, &self.mono_ms] {
            let _ = clock.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(ms))
            });
        }
    }

    /// Steps the wall clock to `t` (forwards or backwards); the monotonic clock does not move.
    pub fn set(&self, t: Timestamp) {
        self.wall_ms.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Moment {
        Moment {
            wall: Timestamp(self.wall_ms.load(Ordering::SeqCst)),
            mono: self.mono_ms.load(Ordering::SeqCst),
        }
    }
}

/// Formats milliseconds the way Go prints a rounded `time.Duration` ("1h2m3s", "250ms").
pub fn human_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}s");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_advances_both_and_steps_only_the_wall() {
        let c = ManualClock::new(Timestamp(1_000));
        assert_eq!(c.now(), Moment::at(Timestamp(1_000)));
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now(), Moment::at(Timestamp(3_000)));
        c.set(Timestamp(10));
        assert_eq!(
            c.now(),
            Moment {
                wall: Timestamp(10),
                mono: 3_000
            }
        );
    }

    #[test]
    fn extreme_values_saturate_instead_of_wrapping() {
        let c = ManualClock::new(Timestamp(i64::MAX - 5));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Moment::at(Timestamp(i64::MAX)));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now().wall, Timestamp(i64::MAX));
        assert_eq!(Timestamp(5).millis_since(Timestamp(10)), 0);
        assert_eq!(Timestamp(i64::MIN).millis_since(Timestamp(i64::MAX)), 0);
        assert_eq!(
            Timestamp(i64::MAX).millis_since(Timestamp(i64::MIN)),
            i64::MAX as u64
        );
        assert_eq!(
            Timestamp(i64::MAX - 1).plus(Duration::from_secs(10)),
            Timestamp(i64::MAX)
        );
        assert_eq!(Timestamp(0).plus_ms(u64::MAX), Timestamp(i64::MAX));
        let early = Moment {
            wall: Timestamp(0),
            mono: i64::MIN,
        };
        let late = Moment {
            wall: Timestamp(0),
            mono: i64::MAX,
        };
        assert_eq!(late.elapsed_since(early), i64::MAX as u64);
        assert_eq!(early.elapsed_since(late), 0);
        // Out-of-range wall times still print.
        assert_eq!(Timestamp(i64::MAX).to_string(), format!("{}ms", i64::MAX));
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri isolates the program from the real clocks")]
    fn the_system_clock_is_monotonic_and_near_the_wall() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b.mono >= a.mono);
        assert!((a.mono - a.wall.0).abs() < 24 * 3_600_000, "{a:?}");
    }

    #[test]
    fn moments_persist_as_a_pair() {
        let m = Moment {
            wall: Timestamp(5),
            mono: 7,
        };
        assert_eq!(serde_json::to_string(&m).unwrap(), "[5,7]");
        assert_eq!(serde_json::from_str::<Moment>("[5,7]").unwrap(), m);
    }
}
