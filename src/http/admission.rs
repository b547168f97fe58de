//! Who may hold a connection: a cap on open connections in all, on open
//! connections from one address, and on connections from one address that
//! are still sending their request head. A phone on the hotspot that opens
//! hundreds of idle or half-sent connections uses up its own share only;
//! everyone else is still served.
//!
//! Pure counting (no sockets): a granted connection is a guard that gives its
//! place back when dropped, however the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connections: usize,
    pub per_address: usize,
    pub pending_per_address: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Full,
    AddressFull,
    AddressPending,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Full => "the server has its maximum of open connections",
            Refusal::AddressFull => "this address has its maximum of open connections",
            Refusal::AddressPending => {
                "this address has its maximum of connections still sending a request"
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    open: usize,
    pending: usize,
}

#[derive(Debug, Default)]
struct State {
    open: usize,
    pending: usize,
    refused: u64,
    by_address: HashMap<IpAddr, Count>,
}

/// Open connections, counted.
#[derive(Debug, Default)]
pub struct Admission {
    state: Mutex<State>,
}

/// Figures for `/status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AdmissionStats {
    pub open_connections: usize,
    pub pending_requests: usize,
    pub refused_connections: u64,
    pub addresses: usize,
}

impl Admission {
    /// Admits a new connection from `ip` (it is pending until its head is read).
    pub fn connect(self: &Arc<Self>, ip: IpAddr, limits: Limits) -> Result<Connection, Refusal> {
        let mut s = self.state.lock().unwrap();
        let count = s.by_address.get(&ip).copied().unwrap_or_default();
        let refusal = if s.open >= limits.connections {
            Some(Refusal::Full)
        } else if count.open >= limits.per_address {
            Some(Refusal::AddressFull)
        } else if count.pending >= limits.pending_per_address {
            Some(Refusal::AddressPending)
        } else {
            None
        };
        if let Some(r) = refusal {
            s.refused += 1;
            return Err(r);
        }
        s.open += 1;
        s.pending += 1;
        let c = s.by_address.entry(ip).or_default();
        c.open += 1;
        c.pending += 1;
        Ok(Connection {
            admission: self.clone(),
            ip,
            pending: true,
        })
    }

    pub fn stats(&self) -> AdmissionStats {
        let s = self.state.lock().unwrap();
        AdmissionStats {
            open_connections: s.open,
            pending_requests: s.pending,
            refused_connections: s.refused,
            addresses: s.by_address.len(),
        }
    }

    fn release(&self, ip: IpAddr, pending: bool) {
        let mut s = self.state.lock().unwrap();
        s.open -= 1;
        s.pending -= usize::from(pending);
        if let Some(c) = s.by_address.get_mut(&ip) {
            c.open -= 1;
            c.pending -= usize::from(pending);
            if c.open == 0 {
                s.by_address.remove(&ip);
            }
        }
    }
}

/// A place held by one connection.
#[derive(Debug)]
pub struct Connection {
    admission: Arc<Admission>,
    ip: IpAddr,
    pending: bool,
}

impl Connection {
    /// Its request head has arrived: it no longer counts as pending.
    pub fn request_read(&mut self) {
        if std::mem::take(&mut self.pending) {
            let mut s = self.admission.state.lock().unwrap();
            s.pending -= 1;
            if let Some(c) = s.by_address.get_mut(&self.ip) {
                c.pending -= 1;
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.admission.release(self.ip, self.pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        connections: 5,
        per_address: 3,
        pending_per_address: 2,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 4, last])
    }

    #[test]
    fn one_address_cannot_hold_more_than_its_share() {
        let a = Arc::new(Admission::default());
        let mut first = a.connect(ip(2), LIMITS).unwrap();
        let _second = a.connect(ip(2), LIMITS).unwrap();
        assert_eq!(
            a.connect(ip(2), LIMITS).unwrap_err(),
            Refusal::AddressPending,
            "two half-sent requests are the most"
        );
        first.request_read();
        let _third = a.connect(ip(2), LIMITS).unwrap();
        assert_eq!(a.connect(ip(2), LIMITS).unwrap_err(), Refusal::AddressFull);
        // Another phone is still served.
        let _other = a.connect(ip(3), LIMITS).unwrap();
        assert_eq!(
            a.stats(),
            AdmissionStats {
                open_connections: 4,
                pending_requests: 3,
                refused_connections: 2,
                addresses: 2
            }
        );
    }

    #[test]
    fn the_total_is_capped_and_places_come_back_on_drop() {
        let a = Arc::new(Admission::default());
        let held: Vec<Connection> = (1..=5)
            .map(|i| {
                let mut c = a.connect(ip(i), LIMITS).unwrap();
                c.request_read();
                c
            })
            .collect();
        assert_eq!(a.connect(ip(9), LIMITS).unwrap_err(), Refusal::Full);
        drop(held);
        assert_eq!(a.stats().open_connections, 0);
        assert_eq!(a.stats().pending_requests, 0);
        assert_eq!(a.stats().addresses, 0, "no memory kept for gone addresses");
        assert!(a.connect(ip(9), LIMITS).is_ok());
    }
}
