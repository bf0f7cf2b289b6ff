//! IPv4 CIDR arithmetic: just what the simulation needs (containment, overlap, size).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: u32,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n`. Host bits are masked off, as EC2 canonicalises them.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (ip, prefix) = text.trim().split_once('/')?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let mut octets = [0u8; 4];
        let mut parts = ip.split('.');
        for octet in &mut octets {
            *octet = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        let addr = u32::from_be_bytes(octets) & mask(prefix);
        Some(Cidr { addr, prefix })
    }

    pub(crate) fn prefix(self) -> u8 {
        self.prefix
    }

    pub(crate) fn contains(self, inner: Cidr) -> bool {
        inner.prefix >= self.prefix && inner.addr & mask(self.prefix) == self.addr
    }

    pub(crate) fn overlaps(self, other: Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// Addresses in the block.
    pub(crate) fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// Whether the CIDR `outer` contains `inner` (both as text); false if either does not parse.
pub(crate) fn cidr_contains(outer: &str, inner: &str) -> bool {
    match (Cidr::parse(outer), Cidr::parse(inner)) {
        (Some(o), Some(i)) => o.contains(i),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_and_overlap() {
        let vpc = Cidr::parse("192.168.0.0/16").unwrap();
        let subnet = Cidr::parse("192.168.0.0/24").unwrap();
        assert!(vpc.contains(subnet));
        assert!(!subnet.contains(vpc));
        assert!(subnet.overlaps(vpc));
        assert!(!Cidr::parse("10.0.0.0/8").unwrap().overlaps(vpc));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(vpc));
        assert_eq!(subnet.size(), 256);
        assert_eq!(Cidr::parse("100.68.0.18/18"), Cidr::parse("100.68.0.0/18"));
        assert!(Cidr::parse("1.2.3/8").is_none());
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("1.2.3.4.5/8").is_none());
    }
}
