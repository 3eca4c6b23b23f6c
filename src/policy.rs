//! Every grace period and threshold, with the defaults of the specification, and how settings
//! are read: zero means "the default", [`OFF`] switches a timer off, anything else is checked.
//!
//! The same conventions hold for every setting in Rust, C (`NL_OFF`), Go (`lifecycle.Off`) and
//! JSON (`"off"`): a setting is never switched off by the side effect of a sign or a zero, and a
//! value that is out of range is refused with [`Error::InvalidSetting`] naming the field.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

const MINUTE_MS: u64 = 60_000;
/// Longer than any sane grace period; a larger value is almost certainly a unit mistake
/// (seconds or nanoseconds passed as milliseconds) and is refused.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 60 * MINUTE_MS;
/// The largest audit ring the library accepts.
pub const MAX_AUDIT_CAPACITY: usize = 10_000_000;
/// The default audit ring capacity.
pub const DEFAULT_AUDIT_CAPACITY: usize = 1000;
/// The value that switches a timer off: a grace that is off never makes anyone wait, a timeout
/// that is off never fires. In JSON it is written `"off"`.
pub const OFF: u64 = u64::MAX;

/// The safety policy. Durations are milliseconds; 0 means the default, [`OFF`] switches the
/// timer off. A JSON object may omit any field (it then takes the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Rule 4: a `ready` node may be deleted only this long after cloud-init completed (30 min).
    #[serde(with = "setting_ms")]
    pub ready_grace_ms: u64,
    /// Rule 5: an empty `active`/`idle` node may be deleted only this long after its last
    /// container left (30 min).
    #[serde(with = "setting_ms")]
    pub idle_grace_ms: u64,
    /// Rule 7: after the container view is re-synchronised, the node stays protected this long
    /// (10 min).
    #[serde(with = "setting_ms")]
    pub post_sync_grace_ms: u64,
    /// Rule 7: a pending container sync completes by itself (audited) after this long (30 min).
    #[serde(with = "setting_ms")]
    pub sync_timeout_ms: u64,
    /// A node in `provisioning`/`initializing` longer than this becomes `unhealthy` (15 min).
    #[serde(with = "setting_ms")]
    pub provisioning_timeout_ms: u64,
    /// Claims and reservations that were neither confirmed nor released expire after this long
    /// (30 min), unless the claim gave its own TTL.
    #[serde(with = "setting_ms")]
    pub claim_ttl_ms: u64,
    /// Rule 6: an unhealthy node that may have hosted work (it was ready once, hosted a
    /// container, or was found after a restart) may be deleted only this long after it became
    /// unhealthy or its last container left, whichever is later (15 min), unless the provider
    /// confirmed its VM is gone. A health blip is not a reason to delete a live worker.
    #[serde(with = "setting_ms")]
    pub unhealthy_grace_ms: u64,
    /// Consecutive failed health checks that move a productive node to `unhealthy` (3).
    pub unhealthy_threshold: u32,
}

impl Policy {
    /// The specification's defaults, every field resolved.
    pub const DEFAULT: Policy = Policy {
        ready_grace_ms: 30 * MINUTE_MS,
        idle_grace_ms: 30 * MINUTE_MS,
        post_sync_grace_ms: 10 * MINUTE_MS,
        sync_timeout_ms: 30 * MINUTE_MS,
        provisioning_timeout_ms: 15 * MINUTE_MS,
        claim_ttl_ms: 30 * MINUTE_MS,
        unhealthy_grace_ms: 15 * MINUTE_MS,
        unhealthy_threshold: 3,
    };

    /// The policy with zeros replaced by the defaults, or the first invalid setting.
    pub fn resolve(&self) -> Result<Policy> {
        let d = Policy::DEFAULT;
        Ok(Policy {
            ready_grace_ms: duration_setting(
                "ready_grace_ms",
                self.ready_grace_ms,
                d.ready_grace_ms,
            )?,
            idle_grace_ms: duration_setting("idle_grace_ms", self.idle_grace_ms, d.idle_grace_ms)?,
            post_sync_grace_ms: duration_setting(
                "post_sync_grace_ms",
                self.post_sync_grace_ms,
                d.post_sync_grace_ms,
            )?,
            sync_timeout_ms: duration_setting(
                "sync_timeout_ms",
                self.sync_timeout_ms,
                d.sync_timeout_ms,
            )?,
            provisioning_timeout_ms: duration_setting(
                "provisioning_timeout_ms",
                self.provisioning_timeout_ms,
                d.provisioning_timeout_ms,
            )?,
            claim_ttl_ms: duration_setting("claim_ttl_ms", self.claim_ttl_ms, d.claim_ttl_ms)?,
            unhealthy_grace_ms: duration_setting(
                "unhealthy_grace_ms",
                self.unhealthy_grace_ms,
                d.unhealthy_grace_ms,
            )?,
            unhealthy_threshold: match self.unhealthy_threshold {
                0 => d.unhealthy_threshold,
                n @ 1..=1000 => n,
                n => {
                    return Err(Error::invalid_setting(
                        "unhealthy_threshold",
                        format!("{n} is out of range (1 to 1000)"),
                    ))
                }
            },
        })
    }

    /// How long a grace makes a node wait; a grace that is off makes nobody wait.
    pub fn grace(ms: u64) -> u64 {
        if ms == OFF {
            0
        } else {
            ms
        }
    }

    /// After how long a timeout fires; `None` when it is off.
    pub fn timeout(ms: u64) -> Option<u64> {
        (ms != OFF).then_some(ms)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

/// Resolves one duration setting: 0 is the default, [`OFF`] stays off, and anything longer than
/// a year is refused.
pub fn duration_setting(field: &str, value: u64, default: u64) -> Result<u64> {
    match value {
        0 => Ok(default),
        OFF => Ok(OFF),
        v if v > MAX_DURATION_MS => Err(Error::invalid_setting(
            field,
            format!("{v} ms is longer than a year (use \"off\" to switch the timer off)"),
        )),
        v => Ok(v),
    }
}

/// Serde for a millisecond setting: a number, or `"off"` for [`OFF`].
pub mod setting_ms {
    use super::OFF;
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        if *v == OFF {
            s.serialize_str("off")
        } else {
            s.serialize_u64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative number of milliseconds or \"off\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                if v == OFF {
                    Err(E::custom("18446744073709551615 is reserved: write \"off\""))
                } else {
                    Ok(v)
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
                Err(E::custom(format!(
                    "{v} is not a whole number of milliseconds"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                if v == "off" {
                    Ok(OFF)
                } else {
                    Err(E::custom(format!("{v:?} is neither a number nor \"off\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// What a fleet is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetOptions {
    pub policy: Policy,
    /// How many audit entries the ring keeps (0: the default, 1000); older ones are evicted
    /// and counted.
    pub audit_capacity: usize,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            policy: Policy::DEFAULT,
            audit_capacity: DEFAULT_AUDIT_CAPACITY,
        }
    }
}

impl FleetOptions {
    /// The options with every default filled in, or the first invalid setting.
    pub fn resolve(&self) -> Result<FleetOptions> {
        let audit_capacity = match self.audit_capacity {
            0 => DEFAULT_AUDIT_CAPACITY,
            n if n > MAX_AUDIT_CAPACITY => {
                return Err(Error::invalid_setting(
                    "audit_capacity",
                    format!("{n} is out of range (1 to {MAX_AUDIT_CAPACITY})"),
                ))
            }
            n => n,
        };
        Ok(FleetOptions {
            policy: self.policy.resolve()?,
            audit_capacity,
        })
    }

    /// Decodes options from JSON (the C and Go bindings' format); unknown fields are refused so a
    /// typo does not silently fall back to a default.
    pub fn from_json(json: &str) -> Result<Self> {
        let opts: FleetOptions = serde_json::from_str(json)
            .map_err(|e| Error::InvalidArgument(format!("fleet options JSON: {e}")))?;
        opts.resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_values() {
        let p = Policy::default();
        assert_eq!(p.ready_grace_ms, 1_800_000);
        assert_eq!(p.idle_grace_ms, 1_800_000);
        assert_eq!(p.post_sync_grace_ms, 600_000);
        assert_eq!(p.sync_timeout_ms, 1_800_000);
        assert_eq!(p.provisioning_timeout_ms, 900_000);
        assert_eq!(p.claim_ttl_ms, 1_800_000);
        assert_eq!(p.unhealthy_grace_ms, 900_000);
        assert_eq!(p.unhealthy_threshold, 3);
        assert_eq!(FleetOptions::default().audit_capacity, 1000);
    }

    #[test]
    fn zero_means_the_default_and_off_is_explicit() {
        let zero = Policy {
            ready_grace_ms: 0,
            idle_grace_ms: 0,
            post_sync_grace_ms: 0,
            sync_timeout_ms: 0,
            provisioning_timeout_ms: 0,
            claim_ttl_ms: 0,
            unhealthy_grace_ms: 0,
            unhealthy_threshold: 0,
        };
        assert_eq!(zero.resolve().unwrap(), Policy::DEFAULT);
        let off = Policy {
            idle_grace_ms: OFF,
            provisioning_timeout_ms: OFF,
            ..Policy::DEFAULT
        };
        let r = off.resolve().unwrap();
        assert_eq!(Policy::grace(r.idle_grace_ms), 0);
        assert_eq!(Policy::timeout(r.provisioning_timeout_ms), None);
        assert_eq!(Policy::timeout(r.sync_timeout_ms), Some(1_800_000));
        // Resolving is idempotent: a policy read back can be set again unchanged.
        assert_eq!(r.resolve().unwrap(), r);
    }

    #[test]
    fn bad_values_are_refused_with_the_field_name() {
        let refused = |r: Result<FleetOptions>, field: &str| match r {
            Err(Error::InvalidSetting { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        };
        refused(
            FleetOptions {
                audit_capacity: MAX_AUDIT_CAPACITY + 1,
                ..Default::default()
            }
            .resolve(),
            "audit_capacity",
        );
        refused(
            FleetOptions {
                policy: Policy {
                    idle_grace_ms: MAX_DURATION_MS + 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .resolve(),
            "idle_grace_ms",
        );
        refused(
            FleetOptions {
                policy: Policy {
                    unhealthy_threshold: 1001,
                    ..Default::default()
                },
                ..Default::default()
            }
            .resolve(),
            "unhealthy_threshold",
        );
        // Exactly a year is allowed; OFF is not "longer than a year".
        assert!(duration_setting("x", MAX_DURATION_MS, 1).is_ok());
        assert_eq!(duration_setting("x", OFF, 1).unwrap(), OFF);
    }

    #[test]
    fn json_takes_defaults_for_missing_fields_and_refuses_typos_and_signs() {
        let o = FleetOptions::from_json(r#"{"policy":{"idle_grace_ms":5,"ready_grace_ms":"off"}}"#)
            .unwrap();
        assert_eq!(o.policy.idle_grace_ms, 5);
        assert_eq!(o.policy.ready_grace_ms, OFF);
        assert_eq!(
            o.policy.post_sync_grace_ms,
            Policy::DEFAULT.post_sync_grace_ms
        );
        assert_eq!(o.audit_capacity, 1000);
        let j = serde_json::to_value(o.policy).unwrap();
        assert_eq!(j["ready_grace_ms"], "off");
        assert_eq!(j["idle_grace_ms"], 5);
        for (bad, needle) in [
            (
                r#"{"policy":{"idle_grace":5}}"#,
                "unknown field `idle_grace`",
            ),
            (r#"{"policy":{"idle_grace_ms":-5}}"#, "-5 is negative"),
            (r#"{"policy":{"idle_grace_ms":1.5}}"#, "not a whole number"),
            (
                r#"{"policy":{"idle_grace_ms":"never"}}"#,
                "neither a number nor",
            ),
            (
                r#"{"policy":{"idle_grace_ms":18446744073709551615}}"#,
                "is reserved",
            ),
            ("not json", "fleet options JSON"),
        ] {
            match FleetOptions::from_json(bad) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
