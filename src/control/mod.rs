//! Quality decisions: each viewer's link measured from TCP_INFO (`link`),
//! pushes' links by echo probes (`probe`), and the controller that turns
//! link figures into rungs (`adapt`, pure; a headroom probe's answer per link
//! in `headroom`). Knows nothing of who owns the sockets it measures.

pub mod adapt;
pub mod headroom;
pub mod link;
pub mod probe;
pub mod viewer_link;
pub mod viewers;
