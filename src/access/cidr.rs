//! Address blocks (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`) and lists of
//! them. Every address is compared as IPv6, IPv4 as `::ffff:a.b.c.d`, so an
//! IPv4 client on the dual-stack socket (an IPv4-mapped address) matches the
//! IPv4 blocks and nothing else.

use std::net::IpAddr;

/// One block: the first `prefix` bits of `network` (an IPv6 number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: u128,
    prefix: u8,
}

/// Where IPv4 addresses live in the IPv6 space (`::ffff:0:0/96`).
const MAPPED_PREFIX_BITS: u8 = 96;

/// An address as a 128-bit number, IPv4 (and IPv4-mapped IPv6) as `::ffff:a.b.c.d`.
pub fn canonical(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address a client is shown as: IPv4 for an IPv4-mapped IPv6 address.
pub fn client_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Cidr {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, `v6` or `v6/n`. Bits past the prefix
    /// are ignored (`127.0.0.1/8` is `127.0.0.0/8`), as nginx does.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let ip: IpAddr = address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("'{text}' is not an address or a block like '10.0.0.0/8'"))?;
        // IPv4 blocks count their bits from the start of the mapped range.
        let (width, offset) = match ip {
            IpAddr::V4(_) => (32u8, MAPPED_PREFIX_BITS),
            IpAddr::V6(_) => (128u8, 0),
        };
        let prefix = match prefix {
            None => width,
            Some(bits) => match bits.parse::<u8>() {
                Ok(bits) if bits <= width => bits,
                _ => return Err(format!("'{text}': the prefix must be 0 to {width}")),
            },
        } + offset;
        Ok(Cidr {
            network: canonical(ip) & mask(prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        canonical(ip) & mask(self.prefix) == self.network
    }
}

fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        bits => u128::MAX << (128 - u32::from(bits)),
    }
}

/// A list of blocks; empty matches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList {
    blocks: Vec<Cidr>,
}

impl CidrList {
    /// Parses every entry; the error names the entry (`name[i]`).
    pub fn parse(entries: &[String], name: &str) -> Result<CidrList, (String, String)> {
        let blocks = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| Cidr::parse(entry).map_err(|e| (format!("{name}[{}]", i + 1), e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CidrList { blocks })
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|block| block.contains(ip))
    }
}

/// The IPv6 /64 (or the IPv4 address) a client is counted by: one IPv6
/// subscriber usually holds a whole /64.
pub fn subscriber(ip: IpAddr) -> u128 {
    match client_ip(ip) {
        IpAddr::V4(v4) => canonical(IpAddr::V4(v4)),
        IpAddr::V6(v6) => u128::from(v6) & mask(64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn ipv4_blocks_match_plain_and_mapped_addresses() {
        let block = Cidr::parse("10.0.0.0/8").expect("parses");
        assert!(block.contains(ip("10.1.2.3")));
        assert!(block.contains(ip("::ffff:10.1.2.3")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(
            !block.contains(ip("::a01:203")),
            "IPv4-compatible is not IPv4"
        );
        let single = Cidr::parse("127.0.0.1").expect("parses");
        assert!(single.contains(ip("127.0.0.1")));
        assert!(!single.contains(ip("127.0.0.2")));
        assert_eq!(Cidr::parse("127.0.0.1/8"), Cidr::parse("127.0.0.0/8"));
    }

    #[test]
    fn ipv6_blocks_and_errors() {
        let block = Cidr::parse("2001:db8::/32").expect("parses");
        assert!(block.contains(ip("2001:db8:1::5")));
        assert!(!block.contains(ip("2001:db9::1")));
        assert!(!block.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::/0").expect("all").contains(ip("1.2.3.4")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("v4")
                .contains(ip("1.2.3.4"))
        );
        assert!(!Cidr::parse("0.0.0.0/0").expect("v4").contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
        assert!(
            Cidr::parse("::ffff:10.0.0.0/104")
                .expect("mapped")
                .contains(ip("10.9.9.9"))
        );
    }

    #[test]
    fn subscribers_are_ipv4_addresses_or_ipv6_slash_64s() {
        assert_eq!(
            subscriber(ip("2001:db8::1")),
            subscriber(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            subscriber(ip("2001:db8::1")),
            subscriber(ip("2001:db8:0:1::1"))
        );
        assert_eq!(subscriber(ip("1.2.3.4")), subscriber(ip("::ffff:1.2.3.4")));
        assert_ne!(subscriber(ip("1.2.3.4")), subscriber(ip("1.2.3.5")));
    }
}
