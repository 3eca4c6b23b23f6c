//! Every JSON decoder the library exposes: fleet options (Rust and C), policies with "off" and
//! out-of-range values, consolidation requests and plans, container lists, node and audit
//! queries, and `nl_fleet_call` requests. Decoding may fail; it must never panic or accept a
//! setting out of range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_lifecycle::ffi::*;
use node_lifecycle::{AuditQuery, ConsolidationRequest, FleetOptions, NodeQuery, NodeUpdate};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(opts) = FleetOptions::from_json(text) {
            // Whatever decodes is resolved, and a fleet accepts it.
            assert_eq!(opts.resolve().unwrap(), opts, "resolving is idempotent");
            let _ = node_lifecycle::Fleet::new(opts).expect("resolved options build a fleet");
        }
        if let Ok(req) = serde_json::from_str::<ConsolidationRequest>(text) {
            if let Ok(p) = req.policy.resolve() {
                assert!(p.max_utilisation_after > 0.0 && p.max_utilisation_after <= 1.0);
                assert!(p.min_savings_eur_per_hour.is_finite() && p.min_savings_eur_per_hour > 0.0);
            }
        }
        let _ = serde_json::from_str::<NodeQuery>(text);
        let _ = serde_json::from_str::<AuditQuery>(text);
        let _ = serde_json::from_str::<NodeUpdate>(text);
    }
    unsafe {
        let mut opts = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        if nl_options_from_json(data.as_ptr(), data.len(), &mut opts, &mut err) == nl_result::Ok {
            // Data directories from fuzz input are not opened.
            let mut fleet = std::ptr::null_mut();
            nl_options_set_data_dir(opts, std::ptr::null(), 0, std::ptr::null_mut());
            if nl_fleet_new(opts, &mut fleet, std::ptr::null_mut()) == nl_result::Ok {
                let mut out = nl_container_outcome::default();
                nl_fleet_sync_containers(fleet, b"n".as_ptr(), 1, data.as_ptr(), data.len(), &mut out, std::ptr::null_mut());
                let mut b = std::ptr::null_mut();
                nl_fleet_call(fleet, data.as_ptr(), data.len(), &mut b, std::ptr::null_mut());
                nl_bytes_free(b);
                nl_fleet_nodes_page_json(fleet, data.as_ptr(), data.len(), &mut b, std::ptr::null_mut());
                nl_bytes_free(b);
                nl_fleet_audit_page_json(fleet, data.as_ptr(), data.len(), &mut b, std::ptr::null_mut());
                nl_bytes_free(b);
                nl_fleet_execute_plan_json(fleet, data.as_ptr(), data.len(), std::ptr::null(), 0, &mut b, std::ptr::null_mut());
                nl_bytes_free(b);
                nl_fleet_free(fleet);
            }
        }
        nl_options_free(opts);
        nl_error_free(err);
    }
});
