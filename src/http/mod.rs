//! The HTTP side: the server and its routes (`server`), who may connect
//! (`admission`), the page's live figures (`events`) and Prometheus
//! (`metrics`). Knows nothing of encoding.

pub mod admission;
pub mod events;
pub mod metrics;
pub mod server;
