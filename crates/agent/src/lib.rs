//! The weft agent: one per host. Prepares role instances from a package,
//! starts them through a driver, supervises, probes and stops them, and
//! reports their status to the controller through [`protocol::AgentApi`].

pub mod protocol;
