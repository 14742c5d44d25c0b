//! A bound on the connections one client address holds (`server.max_connections_per_client`).
//! `server.max_connections` bounds them all together; without a bound per address, one host
//! could take most of the slots (stalled bodies are cut only after `body_idle_timeout`) and
//! leave none for everyone else.
//!
//! Each accepted connection is counted against its client network (an IPv4 address, an IPv6
//! /64: one host usually holds a whole /64) for as long as it is open. A connection that
//! finds its network at the bound is closed as soon as it is accepted, with a best-effort
//! 429 (`too_many_connections`, `Retry-After: 1`) written first: kept open until it sent
//! a request, an idle or slow one would still hold a slot of `server.max_connections`
//! until the header deadline. Trusted proxies are not bounded: they carry many clients'
//! connections (bound those at the proxy).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prometheus_client::metrics::counter::Counter;

use crate::ApiError;

/// The network a client address is counted under: an IPv4 address (or an IPv4-mapped IPv6
/// one) alone, an IPv6 address by its /64.
pub fn client_network(address: IpAddr) -> IpNet {
    match address {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::from(v4)),
            None => Ipv6Net::new(v6, 64)
                .map_or(IpNet::V6(Ipv6Net::from(v6)), |net| IpNet::V6(net.trunc())),
        },
    }
}

/// Open connections per client network, shared by every worker of a server.
#[derive(Debug)]
pub struct ClientConnections {
    limit: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpNet, usize>>,
    refused: Counter,
}

impl ClientConnections {
    /// A bound of `limit` connections per client network (0: none), not applied to peers
    /// in `exempt`; `refused` counts the connections found over it.
    pub fn new(limit: usize, exempt: Vec<IpNet>, refused: Counter) -> ClientConnections {
        ClientConnections {
            limit,
            exempt,
            open: Mutex::new(HashMap::new()),
            refused,
        }
    }

    /// Counts a new connection from `peer`; the slot it returns uncounts it when dropped
    /// (when the connection closes).
    pub fn open(self: &Arc<Self>, peer: IpAddr) -> Option<ConnectionSlot> {
        if self.limit == 0 || self.exempt.iter().any(|net| net.contains(&peer)) {
            return None;
        }
        let network = client_network(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(network).or_insert(0);
        *count += 1;
        let over = *count > self.limit;
        if over {
            self.refused.inc();
        }
        Some(ConnectionSlot {
            connections: Arc::clone(self),
            network,
            over,
        })
    }

    /// Connections open from `peer`'s network now.
    pub fn open_from(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client_network(peer)).copied().unwrap_or(0)
    }

    /// Networks with a connection open (entries are removed when their last one closes).
    pub fn networks(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// For `HttpServer::on_connect`: counts a TCP connection and keeps its slot in the
    /// connection's data; one over the bound gets a 429 and is shut down at once (actix
    /// then reads end-of-stream and drops it, slot and all).
    pub fn on_connect(self: &Arc<Self>, connection: &dyn std::any::Any, data: &mut Extensions) {
        let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Some(slot) = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.open(peer.ip()))
        else {
            return;
        };
        if slot.over {
            let body = format!(
                "{{\"error\":\"too_many_connections\",\"message\":\"too many connections \
                 from your address (at most {}); retry on one of the open ones, or later\"}}",
                self.limit
            );
            let answer = format!(
                "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
                 retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            // A fresh socket's send buffer is empty: the answer goes in one write, or not
            // at all (the close says enough).
            let _ = stream.try_write(answer.as_bytes());
            let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Both);
        }
        data.insert(slot);
    }
}

/// One counted connection.
#[derive(Debug)]
pub struct ConnectionSlot {
    connections: Arc<ClientConnections>,
    network: IpNet,
    over: bool,
}

impl ConnectionSlot {
    /// Whether the connection was over its network's bound when it was opened.
    pub fn over(&self) -> bool {
        self.over
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.network);
            }
        }
    }
}

/// Middleware refusing every request on a connection over the bound. The socket was shut
/// down when it was accepted, but bytes the client had already sent may still be read
/// (Linux keeps queued data readable after a shutdown): none of them is served.
pub async fn refuse_over_bound(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let over = request
        .conn_data::<ConnectionSlot>()
        .filter(|slot| slot.over())
        .map(|slot| slot.connections.limit);
    match over {
        Some(limit) => {
            let error = ApiError::TooManyRequests {
                message: format!("too many connections from your address (at most {limit})"),
                retry_after_secs: 1,
            };
            Ok(request.error_response(error).map_into_right_body())
        }
        None => Ok(next.call(request).await?.map_into_left_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_ipv4_addresses_and_ipv6_64s() {
        let net = |text: &str| client_network(text.parse().unwrap()).to_string();
        assert_eq!(net("192.0.2.7"), "192.0.2.7/32");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7/32");
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            net("2001:db8:1:2:ffff::9"),
            net("2001:db8:1:2::1"),
            "one /64, one key"
        );
    }

    #[test]
    fn slots_count_while_open_and_mark_those_over_the_bound() {
        let connections = Arc::new(ClientConnections::new(
            2,
            vec!["10.0.0.5/32".parse().unwrap()],
            Counter::default(),
        ));
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let first = connections.open(peer).unwrap();
        let second = connections.open(peer).unwrap();
        let third = connections.open(peer).unwrap();
        assert!(!first.over() && !second.over() && third.over());
        assert_eq!(connections.refused.get(), 1);
        assert!(
            !connections
                .open("192.0.2.8".parse().unwrap())
                .unwrap()
                .over()
        );
        assert!(
            connections.open("10.0.0.5".parse().unwrap()).is_none(),
            "proxy"
        );
        drop((first, third));
        assert_eq!(connections.open_from(peer), 1);
        assert!(!connections.open(peer).unwrap().over(), "room again");
        drop(second);
        assert_eq!(connections.networks(), 0, "closed networks are forgotten");
        let unbounded = Arc::new(ClientConnections::new(0, Vec::new(), Counter::default()));
        assert!(unbounded.open(peer).is_none());
    }
}
