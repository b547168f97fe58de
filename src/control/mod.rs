//! Quality decisions: each viewer's link measured from TCP_INFO (`link`),
//! pushes' links by echo probes (`probe`), and the controller that turns
//! link figures into rungs (`adapt`, pure). Knows nothing of who owns the
//! sockets it measures.

pub mod adapt;
pub mod link;
pub mod probe;
