//! Identifiers the library hands out: decommission tickets, claims and the fleet's own
//! instance id.
//!
//! All of them are random (from the operating system's generator): a ticket or claim can't be
//! guessed, and one from another fleet, in this process or a previous one, is never valid here.
//! They are written as lower-case hex (32 digits for tickets and instance ids, 16 for claims).

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Storage(format!("the system's random generator failed: {e}")))?;
    Ok(b)
}

fn parse_hex<const N: usize>(what: &str, s: &str) -> Result<[u8; N]> {
    let bad = || Error::InvalidArgument(format!("{what} {s:?} is not {} hex digits", 2 * N));
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $n:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// A new random id.
            pub fn random() -> Result<Self> {
                random_bytes().map($name)
            }

            /// Reads the hex form.
            pub fn parse(s: &str) -> Result<Self> {
                parse_hex($what, s).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0)?;
                f.write_str(")")
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// Identifies one decommission: returned by `begin_decommission`, bound to its node.
    TicketId,
    16,
    "ticket id"
);

hex_id!(
    /// Identifies one claim of capacity (a reservation).
    ClaimId,
    8,
    "claim id"
);

hex_id!(
    /// Identifies one fleet for as long as its data lives (persisted in its data directory), so
    /// that two fleets never pass for one in an audit sink.
    InstanceId,
    16,
    "instance id"
);

/// Proof that a node entered the two-phase decommission: complete, fail or cancel it with this.
/// A ticket is valid only for the fleet that issued it and the node it names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DecommissionTicket {
    pub id: TicketId,
    pub node_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_round_trip_through_hex() {
        let a = TicketId::random().unwrap();
        let b = TicketId::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 32);
        assert_eq!(TicketId::parse(&a.to_string()).unwrap(), a);
        let c = ClaimId::random().unwrap();
        assert_eq!(c.to_string().len(), 16);
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ClaimId>(&j).unwrap(), c);
        for bad in ["", "xyz", &"g".repeat(32), &"0".repeat(31)] {
            assert!(
                matches!(TicketId::parse(bad), Err(Error::InvalidArgument(m)) if m.contains("32 hex digits")),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<TicketId>("\"00\"").is_err());
        assert_eq!(
            format!("{:?}", ClaimId([1, 2, 3, 4, 5, 6, 7, 0xff])),
            "ClaimId(01020304050607ff)"
        );
    }
}
