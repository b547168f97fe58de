//! What one link answers to a headroom probe (padding on top of its video,
//! asking it to carry what the best rung needs), told interval by interval
//! so that the answer comes in well under a second and a lossy link is not
//! taken for a slow one. Pure: fed the link's samples.
//!
//! A retransmission stall acknowledges next to nothing for a while and then
//! the backlog at once: its intervals say nothing about capacity and are
//! left out. A slow link carries part of what it is asked, interval after
//! interval (a lossy one only while a stall begins or ends, between intervals
//! at full speed): that is its answer. The first interval counted is left out
//! of any answer below the full rate: it holds what a shaper's bucket, or a
//! queue that was empty, let through at once (a probe of a 600 kbit/s tbf
//! read 845).
//!
//! The kernel's delivery rate cannot confirm a slow link here: the padding
//! is kept within a few round trips (`viewer_link::pad_bytes`), so its
//! samples count as limited by the sender and are not reported.

use crate::control::link::LinkSample;

/// Intervals that carried what the best rung needs, before a link has room
/// for it (0.6 s at the default sample interval; stalls between them do not
/// matter).
const FULL_INTERVALS: u32 = 3;

/// Successive intervals carrying part of what is asked that answer for a
/// slow link (0.6 s at the default sample interval; a stall between them
/// starts the run again). The first of them is not counted in the answer.
const PARTIAL_INTERVALS: u32 = 3;

/// What a probe asks of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask {
    /// When the probe began, seconds: intervals from before do not count.
    pub start: f64,
    /// What the best rung needs, kbit/s (its bitrate times headroom).
    pub full_kbps: f64,
    /// Below this an interval is a stall, kbit/s.
    pub stall_kbps: f64,
    /// The viewer's video this far behind live (waiting in the hub while
    /// padding fills the link) ends the probe: it now costs the viewer.
    pub harm_lag_ms: f64,
}

/// One link's intervals during a probe, and its answer once it has one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Whether an interval was counted yet, and the intervals after the
    /// first that were not stalls: kbit carried and seconds.
    counted_one: bool,
    kbit: f64,
    secs: f64,
    /// Intervals that carried `full_kbps`, and their kbit and seconds.
    full: u32,
    full_kbit: f64,
    full_secs: f64,
    /// The current run of intervals carrying part of it: length, and the
    /// rates summed after its first.
    partial: u32,
    partial_later_kbps: f64,
    answer: Option<f64>,
}

impl Tally {
    /// The interval from `from` to `s.t`.
    pub fn add(&mut self, ask: &Ask, from: f64, s: &LinkSample) {
        let dt = s.t - from;
        if self.answer.is_some() || from < ask.start - 1e-6 || dt <= 0.0 {
            return;
        }
        let rate = s.recent_kbps.max(0.0);
        if rate < ask.stall_kbps {
            // Nothing to learn, and a run of partial intervals is broken.
            self.partial = 0;
            self.partial_later_kbps = 0.0;
        } else {
            if self.counted_one {
                self.kbit += rate * dt;
                self.secs += dt;
            }
            self.counted_one = true;
            if rate >= ask.full_kbps {
                self.full += 1;
                self.full_kbit += rate * dt;
                self.full_secs += dt;
                self.partial = 0;
                self.partial_later_kbps = 0.0;
            } else {
                if self.partial > 0 {
                    self.partial_later_kbps += rate;
                }
                self.partial += 1;
            }
        }
        // A lossy link repairing loss reads far above it (when the kernel
        // reports a sample at all): not a slow link.
        let kernel_disagrees = s.delivery_kbps >= ask.full_kbps;
        if self.full >= FULL_INTERVALS {
            self.answer = Some(self.full_kbit / self.full_secs);
        } else if self.partial >= PARTIAL_INTERVALS && !kernel_disagrees {
            self.answer = Some(self.partial_later_kbps / f64::from(self.partial - 1));
        } else if s.lag_ms as f64 > ask.harm_lag_ms {
            self.answer = Some(self.measured().unwrap_or(0.0));
        }
    }

    /// The link's answer, once it has given one: kbit/s it carries.
    pub fn answer(&self) -> Option<f64> {
        self.answer
    }

    /// At the probe's end: its answer, or else what it carried in the
    /// intervals that were not stalls, after the first (None if there were
    /// not two).
    pub fn finish(&self) -> Option<f64> {
        self.answer.or_else(|| self.measured())
    }

    fn measured(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.kbit / self.secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASK: Ask = Ask {
        start: 10.0,
        full_kbps: 3360.0,
        stall_kbps: 400.0,
        harm_lag_ms: 350.0,
    };

    fn interval(t: f64, kbps: f64, delivery: f64) -> LinkSample {
        LinkSample {
            t,
            recent_kbps: kbps,
            throughput_kbps: kbps,
            delivery_kbps: delivery,
            lag_ms: 20,
            ..LinkSample::default()
        }
    }

    /// Feeds intervals of 0.2 s from the probe's start; the index of the
    /// interval that gave the answer, and the answer.
    fn feed(rates: &[(f64, f64)]) -> (Option<usize>, Option<f64>) {
        let mut tally = Tally::default();
        // One interval from before the probe: not counted.
        tally.add(&ASK, 9.9, &interval(10.1, 300.0, 0.0));
        let mut t = 10.1;
        for (i, (kbps, delivery)) in rates.iter().enumerate() {
            tally.add(&ASK, t, &interval(t + 0.2, *kbps, *delivery));
            t += 0.2;
            if tally.answer().is_some() {
                return (Some(i), tally.answer());
            }
        }
        (None, tally.finish())
    }

    #[test]
    fn an_ample_link_answers_in_three_intervals() {
        let (at, kbps) = feed(&[(4000.0, 0.0); 10]);
        assert_eq!(at, Some(2));
        assert!((kbps.unwrap() - 4000.0).abs() < 1e-6);
    }

    #[test]
    fn a_lossy_link_is_not_read_as_slow_through_its_stalls() {
        // Retransmission timeouts: nothing, then a reading straddling the
        // stall's end, then the backlog; the kernel's delivery rate reads
        // the link fast while it repairs loss.
        let rates = [
            (4000.0, 0.0),
            (100.0, 90_000.0),
            (1500.0, 90_000.0),
            (5200.0, 90_000.0),
            (1800.0, 90_000.0),
            (1500.0, 90_000.0),
            (4000.0, 0.0),
        ];
        let (at, kbps) = feed(&rates);
        assert_eq!(at, Some(6), "three intervals at full rate: {kbps:?}");
        assert!(kbps.unwrap() >= ASK.full_kbps);
    }

    #[test]
    fn a_capped_link_answers_in_three_intervals_with_what_it_carries() {
        // A tbf at 600 kbit/s: the first interval reads its bucket's burst;
        // the kernel reports no delivery rate (the padding is app-limited).
        let (at, kbps) = feed(&[(1240.0, 0.0), (610.0, 0.0), (590.0, 0.0), (600.0, 0.0)]);
        assert_eq!(at, Some(2));
        assert!((kbps.unwrap() - 600.0).abs() < 1e-6, "{kbps:?}");
    }

    #[test]
    fn a_link_that_carries_a_middle_rung_says_how_much() {
        let (at, kbps) = feed(&[(2600.0, 0.0), (2000.0, 2100.0), (2000.0, 0.0)]);
        assert_eq!(at, Some(2));
        assert!((kbps.unwrap() - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn video_held_back_ends_the_probe_with_what_was_measured_after_the_first_interval() {
        let late = |t: f64, kbps: f64| LinkSample {
            lag_ms: 500,
            ..interval(t, kbps, 0.0)
        };
        // A burst through a shaper's bucket, and the video already late:
        // nothing to go by but the burst, so no room.
        let mut tally = Tally::default();
        tally.add(&ASK, 10.0, &late(10.2, 1300.0));
        assert_eq!(tally.answer(), Some(0.0));
        let mut tally = Tally::default();
        tally.add(&ASK, 10.0, &interval(10.2, 1300.0, 0.0));
        assert_eq!(tally.answer(), None);
        tally.add(&ASK, 10.2, &late(10.4, 600.0));
        assert_eq!(tally.answer(), Some(600.0));
    }

    #[test]
    fn without_an_answer_the_end_gives_the_mean_of_what_was_carried_after_the_first() {
        let (at, kbps) = feed(&[(3000.0, 0.0), (100.0, 0.0), (3400.0, 0.0), (3000.0, 0.0)]);
        assert_eq!(at, None);
        assert!((kbps.unwrap() - 3200.0).abs() < 1e-6, "{kbps:?}");
        assert_eq!(Tally::default().finish(), None, "nothing carried");
        let (_, one) = feed(&[(3000.0, 0.0)]);
        assert_eq!(one, None, "one interval is not enough");
    }
}
