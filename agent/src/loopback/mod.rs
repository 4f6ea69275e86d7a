//! The loopback server: the HTTPS API pages call (server), its typed errors and their one JSON form
//! (api), the caps and deadlines that keep it up (limits), the OS user behind each connection (peer), and
//! on a shared computer the machine-wide broker that tells each user's pages where that user's agent
//! listens (broker). No `unsafe` here: the system calls are platform/sys's.
#![forbid(unsafe_code)]

pub(crate) mod api;
pub(crate) mod broker;
pub(crate) mod limits;
pub(crate) mod peer;
#[allow(dead_code, unused_imports)]
// the machine service's channel to each user's agent (issue 19), not built yet
pub(crate) mod peer_cred;
pub(crate) mod peer_table;
pub(crate) mod server;

pub use api::Problem;
pub use broker::{serve as serve_broker, Broker};
pub use limits::Limits;
pub use peer::current_user;
pub use server::{admit, serve, Admission, Agent};
