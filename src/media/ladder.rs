//! The ladder as it stands now, from the configuration and what the camera
//! sends: whether the passthrough rung is offered (only for H.264: phones
//! are sent H.264, and an HEVC camera's picture is only ever encoded), every
//! rung's figures (a passthrough rung's stated, or measured from the stream),
//! and the bitrates the controllers decide on.
//!
//! Pure. The daemon applies it to the encoders and the controllers when it
//! changes; `/status` shows it.

use crate::config::{Figures, Rung};
use crate::media::picture::PictureStatus;
use crate::media::ts::VideoCodec;
use serde::Serialize;

/// Until its bitrate is measured, a passthrough rung that states none counts
/// as this many times the next rung's (a camera's picture costs more than
/// any encoded rung below it; a guess on the high side keeps a link from
/// being sent more than it carries in the stream's first seconds).
pub const PROVISIONAL_FACTOR: u32 = 2;

/// The passthrough rung now, for `/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassthroughStatus {
    /// Viewers may be sent it.
    pub offered: bool,
    /// Why it is offered or not, and where its figures come from.
    pub reason: String,
    /// Its figures as known now (0: not known yet).
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// The figures taken from the stream rather than the configuration.
    pub measured: Vec<&'static str>,
}

/// The ladder now.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderNow {
    /// Each rung's figures (a passthrough rung's: 0 where not known yet).
    pub figures: Vec<Figures>,
    /// kbit/s per rung for the controllers, falling from rung to rung.
    pub bitrates: Vec<u32>,
    /// The first rung offered: 1 when the passthrough rung is not.
    pub top: usize,
    pub passthrough: Option<PassthroughStatus>,
}

impl LadderNow {
    /// The rung a viewer that should start on `rung` starts on.
    pub fn start(&self, rung: usize) -> usize {
        rung.max(self.top)
    }
}

/// The ladder `ladder` (validated) for a camera whose stream shows `picture`.
pub fn ladder_now(ladder: &[Rung], picture: &PictureStatus) -> LadderNow {
    let mut figures: Vec<Figures> = ladder.iter().map(Rung::stated).collect();
    let mut bitrates: Vec<u32> = figures.iter().map(|f| f.bitrate_kbps).collect();
    let mut top = 0;
    let mut passthrough = None;
    if let Some(rung) = ladder.first().filter(|r| r.passthrough) {
        let next = ladder.get(1).and_then(|r| r.bitrate_kbps);
        let (status, f) = passthrough_now(rung, picture, next);
        if !status.offered && ladder.len() > 1 {
            top = 1;
        }
        figures[0] = f;
        let provisional = next.map_or(1, |n| n.saturating_mul(PROVISIONAL_FACTOR));
        let kbps = match f.bitrate_kbps {
            0 => provisional,
            k => k,
        };
        // The controllers need falling bitrates: a camera that sends less than
        // the rung below is counted just above it.
        bitrates[0] = kbps.max(next.map_or(0, |n| n + 1));
        passthrough = Some(status);
    }
    LadderNow {
        figures,
        bitrates,
        top,
        passthrough,
    }
}

/// The passthrough rung `rung`: offered or not, and its figures.
fn passthrough_now(
    rung: &Rung,
    picture: &PictureStatus,
    next_kbps: Option<u32>,
) -> (PassthroughStatus, Figures) {
    let mut f = rung.stated();
    let mut measured = Vec::new();
    let mut take = |name: &'static str, stated: &mut u32, from_stream: Option<u32>| {
        if *stated == 0 {
            *stated = from_stream.unwrap_or(0);
            measured.push(name);
        }
    };
    take("width", &mut f.width, picture.width);
    take("height", &mut f.height, picture.height);
    take("fps", &mut f.fps, picture.fps.map(|r| r.round() as u32));
    take("bitrate_kbps", &mut f.bitrate_kbps, picture.bitrate_kbps);
    let (offered, reason) = match picture.codec {
        Some(VideoCodec::H264) if measured.is_empty() => (
            true,
            "the camera sends H.264: its own picture, as configured".to_string(),
        ),
        Some(VideoCodec::H264) => (
            true,
            format!(
                "the camera sends H.264: its own picture, {} taken from its stream",
                measured.join(", ")
            ),
        ),
        Some(other) => (
            false,
            format!(
                "the camera sends {}: phones are sent H.264, so its picture is only encoded{}",
                other.name().to_uppercase(),
                if next_kbps.is_some() {
                    "; the top rung offered is ladder[1]"
                } else {
                    ", and the ladder has no encoded rung: add one"
                }
            ),
        ),
        None => (
            true,
            "waiting for the camera's stream (offered while it is H.264)".to_string(),
        ),
    };
    let status = PassthroughStatus {
        offered,
        reason,
        width: f.width,
        height: f.height,
        fps: f.fps,
        bitrate_kbps: f.bitrate_kbps,
        measured,
    };
    (status, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(passthrough: bool, figures: Option<(u32, u32, u32, u32)>) -> Rung {
        Rung {
            passthrough,
            width: figures.map(|f| f.0),
            height: figures.map(|f| f.1),
            fps: figures.map(|f| f.2),
            bitrate_kbps: figures.map(|f| f.3),
            keyframe_interval_s: None,
        }
    }

    fn ladder() -> Vec<Rung> {
        vec![
            rung(true, None),
            rung(false, Some((640, 360, 30, 1000))),
            rung(false, Some((320, 180, 15, 250))),
        ]
    }

    fn h264(kbps: Option<u32>) -> PictureStatus {
        PictureStatus {
            codec: Some(VideoCodec::H264),
            width: Some(848),
            height: Some(480),
            fps: Some(29.97),
            bitrate_kbps: kbps,
        }
    }

    #[test]
    fn a_passthrough_rung_takes_what_it_does_not_state_from_the_stream() {
        let now = ladder_now(&ladder(), &h264(Some(3100)));
        assert_eq!(now.top, 0);
        assert_eq!(
            now.figures[0],
            Figures {
                width: 848,
                height: 480,
                fps: 30,
                bitrate_kbps: 3100
            }
        );
        assert_eq!(now.bitrates, vec![3100, 1000, 250]);
        let p = now.passthrough.unwrap();
        assert!(p.offered, "{}", p.reason);
        assert_eq!(p.measured, ["width", "height", "fps", "bitrate_kbps"]);
        // A stated figure is kept.
        let mut l = ladder();
        l[0].bitrate_kbps = Some(4000);
        let now = ladder_now(&l, &h264(Some(3100)));
        assert_eq!(now.bitrates[0], 4000);
        assert_eq!(
            now.passthrough.unwrap().measured,
            ["width", "height", "fps"]
        );
    }

    #[test]
    fn an_unmeasured_bitrate_counts_high_and_bitrates_always_fall() {
        let now = ladder_now(&ladder(), &h264(None));
        assert_eq!(now.bitrates, vec![2 * 1000, 1000, 250]);
        assert_eq!(now.figures[0].bitrate_kbps, 0, "not known yet");
        // A camera sending less than the rung below is counted just above it.
        let now = ladder_now(&ladder(), &h264(Some(700)));
        assert_eq!(now.bitrates, vec![1001, 1000, 250]);
        assert_eq!(now.figures[0].bitrate_kbps, 700, "shown as measured");
        let waiting = ladder_now(&ladder(), &PictureStatus::default());
        assert_eq!(waiting.top, 0);
        assert!(waiting.passthrough.unwrap().reason.contains("waiting"));
    }

    #[test]
    fn an_hevc_camera_gets_no_passthrough_rung_and_says_why() {
        let hevc = PictureStatus {
            codec: Some(VideoCodec::Hevc),
            ..PictureStatus::default()
        };
        let now = ladder_now(&ladder(), &hevc);
        assert_eq!(now.top, 1);
        assert_eq!(now.start(0), 1);
        assert_eq!(now.start(2), 2);
        let p = now.passthrough.unwrap();
        assert!(!p.offered);
        assert!(
            p.reason.contains("HEVC") && p.reason.contains("ladder[1]"),
            "{}",
            p.reason
        );
        let alone = ladder_now(&ladder()[..1], &hevc);
        assert_eq!(alone.top, 0, "nothing else to offer");
        assert!(alone
            .passthrough
            .unwrap()
            .reason
            .contains("no encoded rung"));
    }

    #[test]
    fn a_ladder_without_passthrough_is_as_configured() {
        let l = &ladder()[1..];
        let now = ladder_now(l, &h264(Some(3000)));
        assert_eq!(
            (now.top, now.passthrough, now.bitrates),
            (0, None, vec![1000, 250])
        );
    }
}
