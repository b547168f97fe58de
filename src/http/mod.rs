//! The HTTP side: the server and its routes (`server`), the viewers' streams
//! (`stream`) and HLS (`hls`), who may connect (`admission`) and control (`control`), the
//! captive-portal answers for phones that just joined the access point (`captive`), the
//! page's files (`assets`) and live figures (`events`), Prometheus
//! (`metrics`), and the small HTTP/1.1 pieces the camera client and emulator
//! share (`request`, `response`, `client`). Knows nothing of encoding: it is
//! handed a `Context` of narrow handles.

pub mod admission;
pub mod assets;
pub mod captive;
pub mod client;
pub mod control;
pub mod events;
pub mod hls;
pub mod metrics;
pub mod request;
pub mod response;
pub mod server;
pub mod stream;

use crate::config::source::Current;
use crate::control::viewers::Viewers;
use crate::media::relay::Hub;
use crate::network::NetworkFile;
use crate::status::{Counters, Status};
use std::sync::Arc;

/// The daemon's whole state at one moment, and its health.
pub trait StatusSource: Send + Sync {
    fn status(&self) -> Status;
    /// Healthy while encoded output flows; the reason either way.
    fn health(&self) -> (bool, String);
}

/// What the HTTP side is given, and all it may touch.
pub struct Context {
    /// The running configuration (replaced on reload).
    pub config: Arc<Current>,
    /// Encoded video for `/stream.ts`.
    pub hub: Arc<Hub>,
    /// Viewers join and leave here and report their links; `POST /rung` pins here.
    pub viewers: Arc<Viewers>,
    pub status: Arc<dyn StatusSource>,
    pub counters: Arc<Counters>,
    pub admission: Arc<admission::Admission>,
    pub web: Arc<events::Web>,
    /// The image's network status file: where captive-portal probes are sent.
    pub network: Arc<NetworkFile>,
}
