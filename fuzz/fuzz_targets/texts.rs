//! Failure texts and every other free text, as arbitrary bytes, through every call that takes
//! one, to the audit entry a sink stores: the call never fails for its text, and what reaches
//! the ring is valid UTF-8 without NUL or other control characters and at most 4 KiB, so a
//! PostgreSQL `text` column (or any log) can always store it. (The Go test
//! `FuzzFailureTextToPostgres` carries such texts on into a real PostgreSQL.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_lifecycle::*;

fn clean(s: &str) {
    assert!(s.len() <= 4096, "{} bytes", s.len());
    assert!(!s.chars().any(char::is_control), "{s:?}");
}

fuzz_target!(|data: &[u8]| {
    let f = Fleet::with_manual_clock(FleetOptions::default(), Timestamp(0)).unwrap();
    f.register(NodeSpec::cloud("n", 0)).unwrap();
    f.transition("n", LifecycleState::Initializing, "x").unwrap();
    f.transition("n", LifecycleState::Ready, "x").unwrap();
    f.advance_clock(std::time::Duration::from_secs(3600)).unwrap();
    let t = f.begin_decommission("n", "fuzz").unwrap();
    f.fail_decommission(&t, data).expect("any failure text is audited");
    let lossy = String::from_utf8_lossy(data);
    f.cordon("n", "k", &lossy, false).expect("any cordon reason is accepted");
    f.record_audit(
        AuditRecord::new(AuditAction::ScaleDown, "n", AuditResult::Failed)
            .reason(0, lossy.to_string())
            .error(lossy.to_string()),
    )
    .expect("any reason and error are accepted");
    f.register(NodeSpec::cloud("p", 0)).unwrap();
    f.abandon_provisioning("p", data).expect("any provisioning error is audited");
    for e in f.audit_recent(usize::MAX).unwrap() {
        clean(&e.reason);
        if let Some(err) = &e.error {
            clean(err);
        }
        if let Some(s) = &e.snapshot {
            for c in s.cordons.iter() {
                clean(&c.reason);
            }
        }
    }
});
