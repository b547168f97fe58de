//! Time as the daemon shows and measures it: wall-clock Unix time for
//! people and pages, and seconds since start on the monotonic clock for the
//! controllers (which must not jump when the Pi's clock is set).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Milliseconds since the Unix epoch, for the page's graphs.
pub fn unix_ms() -> u64 {
    (unix_now() * 1000.0) as u64
}

/// A UTC calendar time: year, month (1-12), day, hour, minute, second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

/// The UTC calendar time of whole Unix seconds (H. Hinnant's civil_from_days).
pub fn civil(unix_secs: i64) -> Civil {
    let (days, rest) = (unix_secs.div_euclid(86_400), unix_secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: rest / 3600,
        minute: rest / 60 % 60,
        second: rest % 60,
    }
}

/// Monotonic seconds since the daemon started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            started: Instant::now(),
        }
    }
}

impl Clock {
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymdhms(c: Civil) -> [i64; 6] {
        [c.year, c.month, c.day, c.hour, c.minute, c.second]
    }

    #[test]
    fn civil_dates_across_epochs_leap_days_and_centuries() {
        assert_eq!(ymdhms(civil(0)), [1970, 1, 1, 0, 0, 0]);
        assert_eq!(ymdhms(civil(-1)), [1969, 12, 31, 23, 59, 59]);
        assert_eq!(ymdhms(civil(951_782_400)), [2000, 2, 29, 0, 0, 0]);
        assert_eq!(ymdhms(civil(4_107_542_399)), [2100, 2, 28, 23, 59, 59]);
        assert_eq!(ymdhms(civil(4_107_542_400)), [2100, 3, 1, 0, 0, 0]);
        assert_eq!(ymdhms(civil(1_796_643_766)), [2026, 12, 7, 11, 42, 46]); // date -u -d @1796643766
    }
}
