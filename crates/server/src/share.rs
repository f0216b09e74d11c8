//! Each peer address's share of what the server holds open: connections, and TLS handshakes
//! under way. Without it one address could take every slot with connections that say
//! nothing, and no one else would be served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connections one address may hold open at once, unless configured otherwise.
pub const PER_ADDRESS: usize = 256;

/// What each address holds now, against a limit per address.
#[derive(Debug)]
pub struct Shares {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot of an address's share, given back when dropped.
#[derive(Debug)]
pub struct Held {
    shares: Arc<Shares>,
    ip: IpAddr,
}

impl Shares {
    /// Shares of at most `limit` (at least 1) per address.
    pub fn new(limit: usize) -> Arc<Shares> {
        Arc::new(Shares {
            limit: limit.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `ip`, or None when it holds its whole share.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        let ip = canonical(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Held {
            shares: self.clone(),
            ip,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// An IPv4 address mapped into IPv6 is the IPv4 address; an IPv6 peer's share is its /64
/// (one host holds a whole /64, so counting single addresses would not bound it).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back() {
        let shares = Shares::new(2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        let one = shares.take(a).unwrap();
        let _two = shares.take(a).unwrap();
        assert!(shares.take(a).is_none());
        assert!(shares.take(b).is_some(), "another address is not held up");
        drop(one);
        assert!(shares.take(a).is_some());
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let shares = Shares::new(1);
        let _x = shares.take("2001:db8::1".parse().unwrap()).unwrap();
        assert!(shares.take("2001:db8::ffff:2".parse().unwrap()).is_none());
        let _y = shares.take("10.0.0.1".parse().unwrap()).unwrap();
        assert!(shares.take("::ffff:10.0.0.1".parse().unwrap()).is_none());
    }
}
