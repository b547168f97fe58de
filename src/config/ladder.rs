//! The quality ladder's rungs: what each states, the figures a rung has, and
//! the ladder used when the file has none (the camera's own picture on top).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// The camera's own H.264, relayed, not re-encoded: the first rung only.
    /// Its size, rate and bitrate are the camera's: as the operator states
    /// them, or (any left out) as measured from the stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passthrough: bool,
    /// An encoded rung states all four (validation); a passthrough rung may
    /// leave any out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    /// Seconds between this rung's keyframes (lower rungs may use shorter, so
    /// a step down waits less); unset: `encoder.keyframe_interval_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_interval_s: Option<f64>,
}

/// A rung's picture and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Figures {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl Rung {
    /// The figures it states; one it leaves out (a passthrough rung's, taken
    /// from the stream) is 0. An encoded rung states all four (validation).
    pub fn stated(&self) -> Figures {
        Figures {
            width: self.width.unwrap_or(0),
            height: self.height.unwrap_or(0),
            fps: self.fps.unwrap_or(0),
            bitrate_kbps: self.bitrate_kbps.unwrap_or(0),
        }
    }
}

/// The ladder used when the file has no `[[ladder]]`, best first: the
/// camera's own picture (its size, rate and bitrate measured from its stream;
/// offered while it is H.264), then four encoded 16:9 rungs. The two lowest
/// have keyframes twice a second: a viewer moves down at the lower rung's
/// keyframe, so a struggling phone waits half as long for it.
pub fn default_ladder() -> Vec<Rung> {
    let camera = Rung {
        passthrough: true,
        width: None,
        height: None,
        fps: None,
        bitrate_kbps: None,
        keyframe_interval_s: None,
    };
    let encoded = [
        (1280, 720, 30, 2500, None),
        (960, 540, 30, 1500, None),
        (640, 360, 30, 800, Some(0.5)),
        (426, 240, 15, 300, Some(0.5)),
    ]
    .into_iter()
    .map(
        |(width, height, fps, bitrate_kbps, keyframe_interval_s)| Rung {
            passthrough: false,
            keyframe_interval_s,
            width: Some(width),
            height: Some(height),
            fps: Some(fps),
            bitrate_kbps: Some(bitrate_kbps),
        },
    );
    std::iter::once(camera).chain(encoded).collect()
}
