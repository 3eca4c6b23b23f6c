//! Sequences of C ABI calls built from fuzz bytes, with NULL handles and outputs, invalid UTF-8,
//! overflowing lengths, unknown enum values, stale tickets and use after free. Every call must
//! return a result code; none may crash, leak or corrupt state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_lifecycle::ffi::*;
use std::ptr::{null, null_mut};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map(|(b, r)| (*b, r)).unwrap_or((0, &[]));
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | self.byte() as u64)
    }
}

const NAMES: [&[u8]; 6] = [b"n0", b"n1", b"n2", b"", b"\xff\xfe", b"local-node"];

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    unsafe {
        let mut opts = null_mut();
        nl_options_new(&mut opts, null_mut());
        nl_options_use_manual_clock(opts, 0, null_mut());
        let mut fleet = null_mut();
        nl_fleet_new(opts, &mut fleet, null_mut());
        nl_options_free(opts);
        let mut freed = false;
        let mut tickets: Vec<u64> = vec![0, u64::MAX];
        for _ in 0..64 {
            if inp.0.is_empty() {
                break;
            }
            let op = inp.byte();
            let name = NAMES[(inp.byte() % 6) as usize];
            // Sometimes a NULL pointer with a non-zero length, sometimes a length that overflows.
            let (p, len) = match inp.byte() % 8 {
                0 => (null(), name.len().max(1)),
                1 => (name.as_ptr(), usize::MAX),
                _ => (name.as_ptr(), name.len()),
            };
            let f = if inp.byte() % 16 == 0 { null() } else { fleet as *const nl_fleet };
            let mut err = null_mut();
            let value = inp.byte() as u32;
            let r = match op % 16 {
                0 => {
                    let spec = nl_node_spec { id: p, id_len: len, origin: value % 5, total_ram_mb: inp.u64() % 100_000, instance_type: null(), instance_type_len: 0, hourly_cost_eur: 0.1, initial_state: (value % 10) as i32 - 1, has_provisioned_at: false, provisioned_at_ms: 0 };
                    nl_fleet_register(f, &spec, &mut err)
                }
                1 => nl_fleet_transition(f, p, len, value % 10, b"r".as_ptr(), 1, null_mut(), &mut err),
                2 => nl_fleet_report_health(f, p, len, value % 2 == 0, null_mut(), &mut err),
                3 => nl_fleet_add_container(f, p, len, b"c".as_ptr(), 1, inp.u64() % 4096, null_mut(), &mut err),
                4 => nl_fleet_remove_container(f, p, len, b"c".as_ptr(), 1, null_mut(), &mut err),
                5 => nl_fleet_reserve(f, p, len, b"r".as_ptr(), 1, inp.u64() % 4096, null_mut(), &mut err),
                6 => nl_fleet_place_hold(f, p, len, b"h".as_ptr(), 1, null(), 0, null_mut(), &mut err),
                7 => {
                    let mut v = nl_verdict::default();
                    let out = if value % 7 == 0 { null_mut() } else { &mut v as *mut _ };
                    nl_fleet_evaluate(f, p, len, out, &mut err)
                }
                8 => {
                    let mut t = 0;
                    let r = nl_fleet_begin_decommission(f, p, len, b"fuzz".as_ptr(), 4, &mut t, &mut err);
                    if r == nl_result::Ok {
                        tickets.push(t);
                    }
                    r
                }
                9 => nl_fleet_complete_decommission(f, tickets[value as usize % tickets.len()], &mut err),
                10 => nl_fleet_cancel_decommission(f, tickets[value as usize % tickets.len()], b"x".as_ptr(), 1, null_mut(), &mut err),
                11 => nl_fleet_advance_clock_ms(f, inp.u64() % 10_000_000, &mut err),
                12 => {
                    let mut b = null_mut();
                    let r = nl_fleet_audit_query(f, value % 5, p, len, value % 8, 100, &mut b, &mut err);
                    nl_bytes_free(b);
                    r
                }
                13 => {
                    let mut l = null_mut();
                    let r = nl_fleet_evaluate_all(f, &mut l, &mut err);
                    let mut n = 0;
                    let _ = nl_verdict_list_items(l, &mut n);
                    nl_verdict_list_free(l);
                    r
                }
                14 => {
                    let mut b = null_mut();
                    let r = nl_fleet_consolidation_plan_json(f, p, len, &mut b, &mut err);
                    nl_bytes_free(b);
                    r
                }
                _ => {
                    if !freed && value % 32 == 0 {
                        nl_fleet_free(fleet);
                        freed = true;
                    }
                    nl_fleet_tick(f, null_mut(), &mut err)
                }
            };
            // Every failure has a code and a readable message; success leaves no error behind.
            if r == nl_result::Ok {
                assert!(err.is_null());
            } else {
                assert!(!err.is_null());
                assert_eq!(nl_error_code(err), r);
                let msg = std::ffi::CStr::from_ptr(nl_error_message(err));
                assert!(!msg.to_bytes().is_empty());
                assert!(r != nl_result::Panic, "a call panicked: {msg:?}");
            }
            nl_error_free(err);
        }
        if !freed {
            nl_fleet_free(fleet);
        }
    }
});
