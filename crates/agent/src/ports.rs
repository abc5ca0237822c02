//! Endpoint ports on this host. An instance gets the port its endpoint
//! declares when that port is free and no other instance of this agent
//! holds it; otherwise an OS-assigned free port, as the Azure compute
//! emulator remapped. An instance keeps its ports across restarts,
//! recycles and stops until it is removed, unless something else took one
//! meanwhile (it is asked for only while none of the instance's processes
//! runs): then that endpoint is remapped again.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

use crate::protocol::EndpointProtocol;

#[derive(Default)]
pub(crate) struct Ports {
    /// port → (instance id, endpoint name)
    held: Mutex<BTreeMap<u16, (String, String)>>,
}

impl Ports {
    /// The port of `instance`'s endpoint `endpoint`: the one it already
    /// holds if still free, else `wanted` if free, else a free one. Call it
    /// only while no process of `instance` runs (it checks that the held
    /// port can be bound).
    pub(crate) fn assign(
        &self,
        host: IpAddr,
        instance: &str,
        endpoint: &str,
        protocol: EndpointProtocol,
        wanted: Option<u16>,
    ) -> io::Result<u16> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((&port, _)) = held
            .iter()
            .find(|(_, (i, e))| i == instance && e == endpoint)
        {
            if is_free(host, port, protocol) {
                return Ok(port);
            }
            tracing::warn!(
                instance,
                endpoint,
                port,
                "the instance's port was taken while it did not run; remapping it"
            );
            held.remove(&port);
        }
        let port = match wanted.filter(|p| *p != 0 && !held.contains_key(p)) {
            Some(p) if is_free(host, p, protocol) => p,
            _ => loop {
                let p = free_port(host, protocol)?;
                if !held.contains_key(&p) {
                    break p;
                }
            },
        };
        held.insert(port, (instance.to_owned(), endpoint.to_owned()));
        Ok(port)
    }

    /// Releases every port of `instance`.
    pub(crate) fn release(&self, instance: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|_, (i, _)| i != instance);
    }
}

fn is_free(host: IpAddr, port: u16, protocol: EndpointProtocol) -> bool {
    let addr = SocketAddr::new(host, port);
    match protocol {
        EndpointProtocol::Udp => UdpSocket::bind(addr).is_ok(),
        EndpointProtocol::Any => TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok(),
        _ => TcpListener::bind(addr).is_ok(),
    }
}

fn free_port(host: IpAddr, protocol: EndpointProtocol) -> io::Result<u16> {
    for _ in 0..64 {
        let port = match protocol {
            EndpointProtocol::Udp => UdpSocket::bind(SocketAddr::new(host, 0))?
                .local_addr()?
                .port(),
            _ => TcpListener::bind(SocketAddr::new(host, 0))?
                .local_addr()?
                .port(),
        };
        if protocol != EndpointProtocol::Any || is_free(host, port, protocol) {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no port on {host} is free for both tcp and udp"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn second_instance_asking_for_the_same_port_is_remapped() {
        let ports = Ports::default();
        let wanted = free_port(HOST, EndpointProtocol::Tcp).unwrap();
        let a = ports
            .assign(
                HOST,
                "Web_IN_0",
                "Http",
                EndpointProtocol::Http,
                Some(wanted),
            )
            .unwrap();
        let b = ports
            .assign(
                HOST,
                "Web_IN_1",
                "Http",
                EndpointProtocol::Http,
                Some(wanted),
            )
            .unwrap();
        assert_eq!(a, wanted);
        assert_ne!(b, wanted);
        // Stable for the same instance and endpoint.
        assert_eq!(
            ports
                .assign(
                    HOST,
                    "Web_IN_1",
                    "Http",
                    EndpointProtocol::Http,
                    Some(wanted)
                )
                .unwrap(),
            b
        );
        ports.release("Web_IN_0");
        assert_eq!(
            ports
                .assign(
                    HOST,
                    "Web_IN_2",
                    "Http",
                    EndpointProtocol::Http,
                    Some(wanted)
                )
                .unwrap(),
            wanted
        );
    }

    #[test]
    fn a_held_port_taken_meanwhile_is_remapped() {
        let ports = Ports::default();
        let first = ports
            .assign(HOST, "d/Web_IN_0", "Http", EndpointProtocol::Tcp, None)
            .unwrap();
        let taken = TcpListener::bind((HOST, first)).unwrap();
        let second = ports
            .assign(HOST, "d/Web_IN_0", "Http", EndpointProtocol::Tcp, None)
            .unwrap();
        assert_ne!(second, first, "remapped away from the taken port");
        drop(taken);
        assert_eq!(
            ports
                .assign(HOST, "d/Web_IN_0", "Http", EndpointProtocol::Tcp, None)
                .unwrap(),
            second,
            "and kept from then on"
        );
    }

    #[test]
    fn a_port_taken_outside_the_agent_is_remapped() {
        let ports = Ports::default();
        let taken = TcpListener::bind((HOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let got = ports
            .assign(HOST, "Web_IN_0", "Http", EndpointProtocol::Tcp, Some(port))
            .unwrap();
        assert_ne!(got, port);
    }
}
