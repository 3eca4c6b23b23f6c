//! Every JSON decoder the library exposes: fleet options (Rust and C), consolidation requests,
//! and container lists. Decoding may fail; it must never panic or accept an invalid policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_lifecycle::ffi::*;
use node_lifecycle::{ConsolidationRequest, FleetOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(opts) = FleetOptions::from_json(text) {
            // Whatever decodes must be a valid policy a fleet accepts.
            opts.validate().expect("decoded options validate");
            let _ = node_lifecycle::Fleet::new(opts).expect("validated options build a fleet");
        }
        if let Ok(req) = serde_json::from_str::<ConsolidationRequest>(text) {
            let _ = req.policy.validate();
        }
    }
    unsafe {
        let mut opts = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        if nl_options_from_json(data.as_ptr(), data.len(), &mut opts, &mut err) == nl_result::Ok {
            let mut fleet = std::ptr::null_mut();
            if nl_fleet_new(opts, &mut fleet, std::ptr::null_mut()) == nl_result::Ok {
                let mut out = nl_container_outcome::default();
                nl_fleet_sync_containers(fleet, b"n".as_ptr(), 1, data.as_ptr(), data.len(), &mut out, std::ptr::null_mut());
                nl_fleet_free(fleet);
            }
        }
        nl_options_free(opts);
        nl_error_free(err);
    }
});
