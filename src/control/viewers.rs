//! The viewers, the pushes, and the controllers that decide their rungs: one
//! registry.
//!
//! Each link (a viewer's TCP connection, a push's probed path) is joined
//! here, reports what it was sent and what its link sampler measured, and
//! reports the rung its reader actually receives. Under the per-viewer policy
//! every link has its own controller and its own wanted rung; under
//! "weakest" and "strongest" one controller decides one rung for all. The
//! daemon ticks the controllers, starts the encoders the wanted rungs need,
//! and the readers move by themselves. The controllers own the link samples
//! and the rung state; `/status` reads both from here.

use crate::clock::Clock;
use crate::config::Adapt;
use crate::control::adapt::{AdaptStatus, Controller, LinkId};
use crate::control::link::LinkSample;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
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
    /// The rung it receives now (None until its first keyframe).
    pub rung: Option<usize>,
    /// The rung it is moving to, while it moves.
    pub target_rung: Option<usize>,
    /// The newest link figures (TCP_INFO over the last second).
    pub link: Option<LinkSample>,
    /// Nothing acknowledged for a second: not counted in quality decisions.
    pub stalled: bool,
    /// Its own controller's state (per-viewer policy).
    pub adapt: Option<AdaptStatus>,
}

/// How many viewers may watch at once: in all, and from one IP address (so
/// that one device on the access point cannot take every place).
#[derive(Debug, Clone, Copy)]
pub struct Places {
    pub total: usize,
    pub per_address: usize,
}

impl Places {
    pub fn of(server: &crate::config::Server) -> Places {
        Places {
            total: server.max_viewers,
            per_address: server.max_viewers_per_address,
        }
    }
}

/// Why a viewer was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Everyone,
    Address,
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

/// What only a viewer has (a push has none of it).
#[derive(Debug)]
struct Viewer {
    address: SocketAddr,
    connected_at: Instant,
    bytes_sent: u64,
    skips: u64,
    lag: Duration,
    standing: Standing,
}

#[derive(Debug)]
struct Link {
    viewer: Option<Viewer>,
    /// The rung its reader receives now.
    rung: Option<usize>,
    /// The rung it should receive.
    want: usize,
    /// Since when (controller clock) `want` differs from `rung`.
    moving_since: Option<f64>,
    /// Its own controller (per-viewer policy), else None.
    controller: Option<Controller>,
}

#[derive(Debug)]
struct Inner {
    params: Adapt,
    bitrates: Vec<u32>,
    /// The best rung offered now (see `Viewers::set_ladder`).
    top: usize,
    start_rung: usize,
    links: BTreeMap<LinkId, Link>,
    /// One controller for everyone ("weakest", "strongest").
    shared: Option<Controller>,
    next_viewer: u64,
    /// The operator's pin under the per-viewer policy: it holds for links
    /// that join later, and for HLS, even while nobody is connected.
    pin: Option<usize>,
}

impl Inner {
    fn new_controller(&self, rung: usize) -> Controller {
        let mut c = Controller::new(self.params.clone(), self.bitrates.clone(), rung);
        c.set_ladder(self.bitrates.clone(), self.top);
        c
    }

    /// The controller that decides for `id`.
    fn controller_of(&mut self, id: LinkId) -> Option<&mut Controller> {
        match &mut self.shared {
            Some(c) => Some(c),
            None => self.links.get_mut(&id)?.controller.as_mut(),
        }
    }

    fn join(&mut self, id: LinkId, viewer: Option<Viewer>) {
        let want = match &self.shared {
            Some(c) => c.status().switching_to.unwrap_or(c.rung()),
            None => self.start_rung.max(self.top),
        };
        let controller = self.shared.is_none().then(|| {
            let mut c = self.new_controller(want);
            // An operator's pin holds for newcomers too.
            let _ = c.pin(self.pinned());
            c
        });
        self.links.insert(
            id,
            Link {
                viewer,
                rung: None,
                want,
                moving_since: None,
                controller,
            },
        );
    }

    fn pinned(&self) -> Option<usize> {
        match &self.shared {
            Some(c) => c.status().pinned,
            None => self.pin,
        }
    }
}

/// Viewers, pushes, their links and the controllers.
#[derive(Debug)]
pub struct Viewers {
    clock: Clock,
    inner: Mutex<Inner>,
    /// Woken by a sample showing a link in trouble, so that the daemon's
    /// tick decides at once rather than up to a sample interval later.
    pub trouble: tokio::sync::Notify,
}

impl Viewers {
    /// A registry deciding with `params` over a ladder of `bitrates`; new
    /// viewers start on `start_rung`.
    pub fn new(clock: Clock, params: Adapt, bitrates: Vec<u32>, start_rung: usize) -> Viewers {
        let shared = params
            .policy
            .shared()
            .then(|| Controller::new(params.clone(), bitrates.clone(), start_rung));
        Viewers {
            clock,
            inner: Mutex::new(Inner {
                params,
                bitrates,
                top: 0,
                start_rung,
                links: BTreeMap::new(),
                shared,
                next_viewer: 0,
                pin: None,
            }),
            trouble: tokio::sync::Notify::new(),
        }
    }

    /// Seconds on the controllers' clock.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    // --- Joining and leaving ------------------------------------------------

    /// Registers a viewer unless `max` are watching.
    pub fn join(&self, address: SocketAddr, places: Places) -> Result<u64, Full> {
        let mut g = self.inner.lock().unwrap();
        let addresses = g.links.values().filter_map(|l| l.viewer.as_ref());
        let (viewers, same_address) = addresses.fold((0, 0), |(n, same), v| {
            (n + 1, same + usize::from(v.address.ip() == address.ip()))
        });
        if viewers >= places.total {
            return Err(Full::Everyone);
        }
        if same_address >= places.per_address {
            return Err(Full::Address);
        }
        g.next_viewer += 1;
        let id = g.next_viewer;
        let viewer = Viewer {
            address,
            connected_at: Instant::now(),
            bytes_sent: 0,
            skips: 0,
            lag: Duration::ZERO,
            standing: Standing::WarmingUp,
        };
        g.join(LinkId::Viewer(id), Some(viewer));
        Ok(id)
    }

    /// Registers push `index` (its reader follows a rung like a viewer's).
    pub fn join_output(&self, index: usize) {
        self.inner.lock().unwrap().join(LinkId::Output(index), None);
    }

    pub fn leave(&self, id: impl Into<LinkId>) {
        let id = id.into();
        let mut g = self.inner.lock().unwrap();
        g.links.remove(&id);
        if let Some(c) = &mut g.shared {
            c.remove(id);
        }
    }

    // --- What a link's task reports and asks ----------------------------------

    /// Bytes written to a viewer; `lag` is how far behind live they were.
    pub fn progress(&self, id: u64, bytes: usize, skipped: bool, lag: Duration) {
        let mut g = self.inner.lock().unwrap();
        if let Some(v) = g
            .links
            .get_mut(&LinkId::Viewer(id))
            .and_then(|l| l.viewer.as_mut())
        {
            v.bytes_sent += bytes as u64;
            v.skips += u64::from(skipped);
            v.lag = lag;
        }
    }

    /// A viewer's newest link figures, and whether they count.
    pub fn link(&self, id: u64, sample: LinkSample, standing: Standing) {
        let id = LinkId::Viewer(id);
        let mut g = self.inner.lock().unwrap();
        let Some(v) = g.links.get_mut(&id).and_then(|l| l.viewer.as_mut()) else {
            return;
        };
        v.standing = standing;
        let troubled = match (g.controller_of(id), standing) {
            (Some(c), Standing::Counted) => c.observe(id, sample),
            (Some(c), _) => {
                c.note(id, sample);
                false
            }
            (None, _) => false,
        };
        if troubled {
            self.trouble.notify_one();
        }
    }

    /// A push probe's figures (None: it cannot probe right now).
    pub fn output_link(&self, index: usize, sample: Option<LinkSample>) {
        let id = LinkId::Output(index);
        let mut g = self.inner.lock().unwrap();
        if !g.links.contains_key(&id) {
            return;
        }
        let troubled = match (g.controller_of(id), sample) {
            (Some(c), Some(s)) => c.observe(id, s),
            (Some(c), None) => {
                c.remove(id);
                false
            }
            (None, _) => false,
        };
        if troubled {
            self.trouble.notify_one();
        }
    }

    /// The rung a link should receive.
    pub fn want(&self, id: impl Into<LinkId>) -> Option<usize> {
        let g = self.inner.lock().unwrap();
        g.links.get(&id.into()).map(|l| l.want)
    }

    /// Whether the link's move to its wanted rung is a step down its own
    /// controller decided because the link did not carry its rung: its
    /// reader should then send nothing more of the old rung (`Reader::set_urgent`).
    pub fn stepping_down(&self, id: impl Into<LinkId>) -> bool {
        let g = self.inner.lock().unwrap();
        g.links.get(&id.into()).is_some_and(|l| {
            let down = l.controller.as_ref().and_then(Controller::stepping_down);
            down == Some(l.want)
        })
    }

    /// A link's reader now receives `rung` (first join, or a switch done).
    pub fn reached(&self, id: impl Into<LinkId>, rung: usize) {
        let id = id.into();
        let now = self.now();
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        let Some(l) = g.links.get_mut(&id) else {
            return;
        };
        let first = l.rung.is_none();
        if !first && l.rung != Some(rung) {
            log::info!("{id}: now on rung {rung}");
        }
        l.rung = Some(rung);
        if rung != l.want {
            return;
        }
        l.moving_since = None;
        if first {
            return;
        }
        match (&mut g.shared, &mut l.controller) {
            (Some(c), _) if c.status().switching_to == Some(rung) => c.switched(now),
            (None, Some(c)) => c.switched(now),
            _ => {}
        }
    }

    /// A rung's bitrate, kbit/s.
    pub fn bitrate_kbps(&self, rung: usize) -> Option<u32> {
        self.inner.lock().unwrap().bitrates.get(rung).copied()
    }

    /// Padding a link's own socket adds during its headroom probe, kbit/s.
    pub fn padding_kbps(&self, id: impl Into<LinkId>) -> u64 {
        let id = id.into();
        let mut g = self.inner.lock().unwrap();
        g.controller_of(id)
            .and_then(|c| c.padding_kbps())
            .map_or(0, |k| k.round() as u64)
    }

    // --- The daemon: decisions ----------------------------------------------

    /// One round of decisions (only while `automatic`, or with a pin): every
    /// link whose controller wants another rung gets it as its `want`.
    /// Returns the rungs wanted now or soon, for the encoders. A link that
    /// could not get there within `switch_timeout` stays where it is.
    pub fn tick(&self, automatic: bool, switch_timeout: Duration) -> BTreeSet<usize> {
        let now = self.now();
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        match &mut g.shared {
            Some(c) => {
                let automatic = automatic || c.status().pinned.is_some();
                if let Some(d) = automatic.then(|| c.tick(now)).flatten() {
                    log::info!(
                        "rung {} -> {} for every viewer: {}",
                        c.rung(),
                        d.to,
                        d.reason
                    );
                    c.begin_switch(d.to);
                    for l in g.links.values_mut() {
                        l.want = d.to;
                        l.moving_since.get_or_insert(now);
                    }
                }
            }
            None => {
                for (id, l) in g.links.iter_mut() {
                    let Some(c) = &mut l.controller else { continue };
                    let automatic = automatic || c.status().pinned.is_some();
                    if let Some(d) = automatic.then(|| c.tick(now)).flatten() {
                        log::info!("{id}: rung {} -> {}: {}", c.rung(), d.to, d.reason);
                        c.begin_switch(d.to);
                        l.want = d.to;
                        l.moving_since = Some(now);
                    }
                }
            }
        }
        // Switches that did not happen in time are given up.
        let timeout = switch_timeout.as_secs_f64();
        for (id, l) in g.links.iter_mut() {
            let late = l.moving_since.is_some_and(|t| now - t > timeout);
            if !late {
                continue;
            }
            log::warn!(
                "{id}: rung {} did not reach it within {timeout} s; staying on rung {:?}",
                l.want,
                l.rung
            );
            l.moving_since = None;
            if let Some(r) = l.rung {
                l.want = r;
            }
            match (&mut g.shared, &mut l.controller) {
                (Some(c), _) | (None, Some(c)) => c.switch_failed(now),
                _ => {}
            }
        }
        // The rungs wanted now, and those a step down may soon need (started
        // ahead, so that the switch does not wait for an encoder). A
        // controller that does not decide (fixed mode, a pin) needs none.
        let mut wanted: BTreeSet<usize> = g.links.values().map(|l| l.want).collect();
        let deciding = |c: &&Controller| automatic && c.status().pinned.is_none();
        match &g.shared {
            Some(c) if deciding(&c) => wanted.extend(c.prospects()),
            Some(_) => {}
            None => wanted.extend(
                g.links
                    .values()
                    .filter_map(|l| l.controller.as_ref())
                    .filter(deciding)
                    .flat_map(Controller::prospects),
            ),
        }
        wanted
    }

    /// Links wanting `from` get `to` instead (no encoder for `from`).
    pub fn redirect(&self, from: usize, to: usize) {
        let now = self.now();
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        for l in g.links.values_mut().filter(|l| l.want == from) {
            l.want = to;
            let c = match (&mut g.shared, &mut l.controller) {
                (Some(c), _) | (None, Some(c)) => c,
                _ => continue,
            };
            if c.status().switching_to == Some(from) {
                // The controller waits for its switch: it happens, to `to`.
                c.switch_failed(now);
                if Some(to) != l.rung {
                    c.begin_switch(to);
                }
            }
        }
    }

    /// Every rung a link receives or moves to.
    pub fn rungs_in_use(&self) -> BTreeSet<usize> {
        let g = self.inner.lock().unwrap();
        g.links
            .values()
            .flat_map(|l| l.rung.into_iter().chain(Some(l.want)))
            .collect()
    }

    /// The one rung of the shared policies (None: per-viewer).
    pub fn shared_rung(&self) -> Option<usize> {
        let g = self.inner.lock().unwrap();
        g.shared
            .as_ref()
            .map(|c| c.status().switching_to.unwrap_or(c.rung()))
    }

    /// Pins every link to a rung (the operator's override) or, with None,
    /// returns to automatic.
    pub fn pin(&self, rung: Option<usize>) -> Result<AdaptStatus, String> {
        let mut g = self.inner.lock().unwrap();
        if let Some(c) = &mut g.shared {
            c.pin(rung)?;
            return Ok(c.status());
        }
        if let Some(r) = rung.filter(|r| *r >= g.bitrates.len()) {
            return Err(format!(
                "rung {r} does not exist: the ladder has {} rung(s), numbered from 0",
                g.bitrates.len()
            ));
        }
        for l in g.links.values_mut() {
            if let Some(c) = &mut l.controller {
                c.pin(rung)?;
            }
        }
        g.pin = rung;
        drop(g);
        Ok(self.adapt_status())
    }

    /// Fresh controllers for new settings or a new ladder, keeping each link's
    /// rung (within the ladder) and an operator's pin if it still fits.
    pub fn reconfigure(&self, params: Adapt, bitrates: Vec<u32>, start_rung: usize) {
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        let rungs = bitrates.len();
        let pin = g.pinned().filter(|p| *p < rungs);
        let shared_rung = g
            .shared
            .as_ref()
            .map(|c| c.rung().min(rungs - 1))
            .unwrap_or(start_rung);
        g.params = params.clone();
        g.bitrates = bitrates.clone();
        g.start_rung = start_rung;
        g.pin = pin;
        g.top = g.top.min(rungs - 1);
        let top = g.top;
        g.shared = params.policy.shared().then(|| {
            let mut c = Controller::new(params.clone(), bitrates.clone(), shared_rung);
            c.set_ladder(bitrates.clone(), top);
            let _ = c.pin(pin);
            c
        });
        for l in g.links.values_mut() {
            let rung = l.rung.unwrap_or(l.want).min(rungs - 1);
            l.want = if g.shared.is_some() {
                shared_rung
            } else {
                rung
            };
            l.moving_since = None;
            l.controller = g.shared.is_none().then(|| {
                let mut c = Controller::new(params.clone(), bitrates.clone(), rung);
                c.set_ladder(bitrates.clone(), top);
                let _ = c.pin(pin);
                c
            });
            if l.rung.is_some_and(|r| r >= rungs) {
                l.rung = None;
            }
        }
    }

    /// The ladder as it stands now (the same rungs): its bitrates (a
    /// passthrough rung's is measured from the camera's stream) and the best
    /// rung offered (1 while the passthrough rung is not). Controllers keep
    /// their state; a link above `top` is moved down to it.
    pub fn set_ladder(&self, bitrates: Vec<u32>, top: usize) {
        let now = self.now();
        let mut g = self.inner.lock().unwrap();
        let g = &mut *g;
        if bitrates.len() != g.bitrates.len() {
            return; // a reload with another ladder is under way: reconfigure
        }
        let top = top.min(bitrates.len() - 1);
        g.bitrates = bitrates.clone();
        g.top = top;
        if let Some(c) = &mut g.shared {
            c.set_ladder(bitrates.clone(), top);
        }
        for l in g.links.values_mut() {
            if let Some(c) = &mut l.controller {
                c.set_ladder(bitrates.clone(), top);
            }
            let moving_to = match (&g.shared, &l.controller) {
                (Some(c), _) | (None, Some(c)) => c.status().switching_to,
                _ => None,
            };
            if l.want < top {
                l.want = moving_to.unwrap_or(top).max(top);
                l.moving_since = Some(now);
            }
        }
    }

    /// The controllers' state: the shared one, or a summary of the viewers'.
    pub fn adapt_status(&self) -> AdaptStatus {
        let g = self.inner.lock().unwrap();
        if let Some(c) = &g.shared {
            return c.status();
        }
        let all: Vec<AdaptStatus> = g
            .links
            .values()
            .filter_map(|l| l.controller.as_ref().map(Controller::status))
            .collect();
        AdaptStatus {
            mode: if g.pinned().is_some() {
                "manual"
            } else {
                "auto"
            },
            rung: g.start_rung,
            switching_to: None,
            pinned: g.pinned(),
            policy: g.params.policy,
            switches: all.iter().map(|s| s.switches).sum(),
            up_backoff: all.iter().map(|s| s.up_backoff).fold(1.0, f64::max),
            last_reason: None,
            probing_kbps: None,
        }
    }

    // --- Status ---------------------------------------------------------------

    /// Viewers now.
    pub fn count(&self) -> usize {
        let g = self.inner.lock().unwrap();
        g.links.values().filter(|l| l.viewer.is_some()).count()
    }

    pub fn status(&self) -> Vec<ViewerStatus> {
        let g = self.inner.lock().unwrap();
        g.links
            .iter()
            .filter_map(|(id, l)| {
                let v = l.viewer.as_ref()?;
                let LinkId::Viewer(n) = *id else { return None };
                let sample = match &g.shared {
                    Some(c) => c.sample(*id),
                    None => l.controller.as_ref().and_then(|c| c.sample(*id)),
                };
                Some(ViewerStatus {
                    id: n,
                    address: v.address.to_string(),
                    connected_s: v.connected_at.elapsed().as_secs_f64(),
                    bytes_sent: v.bytes_sent,
                    skips: v.skips,
                    lag_ms: v.lag.as_millis() as u64,
                    rung: l.rung,
                    target_rung: Some(l.want).filter(|w| Some(*w) != l.rung),
                    link: sample,
                    stalled: v.standing == Standing::Stalled,
                    adapt: l.controller.as_ref().map(Controller::status),
                })
            })
            .collect()
    }

    /// A push's newest probe figures.
    pub fn output_sample(&self, index: usize) -> Option<LinkSample> {
        let id = LinkId::Output(index);
        let g = self.inner.lock().unwrap();
        match &g.shared {
            Some(c) => c.sample(id),
            None => g.links.get(&id)?.controller.as_ref()?.sample(id),
        }
    }

    /// The rung a push receives now, the one it moves to, and its own
    /// controller's state (per-viewer policy).
    pub fn output_rung(&self, index: usize) -> (Option<usize>, Option<usize>, Option<AdaptStatus>) {
        let g = self.inner.lock().unwrap();
        g.links
            .get(&LinkId::Output(index))
            .map_or((None, None, None), |l| {
                (
                    l.rung,
                    Some(l.want).filter(|w| Some(*w) != l.rung),
                    l.controller.as_ref().map(Controller::status),
                )
            })
    }
}

/// The standby rung (`adapt.standby_rung`) to keep encoded while some link
/// watches a better rung, so that its step down never waits for an encoder.
pub fn standby(standby: Option<usize>, watched: &BTreeSet<usize>) -> Option<usize> {
    standby.filter(|s| watched.iter().any(|r| r < s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;

    const LADDER: [u32; 3] = [4000, 1000, 500];

    fn viewers(policy: Policy) -> Viewers {
        let params = Adapt {
            policy,
            ..Adapt::default()
        };
        Viewers::new(Clock::default(), params, LADDER.to_vec(), 0)
    }

    fn places(n: usize) -> Places {
        Places {
            total: n,
            per_address: n,
        }
    }

    /// Viewers on one phone (one address), told apart by port.
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
        let v = viewers(Policy::PerViewer);
        let a = v.join(addr(1), places(2)).unwrap();
        let b = v.join(addr(2), places(2)).unwrap();
        assert_ne!(a, b);
        assert_eq!(v.join(addr(3), places(2)), Err(Full::Everyone));
        v.link(a, sample(10), Standing::Counted);
        v.progress(a, 1000, true, Duration::from_millis(40));
        v.reached(a, 0);
        let s = v.status();
        assert_eq!((s[0].bytes_sent, s[0].skips, s[0].lag_ms), (1000, 1, 40));
        assert_eq!(
            s[0].link.unwrap().lag_ms,
            10,
            "the controller's sample is shown"
        );
        assert_eq!((s[0].rung, s[0].target_rung), (Some(0), None));
        v.leave(a);
        assert_eq!(v.count(), 1);
        assert!(v.join(addr(3), places(2)).is_ok());
    }

    async fn woken(v: &Viewers) -> bool {
        let wait = v.trouble.notified();
        tokio::time::timeout(Duration::from_millis(20), wait)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_sample_showing_trouble_wakes_the_tick_and_a_clean_one_does_not() {
        let v = viewers(Policy::PerViewer);
        let a = v.join(addr(1), places(2)).unwrap();
        v.link(a, sample(10), Standing::Counted);
        assert!(!woken(&v).await);
        v.link(a, sample(5000), Standing::WarmingUp);
        assert!(
            !woken(&v).await,
            "a link that does not count decides nothing"
        );
        v.link(a, sample(5000), Standing::Counted);
        assert!(woken(&v).await);
    }

    #[test]
    fn one_address_cannot_take_every_place() {
        let v = viewers(Policy::PerViewer);
        let two_each = Places {
            total: 4,
            per_address: 2,
        };
        let other = SocketAddr::from(([192, 168, 4, 3], 1));
        let a = v.join(addr(1), two_each).unwrap();
        v.join(addr(2), two_each).unwrap();
        assert_eq!(v.join(addr(3), two_each), Err(Full::Address));
        assert!(
            v.join(other, two_each).is_ok(),
            "another phone still gets in"
        );
        v.leave(a);
        assert!(
            v.join(addr(3), two_each).is_ok(),
            "a place of its own freed"
        );
    }

    #[test]
    fn pushes_count_as_links_but_not_as_viewers() {
        let v = viewers(Policy::PerViewer);
        v.join_output(0);
        assert_eq!(v.count(), 0);
        assert_eq!(v.want(LinkId::Output(0)), Some(0));
        v.reached(LinkId::Output(0), 0);
        let (rung, target, adapt) = v.output_rung(0);
        assert_eq!((rung, target), (Some(0), None));
        assert_eq!(adapt.map(|a| a.rung), Some(0), "its own controller");
        assert!(v.status().is_empty());
    }

    #[test]
    fn a_stalled_viewer_is_shown_with_its_figures() {
        let v = viewers(Policy::PerViewer);
        let a = v.join(addr(1), places(4)).unwrap();
        v.link(a, sample(5000), Standing::Stalled);
        assert!(v.status()[0].stalled);
        assert_eq!(v.status()[0].link.unwrap().lag_ms, 5000);
        v.link(a, sample(20), Standing::Counted);
        assert!(!v.status()[0].stalled);
    }

    #[test]
    fn in_fixed_mode_trouble_starts_no_lower_rung_ahead() {
        for policy in [Policy::PerViewer, Policy::Weakest] {
            let v = viewers(policy);
            let a = v.join(addr(1), places(4)).unwrap();
            v.reached(a, 0);
            // Counted, far behind live: trouble.
            v.link(a, sample(5000), Standing::Counted);
            assert_eq!(
                v.tick(false, Duration::from_secs(10)),
                BTreeSet::from([0]),
                "{policy:?}"
            );
            assert_eq!(
                v.tick(true, Duration::from_secs(10)),
                BTreeSet::from([0, 1, 2]),
                "automatic: every rung below, ahead ({policy:?})"
            );
        }
    }

    #[test]
    fn a_pin_moves_every_viewer_and_holds_for_newcomers() {
        for policy in [Policy::PerViewer, Policy::Weakest] {
            let v = viewers(policy);
            let a = v.join(addr(1), places(4)).unwrap();
            v.reached(a, 0);
            v.pin(Some(2)).unwrap();
            let wanted = v.tick(false, Duration::from_secs(10));
            assert_eq!(wanted, BTreeSet::from([2]), "{policy:?}");
            assert_eq!(v.status()[0].target_rung, Some(2));
            v.reached(a, 2);
            assert_eq!(v.status()[0].target_rung, None);
            let b = v.join(addr(2), places(4)).unwrap();
            v.tick(false, Duration::from_secs(10));
            assert_eq!(v.want(b), Some(2), "{policy:?}");
            assert!(v.pin(Some(7)).is_err());
        }
    }

    #[test]
    fn a_pin_made_with_nobody_connected_holds_for_who_comes() {
        let v = viewers(Policy::PerViewer);
        v.pin(Some(1)).unwrap();
        assert_eq!(v.adapt_status().pinned, Some(1), "HLS reads it from here");
        let a = v.join(addr(1), places(4)).unwrap();
        v.tick(false, Duration::from_secs(10));
        assert_eq!(v.want(a), Some(1));
        v.leave(a);
        v.pin(None).unwrap();
        assert_eq!(v.adapt_status().pinned, None);
        v.pin(Some(2)).unwrap();
        v.reconfigure(Adapt::default(), vec![3000, 800], 0);
        assert_eq!(v.adapt_status().pinned, None, "rung 2 left the ladder");
    }

    #[test]
    fn a_redirected_rung_is_wanted_instead() {
        let v = viewers(Policy::PerViewer);
        let a = v.join(addr(1), places(4)).unwrap();
        v.reached(a, 0);
        v.pin(Some(1)).unwrap();
        v.tick(false, Duration::from_secs(10));
        v.redirect(1, 2);
        assert_eq!(v.want(a), Some(2));
        assert_eq!(v.rungs_in_use(), BTreeSet::from([0, 2]));
    }

    #[test]
    fn a_rung_no_longer_offered_moves_its_links_to_the_best_one_that_is() {
        for policy in [Policy::PerViewer, Policy::Weakest] {
            let v = viewers(policy);
            let a = v.join(addr(1), places(4)).unwrap();
            v.reached(a, 0);
            // The camera turns out to send HEVC: no passthrough rung 0.
            v.set_ladder(LADDER.to_vec(), 1);
            assert_eq!(v.want(a), Some(1), "{policy:?}");
            v.reached(a, 1);
            let b = v.join(addr(2), places(4)).unwrap();
            assert_eq!(v.want(b), Some(1), "a newcomer starts there ({policy:?})");
            // The measured bitrate changes: nobody moves.
            v.set_ladder(vec![5000, 1000, 500], 1);
            assert_eq!((v.want(a), v.bitrate_kbps(0)), (Some(1), Some(5000)));
            assert!(v
                .tick(true, Duration::from_secs(10))
                .iter()
                .all(|r| *r >= 1));
        }
    }

    #[test]
    fn a_switch_that_never_arrives_is_given_up() {
        let v = viewers(Policy::PerViewer);
        let a = v.join(addr(1), places(4)).unwrap();
        v.reached(a, 0);
        v.pin(Some(1)).unwrap();
        v.tick(false, Duration::from_secs(10));
        assert_eq!(v.want(a), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        v.tick(false, Duration::from_millis(10));
        assert_eq!(v.want(a), Some(0), "back to the rung it receives");
    }

    #[test]
    fn reconfiguring_keeps_rungs_within_the_new_ladder() {
        let v = viewers(Policy::PerViewer);
        let a = v.join(addr(1), places(4)).unwrap();
        v.reached(a, 2);
        v.reconfigure(Adapt::default(), vec![3000, 800], 0);
        assert_eq!(v.want(a), Some(1));
    }

    #[test]
    fn the_standby_rung_is_kept_only_below_someone() {
        let watched = |r: &[usize]| r.iter().copied().collect::<BTreeSet<usize>>();
        assert_eq!(standby(Some(2), &watched(&[0])), Some(2));
        assert_eq!(standby(Some(2), &watched(&[2, 3])), None, "nobody above it");
        assert_eq!(standby(Some(2), &watched(&[])), None, "nobody at all");
        assert_eq!(standby(None, &watched(&[0])), None);
    }
}
