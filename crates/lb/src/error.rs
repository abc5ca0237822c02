//! Errors of the load balancer.

use std::io;
use std::net::SocketAddr;

/// What went wrong when setting up a VIP.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// Another socket (another VIP, another program) already listens there.
    #[error("failed to bind vip {addr}: address already in use")]
    AddrInUse {
        /// The address that was asked for.
        addr: SocketAddr,
    },
    /// An access-control rule's `remoteSubnet` is not an IPv4 block.
    #[error(
        "invalid access control remote subnet `{subnet}`: expected an IPv4 block such as 10.0.0.0/8"
    )]
    BadRemoteSubnet {
        /// The text as given.
        subnet: String,
    },
    /// Any other failure to create the listening socket.
    #[error("failed to bind vip {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl LbError {
    pub(crate) fn bind(addr: SocketAddr, source: io::Error) -> LbError {
        if source.kind() == io::ErrorKind::AddrInUse {
            LbError::AddrInUse { addr }
        } else {
            LbError::Bind { addr, source }
        }
    }
}
