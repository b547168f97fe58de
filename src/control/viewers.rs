//! The viewers and the controller that decides their rung: one registry.
//!
//! The HTTP side joins a viewer, reports what it sent and what its link
//! sampler measured, and leaves; the daemon ticks the controller and tells it
//! about switches. The controller owns the link samples (viewers' and
//! pushes') and the rung state; `/status` reads both from here.

use crate::clock::Clock;
use crate::control::adapt::{AdaptStatus, Controller, Decision, LinkId, Params};
use crate::control::link::LinkSample;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One viewer of `/stream.ts`.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerStatus {
    pub id: u64,
    pub address: String,
    pub connected_s: f64,
    pub bytes_sent: u64,
    pub skips: u64,
    /// How far behind live the viewer's next chunk was at its last write.
    pub lag_ms: u64,
    /// The newest link figures (TCP_INFO over the last second).
    pub link: Option<LinkSample>,
    /// Nothing acknowledged for a second: not counted in quality decisions.
    pub stalled: bool,
}

/// Where a viewer stands in the controller's eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Just connected: its figures describe the keyframe it joined at.
    WarmingUp,
    Counted,
    /// Nothing acknowledged for a while: gone, not slow.
    Stalled,
}

#[derive(Debug)]
struct Entry {
    address: SocketAddr,
    connected_at: Instant,
    bytes_sent: u64,
    skips: u64,
    lag: Duration,
    standing: Standing,
}

#[derive(Debug)]
struct Inner {
    entries: BTreeMap<u64, Entry>,
    next_id: u64,
    controller: Controller,
}

/// Viewers, their links and the controller.
#[derive(Debug)]
pub struct Viewers {
    clock: Clock,
    inner: Mutex<Inner>,
    /// Padding each viewer adds to its video during a headroom probe, kbit/s.
    padding_kbps: AtomicU64,
}

impl Viewers {
    pub fn new(clock: Clock, controller: Controller) -> Viewers {
        Viewers {
            clock,
            inner: Mutex::new(Inner {
                entries: BTreeMap::new(),
                next_id: 0,
                controller,
            }),
            padding_kbps: AtomicU64::new(0),
        }
    }

    /// Seconds on the controller's clock.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    // --- The HTTP side ------------------------------------------------------

    /// Registers a viewer unless `max` are watching.
    pub fn join(&self, address: SocketAddr, max: usize) -> Option<u64> {
        let mut g = self.inner.lock().unwrap();
        if g.entries.len() >= max {
            return None;
        }
        g.next_id += 1;
        let id = g.next_id;
        g.entries.insert(
            id,
            Entry {
                address,
                connected_at: Instant::now(),
                bytes_sent: 0,
                skips: 0,
                lag: Duration::ZERO,
                standing: Standing::WarmingUp,
            },
        );
        Some(id)
    }

    pub fn leave(&self, id: u64) {
        let mut g = self.inner.lock().unwrap();
        g.entries.remove(&id);
        g.controller.remove(LinkId::Viewer(id));
    }

    /// Bytes written to a viewer; `lag` is how far behind live they were.
    pub fn progress(&self, id: u64, bytes: usize, skipped: bool, lag: Duration) {
        if let Some(e) = self.inner.lock().unwrap().entries.get_mut(&id) {
            e.bytes_sent += bytes as u64;
            e.skips += u64::from(skipped);
            e.lag = lag;
        }
    }

    /// A viewer's newest link figures, and whether they count.
    pub fn link(&self, id: u64, sample: LinkSample, standing: Standing) {
        let mut g = self.inner.lock().unwrap();
        let Some(e) = g.entries.get_mut(&id) else {
            return;
        };
        e.standing = standing;
        match standing {
            Standing::Counted => g.controller.observe(LinkId::Viewer(id), sample),
            _ => g.controller.note(LinkId::Viewer(id), sample),
        }
    }

    /// Padding a viewer adds to its video now (0: none), kbit/s.
    pub fn padding_kbps(&self) -> u64 {
        self.padding_kbps.load(Ordering::Relaxed)
    }

    // --- Pushes -------------------------------------------------------------

    /// A probe's figures for output `index` (None: it cannot probe right now).
    pub fn output_link(&self, index: usize, sample: Option<LinkSample>) {
        let mut g = self.inner.lock().unwrap();
        match sample {
            Some(s) => g.controller.observe(LinkId::Output(index), s),
            None => g.controller.remove(LinkId::Output(index)),
        }
    }

    /// Forgets every output's link (the outputs changed).
    pub fn forget_outputs(&self, count: usize) {
        let mut g = self.inner.lock().unwrap();
        for i in 0..count {
            g.controller.remove(LinkId::Output(i));
        }
    }

    pub fn output_sample(&self, index: usize) -> Option<LinkSample> {
        self.inner
            .lock()
            .unwrap()
            .controller
            .sample(LinkId::Output(index))
    }

    // --- The daemon: decisions ----------------------------------------------

    /// One controller tick: the rung to switch to, if any (only while
    /// `automatic`, or with a pin). Starts the switch in the controller.
    pub fn tick(&self, automatic: bool) -> Option<Decision> {
        let now = self.now();
        let mut g = self.inner.lock().unwrap();
        let c = &mut g.controller;
        let automatic = automatic || c.status().pinned.is_some();
        let decision = if automatic { c.tick(now) } else { None };
        let padding = c.padding_kbps().unwrap_or(0.0);
        self.padding_kbps
            .store(padding.round() as u64, Ordering::Relaxed);
        if let Some(d) = &decision {
            c.begin_switch(d.to);
        }
        decision
    }

    /// Starts a switch the controller did not decide (new encoder settings).
    pub fn begin_switch(&self, to: usize) {
        self.inner.lock().unwrap().controller.begin_switch(to);
    }

    /// Viewers are now on the rung being switched to.
    pub fn switched(&self) {
        let now = self.now();
        self.inner.lock().unwrap().controller.switched(now);
    }

    /// The new encoder never delivered.
    pub fn switch_failed(&self) {
        let now = self.now();
        self.inner.lock().unwrap().controller.switch_failed(now);
    }

    /// Pins a rung (the operator's override) or, with None, returns to automatic.
    pub fn pin(&self, rung: Option<usize>) -> Result<AdaptStatus, String> {
        let mut g = self.inner.lock().unwrap();
        g.controller.pin(rung)?;
        Ok(g.controller.status())
    }

    /// A fresh controller for new settings, on `rung`, keeping an operator's
    /// pin if it still fits. Viewers' samples start afresh.
    pub fn new_controller(&self, params: Params, bitrates: Vec<u32>, rung: usize) {
        let mut g = self.inner.lock().unwrap();
        let rungs = bitrates.len();
        let pin = g.controller.status().pinned.filter(|p| *p < rungs);
        let mut c = Controller::new(params, bitrates, rung.min(rungs - 1));
        let _ = c.pin(pin);
        g.controller = c;
    }

    pub fn adapt_status(&self) -> AdaptStatus {
        self.inner.lock().unwrap().controller.status()
    }

    // --- Status ---------------------------------------------------------------

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().entries.len()
    }

    pub fn status(&self) -> Vec<ViewerStatus> {
        let g = self.inner.lock().unwrap();
        g.entries
            .iter()
            .map(|(id, e)| ViewerStatus {
                id: *id,
                address: e.address.to_string(),
                connected_s: e.connected_at.elapsed().as_secs_f64(),
                bytes_sent: e.bytes_sent,
                skips: e.skips,
                lag_ms: e.lag.as_millis() as u64,
                link: g.controller.sample(LinkId::Viewer(*id)),
                stalled: e.standing == Standing::Stalled,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewers() -> Viewers {
        Viewers::new(
            Clock::default(),
            Controller::new(Params::default(), vec![2500, 800], 0),
        )
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 168, 4, 2], port))
    }

    fn sample(lag_ms: u64) -> LinkSample {
        LinkSample {
            t: 0.0,
            throughput_kbps: 2000.0,
            lag_ms,
            ..LinkSample::default()
        }
    }

    #[test]
    fn joining_is_capped_and_leaving_forgets_the_link() {
        let v = viewers();
        let a = v.join(addr(1), 2).unwrap();
        let b = v.join(addr(2), 2).unwrap();
        assert_ne!(a, b);
        assert_eq!(v.join(addr(3), 2), None);
        v.link(a, sample(10), Standing::Counted);
        v.progress(a, 1000, true, Duration::from_millis(40));
        let s = v.status();
        assert_eq!((s[0].bytes_sent, s[0].skips, s[0].lag_ms), (1000, 1, 40));
        assert_eq!(
            s[0].link.unwrap().lag_ms,
            10,
            "the controller's sample is shown"
        );
        v.leave(a);
        assert_eq!(v.count(), 1);
        assert!(v.join(addr(3), 2).is_some());
    }

    #[test]
    fn a_stalled_viewer_is_shown_with_its_figures() {
        let v = viewers();
        let a = v.join(addr(1), 4).unwrap();
        v.link(a, sample(5000), Standing::Stalled);
        assert!(v.status()[0].stalled);
        assert_eq!(v.status()[0].link.unwrap().lag_ms, 5000);
        v.link(a, sample(20), Standing::Counted);
        assert!(!v.status()[0].stalled);
    }
}
