//! Every grace period and threshold, with the defaults of SPEC.md, and their validation.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

const MINUTE_MS: u64 = 60_000;
/// Longer than any sane grace period; a larger value is almost certainly a unit mistake
/// (seconds or nanoseconds passed as milliseconds) and is refused.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 60 * MINUTE_MS;
/// The largest audit ring the library accepts (about 1 GiB of entries at the high end).
pub const MAX_AUDIT_CAPACITY: usize = 10_000_000;

/// The safety policy. Durations are milliseconds. A JSON object may omit any field: missing
/// fields take the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Rule 4: a `ready` node may be deleted only this long after cloud-init completed.
    pub ready_grace_ms: u64,
    /// Rule 5: an empty `active`/`idle` node may be deleted only this long after its last container.
    pub idle_grace_ms: u64,
    /// Rule 7: after the container view is re-synchronised, the node stays protected this long.
    pub post_sync_grace_ms: u64,
    /// Rule 7: a pending container sync completes by itself (audited) after this long.
    pub sync_timeout_ms: u64,
    /// A node in `provisioning`/`initializing` longer than this becomes `unhealthy`.
    pub provisioning_timeout_ms: u64,
    /// Consecutive failed health checks that move a productive node to `unhealthy`.
    pub unhealthy_threshold: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            ready_grace_ms: 30 * MINUTE_MS,
            idle_grace_ms: 30 * MINUTE_MS,
            post_sync_grace_ms: 10 * MINUTE_MS,
            sync_timeout_ms: 30 * MINUTE_MS,
            provisioning_timeout_ms: 15 * MINUTE_MS,
            unhealthy_threshold: 3,
        }
    }
}

impl Policy {
    /// Refuses values that would make the rules meaningless (a zero threshold) or that look like
    /// unit mistakes (a grace period longer than a year).
    pub fn validate(&self) -> Result<()> {
        let durations = [
            ("ready_grace_ms", self.ready_grace_ms),
            ("idle_grace_ms", self.idle_grace_ms),
            ("post_sync_grace_ms", self.post_sync_grace_ms),
            ("sync_timeout_ms", self.sync_timeout_ms),
            ("provisioning_timeout_ms", self.provisioning_timeout_ms),
        ];
        for (name, v) in durations {
            if v > MAX_DURATION_MS {
                return Err(Error::InvalidArgument(format!(
                    "{name} = {v} exceeds the maximum of {MAX_DURATION_MS} ms (one year)"
                )));
            }
        }
        if self.sync_timeout_ms == 0 {
            return Err(Error::InvalidArgument(
                "sync_timeout_ms must be greater than 0".into(),
            ));
        }
        if self.provisioning_timeout_ms == 0 {
            return Err(Error::InvalidArgument(
                "provisioning_timeout_ms must be greater than 0".into(),
            ));
        }
        if self.unhealthy_threshold == 0 || self.unhealthy_threshold > 1_000 {
            return Err(Error::InvalidArgument(format!(
                "unhealthy_threshold = {} must be between 1 and 1000",
                self.unhealthy_threshold
            )));
        }
        Ok(())
    }
}

/// What a fleet is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetOptions {
    pub policy: Policy,
    /// How many audit entries the ring keeps; older ones are evicted (and counted).
    pub audit_capacity: usize,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            policy: Policy::default(),
            audit_capacity: 1000,
        }
    }
}

impl FleetOptions {
    pub fn validate(&self) -> Result<()> {
        self.policy.validate()?;
        if self.audit_capacity == 0 || self.audit_capacity > MAX_AUDIT_CAPACITY {
            return Err(Error::InvalidArgument(format!(
                "audit_capacity = {} must be between 1 and {MAX_AUDIT_CAPACITY}",
                self.audit_capacity
            )));
        }
        Ok(())
    }

    /// Decodes options from JSON (the C and Go bindings' format); unknown fields are refused so a
    /// typo does not silently fall back to a default.
    pub fn from_json(json: &str) -> Result<Self> {
        let opts: FleetOptions = serde_json::from_str(json)
            .map_err(|e| Error::InvalidArgument(format!("fleet options JSON: {e}")))?;
        opts.validate()?;
        Ok(opts)
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
        assert_eq!(p.unhealthy_threshold, 3);
        assert_eq!(FleetOptions::default().audit_capacity, 1000);
    }

    #[test]
    fn bad_values_are_refused_with_the_field_name() {
        let zero_cap = FleetOptions {
            audit_capacity: 0,
            ..Default::default()
        };
        assert!(
            matches!(zero_cap.validate(), Err(Error::InvalidArgument(m)) if m.contains("audit_capacity"))
        );
        let huge = FleetOptions {
            audit_capacity: MAX_AUDIT_CAPACITY + 1,
            ..Default::default()
        };
        assert!(
            matches!(huge.validate(), Err(Error::InvalidArgument(m)) if m.contains("audit_capacity"))
        );
        let p = Policy {
            idle_grace_ms: MAX_DURATION_MS + 1,
            ..Default::default()
        };
        assert!(
            matches!(p.validate(), Err(Error::InvalidArgument(m)) if m.contains("idle_grace_ms"))
        );
        let p = Policy {
            unhealthy_threshold: 0,
            ..Default::default()
        };
        assert!(
            matches!(p.validate(), Err(Error::InvalidArgument(m)) if m.contains("unhealthy_threshold"))
        );
    }

    #[test]
    fn json_takes_defaults_for_missing_fields_and_refuses_typos() {
        let o = FleetOptions::from_json(r#"{"policy":{"idle_grace_ms":5}}"#).unwrap();
        assert_eq!(o.policy.idle_grace_ms, 5);
        assert_eq!(o.policy.ready_grace_ms, Policy::default().ready_grace_ms);
        assert_eq!(o.audit_capacity, 1000);
        assert!(matches!(
            FleetOptions::from_json(r#"{"policy":{"idle_grace":5}}"#),
            Err(Error::InvalidArgument(m)) if m.contains("unknown field `idle_grace`")
        ));
        assert!(matches!(
            FleetOptions::from_json("not json"),
            Err(Error::InvalidArgument(m)) if m.starts_with("fleet options JSON")
        ));
    }
}
