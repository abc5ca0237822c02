//! weft-lb: the load balancer in front of a deployment's input endpoints.
//!
//! One [`Vip`] is one L4 (TCP) listener: the virtual IP address and port of an
//! Azure input endpoint (or of one instance input endpoint). The fabric
//! controller binds it, then keeps its backend set equal to the role instances
//! that are Ready with [`Vip::set_backends`], and drains an instance with
//! [`Vip::drain`] before the agent stops it.
//!
//! What a client of the VIP can rely on:
//! - new connections are spread round-robin over the current backend set
//!   (or by client IP address, [`Distribution::SourceIp`]);
//! - a backend that refuses or does not answer the connect within
//!   [`VipConfig::connect_timeout`] is skipped and the next one tried, so the
//!   client never sees it; only when every backend fails (or the set is empty)
//!   is the client connection closed, and counted in [`VipStats::no_backend`];
//! - a backend that accepts the connection but closes or fails before
//!   sending its first byte (an instance killed with the request queued) is
//!   replaced by the next one, with the client's bytes so far (up to 64 KiB)
//!   sent again, counted in [`VipStats::replayed`]; once a backend has
//!   answered, the connection is committed to it;
//! - changing the set never touches an established connection; a removed
//!   backend gets no new connection from the moment `set_backends` returns;
//! - bytes are relayed unchanged in both directions with `TCP_NODELAY` on both
//!   sides, and a half-close is forwarded (when one side finishes sending, the
//!   write side towards the other is shut down; the other direction goes on);
//! - a client whose address the VIP's [`AccessControl`] refuses is closed
//!   at once, before any backend is contacted (counted in
//!   [`VipStats::denied`]);
//! - a connection idle in both directions for [`VipConfig::idle_timeout`]
//!   (Azure's 4 minutes by default) is closed.
//!
//! How bytes move: a small buffer per direction that doubles while reads
//! fill it (short requests cost little memory and no zeroing), and, once a
//! direction moves bulk data (a 64 KiB read fills the largest buffer),
//! `splice(2)` through a pipe so the bytes no longer pass through the
//! proxy's memory. A backend whose connect fails is tried last for a couple
//! of seconds (passive health), so a dead instance costs about one failed
//! connect until the controller removes it. `bench/lb.sh` compares all of
//! this with HAProxy.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_lb::LbError> {
//! use weft_lb::{Backend, Vip, VipConfig};
//! let vip = Vip::bind("127.0.0.1:8080".parse().unwrap(), VipConfig::default()).await?;
//! vip.set_backends(vec![Backend { id: "Web_IN_0".into(), addr: "127.0.0.1:20000".parse().unwrap() }]);
//! // ... Web_IN_0 is about to be stopped:
//! vip.set_backends(vec![]);
//! let report = vip.drain("Web_IN_0", std::time::Duration::from_secs(30)).await;
//! assert_eq!(report.cut, 0);
//! vip.close().await;
//! # Ok(()) }
//! ```

mod access;
mod backend;
mod error;
mod first;
mod proxy;
mod registry;
mod splice;
mod stats;
mod vip;

pub use access::{AccessControl, AclAction, AclRule};
pub use backend::{Backend, Distribution};
pub use error::LbError;
pub use stats::{DrainReport, VipStats};
pub use vip::{Vip, VipConfig};
