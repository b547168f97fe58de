//! The shared decoder's frames, handed to every encoder that reads them.
//!
//! Each run of the decoder (each time its ffmpeg starts) is one NUT stream:
//! a header, then whole frames (`nut`). An encoder that starts gets the
//! current run's header and its newest frames, so its first picture comes at
//! once, then every frame as it is cut. Frames wait in one ring of a few
//! frames shared by all; an encoder more than `MAX_BEHIND` frames behind skips
//! to a newer frame instead of holding up the decoder or the other encoders,
//! and one that falls off the ring resumes at the newest. Memory is bounded
//! in bytes: the ring's frames, the newest two, and the one frame each
//! encoder is writing. When a new run starts, every encoder reading the old
//! one is restarted on it (its timestamps start afresh).

use crate::media::nut::Frame;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Frames the ring holds; an encoder further behind skips (see `feed`).
pub const RING_FRAMES: usize = 4;
/// Frames an encoder may have waiting for it before it skips one.
pub const MAX_BEHIND: usize = 2;
/// Newest frames a starting encoder is given: the first is encoded as soon as
/// the second tells its frame-rate filter where the first ends.
const START_FRAMES: usize = 2;

/// Why an encoder reading frames was restarted: the decoder started again.
pub const DECODER_RESTARTED: &str = "decoder restarted";

/// One frame of one run.
#[derive(Debug, Clone)]
pub struct Unit {
    pub run: u64,
    pub frame: Frame,
}

struct Run {
    /// Counts the decoder's starts; 0 before the first.
    id: u64,
    /// Why the decoder started this run: what encoders count their restart as.
    reason: &'static str,
    /// The reason the owner gave for the restart it asked for, if any.
    asked: Option<&'static str>,
    header: Option<Bytes>,
    recent: VecDeque<Unit>,
    last_frame: Option<Instant>,
}

/// What the decoder hands its encoders, and their figures.
pub struct Frames {
    run: Mutex<Run>,
    ring: broadcast::Sender<Unit>,
    /// The run whose header is known (0: none yet).
    ready: watch::Sender<u64>,
    counts: Mutex<Counts>,
}

/// Frames cut and frames skipped by slow encoders (for `/status`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub frames: u64,
    pub skipped: u64,
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            run: Mutex::new(Run {
                id: 0,
                reason: DECODER_RESTARTED,
                asked: None,
                header: None,
                recent: VecDeque::new(),
                last_frame: None,
            }),
            ring: broadcast::channel(RING_FRAMES).0,
            ready: watch::channel(0).0,
            counts: Mutex::new(Counts::default()),
        }
    }
}

impl Frames {
    /// The owner is about to restart the decoder for `reason`: the encoders
    /// will count their own restart on the next run by it.
    pub fn restart_reason(&self, reason: &'static str) {
        self.run.lock().unwrap().asked = Some(reason);
    }

    /// A new run starts (the decoder's ffmpeg was started): its id.
    pub fn begin_run(&self) -> u64 {
        let mut r = self.run.lock().unwrap();
        r.id += 1;
        r.reason = r.asked.take().unwrap_or(DECODER_RESTARTED);
        r.header = None;
        r.recent.clear();
        r.id
    }

    /// The run's NUT header arrived: encoders may start reading it.
    pub fn set_header(&self, run: u64, header: Bytes) {
        let mut r = self.run.lock().unwrap();
        if r.id == run {
            r.header = Some(header);
            self.ready.send_replace(run);
        }
    }

    /// Hands out one frame of `run` (a frame of an older run is dropped).
    pub fn publish(&self, run: u64, frame: Frame) {
        let mut r = self.run.lock().unwrap();
        if r.id != run || r.header.is_none() {
            return;
        }
        let unit = Unit { run, frame };
        if r.recent.len() == START_FRAMES {
            r.recent.pop_front();
        }
        r.recent.push_back(unit.clone());
        r.last_frame = Some(Instant::now());
        // Sent under the lock: `subscribe` sees each frame either in
        // `recent` or on its receiver, never both, never neither.
        let _ = self.ring.send(unit);
        drop(r);
        self.counts.lock().unwrap().frames += 1;
    }

    /// A frame came within `within`: encoders reading frames can make progress.
    pub fn flowing(&self, within: Duration) -> bool {
        let r = self.run.lock().unwrap();
        r.last_frame.is_some_and(|t| t.elapsed() <= within)
    }

    pub fn counts(&self) -> Counts {
        *self.counts.lock().unwrap()
    }

    fn skipped(&self, n: u64) {
        self.counts.lock().unwrap().skipped += n;
    }

    /// The current run's header, its newest frames and a receiver for the
    /// frames that follow; None while the run has no header yet.
    fn subscribe(&self) -> Option<Subscription> {
        let r = self.run.lock().unwrap();
        let header = r.header.clone()?;
        Some(Subscription {
            run: r.id,
            header,
            recent: r.recent.iter().cloned().collect(),
            rx: self.ring.subscribe(),
        })
    }

    fn reason_of(&self, run: u64) -> &'static str {
        let r = self.run.lock().unwrap();
        if r.id == run {
            r.reason
        } else {
            DECODER_RESTARTED
        }
    }
}

struct Subscription {
    run: u64,
    header: Bytes,
    recent: Vec<Unit>,
    rx: broadcast::Receiver<Unit>,
}

/// Where one encoder's frames go, and which frames it takes.
struct Writer<W> {
    stdin: W,
    /// Skipping until a frame a reader may resume at (a syncpoint).
    skipping: bool,
}

impl<W: tokio::io::AsyncWrite + Unpin> Writer<W> {
    /// Writes `unit` unless it is being skipped; Err when the encoder is gone.
    async fn offer(&mut self, unit: &Unit) -> std::io::Result<bool> {
        if self.skipping && !unit.frame.sync {
            return Ok(false);
        }
        self.skipping = false;
        self.stdin.write_all(&unit.frame.data).await?;
        Ok(true)
    }
}

/// Feeds one encoder's stdin from `frames` until `stop`, the encoder going
/// away, or a new run; on a new run asks its supervisor (`restart`) to start
/// the encoder again on it.
pub async fn feed<W: tokio::io::AsyncWrite + Unpin>(
    frames: std::sync::Arc<Frames>,
    stdin: W,
    stop: CancellationToken,
    restart: mpsc::Sender<&'static str>,
) {
    let mut ready = frames.ready.subscribe();
    let sub = loop {
        if let Some(sub) = frames.subscribe() {
            break sub;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = ready.changed() => if changed.is_err() { return },
        }
    };
    let Subscription {
        run,
        header,
        recent,
        mut rx,
    } = sub;
    let mut out = Writer {
        stdin,
        skipping: true,
    };
    if out.stdin.write_all(&header).await.is_err() {
        return;
    }
    for unit in &recent {
        if out.offer(unit).await.is_err() {
            return;
        }
    }
    loop {
        // Dropping stdin on stop ends the encoder's input: it finishes at once.
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.recv() => r,
        };
        let unit = match received {
            Ok(unit) => unit,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Fell off the ring: on to the newest frame a reader can resume at.
                frames.skipped(n);
                out.skipping = true;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if unit.run != run {
            let _ = restart.try_send(frames.reason_of(unit.run));
            return;
        }
        if rx.len() >= MAX_BEHIND && unit.frame.sync {
            // Behind: this frame is dropped so that newer ones are on time.
            frames.skipped(1);
            continue;
        }
        match out.offer(&unit).await {
            Ok(true) => {}
            Ok(false) => frames.skipped(1),
            Err(_) => return, // the encoder went away; its supervisor restarts it
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    fn frame(n: u8, sync: bool) -> Frame {
        Frame {
            data: Bytes::from(vec![n; 3]),
            sync,
            pts: Some(u64::from(n)),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Reads what the encoder got until `n` bytes or a pause.
    async fn read_n(r: &mut tokio::io::DuplexStream, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        let mut at = 0;
        while at < n {
            let read = tokio::time::timeout(Duration::from_secs(2), r.read(&mut got[at..]))
                .await
                .expect("the encoder got too little")
                .unwrap();
            assert!(read > 0, "stdin closed after {at} bytes");
            at += read;
        }
        got
    }

    #[test]
    fn a_starting_encoder_gets_the_header_the_newest_frames_and_then_each_frame() {
        rt().block_on(async {
            let frames = Arc::new(Frames::default());
            let run = frames.begin_run();
            frames.publish(run, frame(1, true)); // before the header: dropped
            frames.set_header(run, Bytes::from_static(b"HEAD"));
            for n in 2..=4 {
                frames.publish(run, frame(n, true));
            }
            let (w, mut r) = tokio::io::duplex(1 << 16);
            let (tx, _rx) = mpsc::channel(1);
            let stop = CancellationToken::new();
            let task = tokio::spawn(feed(frames.clone(), w, stop.clone(), tx));
            assert_eq!(read_n(&mut r, 4 + 6).await, b"HEAD\x03\x03\x03\x04\x04\x04");
            tokio::task::yield_now().await;
            frames.publish(run, frame(5, true));
            assert_eq!(read_n(&mut r, 3).await, [5, 5, 5]);
            stop.cancel();
            task.await.unwrap();
            assert_eq!(frames.counts().frames, 4);
        });
    }

    #[test]
    fn a_start_or_a_skip_resumes_only_at_a_syncpoint() {
        rt().block_on(async {
            let frames = Arc::new(Frames::default());
            let run = frames.begin_run();
            frames.set_header(run, Bytes::from_static(b"H"));
            frames.publish(run, frame(1, true));
            frames.publish(run, frame(2, false));
            let (w, mut r) = tokio::io::duplex(1 << 16);
            let (tx, _rx) = mpsc::channel(1);
            let stop = CancellationToken::new();
            let task = tokio::spawn(feed(frames.clone(), w, stop.clone(), tx));
            assert_eq!(read_n(&mut r, 1 + 6).await, b"H\x01\x01\x01\x02\x02\x02");
            stop.cancel();
            task.await.unwrap();

            let frames = Arc::new(Frames::default());
            let run = frames.begin_run();
            frames.set_header(run, Bytes::from_static(b"H"));
            frames.publish(run, frame(1, false));
            frames.publish(run, frame(2, false));
            let (w, mut r) = tokio::io::duplex(1 << 16);
            let (tx, _rx) = mpsc::channel(1);
            let stop = CancellationToken::new();
            let task = tokio::spawn(feed(frames.clone(), w, stop.clone(), tx));
            assert_eq!(read_n(&mut r, 1).await, b"H");
            tokio::task::yield_now().await;
            frames.publish(run, frame(3, false));
            frames.publish(run, frame(4, true));
            assert_eq!(
                read_n(&mut r, 3).await,
                [4, 4, 4],
                "frames without a syncpoint cannot start a reader"
            );
            stop.cancel();
            task.await.unwrap();
        });
    }

    #[test]
    fn a_slow_encoder_skips_frames_and_holds_up_nobody() {
        rt().block_on(async {
            let frames = Arc::new(Frames::default());
            let run = frames.begin_run();
            frames.set_header(run, Bytes::from_static(b"H"));
            // A stdin that holds 4 bytes and is not read for a while: a stuck encoder.
            let (w, mut slow_r) = tokio::io::duplex(4);
            let (w2, mut r2) = tokio::io::duplex(1 << 16);
            let stop = CancellationToken::new();
            let (tx, _rx) = mpsc::channel(1);
            let slow = tokio::spawn(feed(frames.clone(), w, stop.clone(), tx.clone()));
            let fast = tokio::spawn(feed(frames.clone(), w2, stop.clone(), tx));
            tokio::task::yield_now().await;
            assert_eq!(read_n(&mut r2, 1).await, b"H");
            for n in 1..=50u8 {
                frames.publish(run, frame(n, true));
                tokio::task::yield_now().await;
                assert_eq!(
                    read_n(&mut r2, 3).await,
                    [n; 3],
                    "the fast one gets frame {n}"
                );
            }
            // The stuck one reads again: it gets the frame it was writing,
            // then the newest ones, no backlog.
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), slow_r.read(&mut buf)).await
            {
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(
                &got[..7],
                b"H\x01\x01\x01\x02\x02\x02",
                "frame 2 was being written"
            );
            assert_eq!(&got[7..], [49, 49, 49, 50, 50, 50], "{got:?}");
            assert!(frames.counts().skipped >= 45, "{:?}", frames.counts());
            stop.cancel();
            slow.await.unwrap();
            fast.await.unwrap();
        });
    }

    #[test]
    fn a_new_run_restarts_the_encoder_with_the_reason_the_owner_gave() {
        rt().block_on(async {
            let frames = Arc::new(Frames::default());
            let run = frames.begin_run();
            frames.set_header(run, Bytes::from_static(b"H"));
            let (w, mut r) = tokio::io::duplex(1 << 16);
            let (tx, mut rx) = mpsc::channel(1);
            let stop = CancellationToken::new();
            let task = tokio::spawn(feed(frames.clone(), w, stop.clone(), tx));
            assert_eq!(read_n(&mut r, 1).await, b"H");
            frames.restart_reason("new timeline");
            let next = frames.begin_run();
            frames.set_header(next, Bytes::from_static(b"H2"));
            frames.publish(run, frame(9, true)); // the old run's last words: dropped
            frames.publish(next, frame(1, true));
            task.await.unwrap();
            assert_eq!(rx.recv().await, Some("new timeline"));
            let again = frames.begin_run();
            frames.set_header(again, Bytes::from_static(b"H3"));
            assert_eq!(
                frames.reason_of(again),
                DECODER_RESTARTED,
                "a crash, not asked for"
            );
        });
    }
}
