//! Sequences of C ABI calls built from fuzz bytes, with NULL handles and outputs, invalid UTF-8,
//! overflowing lengths, unknown enum values, tickets and claims from another fleet or node,
//! arbitrary JSON through `nl_fleet_call`, double frees and use after free. Every call must
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
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.byte() as usize % 48;
        (0..n).map(|_| self.byte()).collect()
    }
}

const NAMES: [&[u8]; 6] = [b"n0", b"n1", b"n2", b"", b"\xff\xfe", b"local-node"];
const CALLS: [&str; 6] = [
    r#"{"op":"cordon","node":"n0","name":"k","reason":"r","evacuate":true}"#,
    r#"{"op":"nodes_page","query":{"limit":2}}"#,
    r#"{"op":"consolidation_plan"}"#,
    r#"{"op":"tick"}"#,
    r#"{"op":"audit_page","query":{"filter":{"by":"node","value":"n1"},"limit":5}}"#,
    r#"{"op":"rename","old":"n2","new":"n3"}"#,
];

unsafe fn new_fleet() -> *mut nl_fleet {
    let mut opts = null_mut();
    nl_options_new(&mut opts, null_mut());
    nl_options_use_manual_clock(opts, 0, null_mut());
    let mut fleet = null_mut();
    nl_fleet_new(opts, &mut fleet, null_mut());
    assert_eq!(nl_options_free(opts), nl_result::Ok);
    fleet
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    unsafe {
        // Two fleets, so tickets and claims cross between them.
        let fleets = [new_fleet(), new_fleet()];
        let mut freed = [false, false];
        let mut tickets: Vec<(Vec<u8>, nl_ticket_id)> = vec![(b"n0".to_vec(), nl_ticket_id::default())];
        let mut claims: Vec<nl_claim_id> = vec![nl_claim_id::default()];
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
            let which = (inp.byte() % 2) as usize;
            let f = if inp.byte() % 16 == 0 { null() } else { fleets[which] as *const nl_fleet };
            let mut err = null_mut();
            let value = inp.byte() as u32;
            let r = match op % 22 {
                0 => {
                    let labels = if value % 3 == 0 { &b"{\"k\":\"v\"}"[..] } else { &b""[..] };
                    let spec = nl_node_spec {
                        id: p,
                        id_len: len,
                        origin: value % 5,
                        total_ram_mb: inp.u64() % 100_000,
                        instance_type: null(),
                        instance_type_len: 0,
                        hourly_cost_eur: 0.1,
                        initial_state: (value % 10) as i32 - 1,
                        has_provisioned_at: false,
                        provisioned_at_ms: 0,
                        labels_json: labels.as_ptr(),
                        labels_json_len: labels.len(),
                    };
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
                    let mut t = nl_ticket_id::default();
                    let r = nl_fleet_begin_decommission(f, p, len, b"fuzz".as_ptr(), 4, &mut t, &mut err);
                    if r == nl_result::Ok {
                        tickets.push((name.to_vec(), t));
                    }
                    r
                }
                9 => {
                    let (node, t) = &tickets[value as usize % tickets.len()];
                    nl_fleet_complete_decommission(f, node.as_ptr(), node.len(), t, &mut err)
                }
                10 => {
                    let (node, t) = &tickets[value as usize % tickets.len()];
                    let text = inp.bytes();
                    nl_fleet_fail_decommission(f, node.as_ptr(), node.len(), t, text.as_ptr(), text.len(), &mut err)
                }
                11 => {
                    // A ticket presented for another node.
                    let (_, t) = &tickets[value as usize % tickets.len()];
                    nl_fleet_cancel_decommission(f, p, len, t, b"x".as_ptr(), 1, null_mut(), &mut err)
                }
                12 => nl_fleet_advance_clock_ms(f, inp.u64() % 10_000_000, &mut err),
                13 => nl_fleet_set_clock_ms(f, inp.u64() as i64, &mut err),
                14 => {
                    let mut b = null_mut();
                    let r = nl_fleet_audit_query(f, value % 5, p, len, value % 13, 100, &mut b, &mut err);
                    nl_bytes_free(b);
                    r
                }
                15 => {
                    let mut l = null_mut();
                    let r = nl_fleet_evaluate_all(f, &mut l, &mut err);
                    let mut n = 0;
                    let _ = nl_verdict_list_items(l, &mut n);
                    assert_eq!(nl_verdict_list_free(l), nl_result::Ok);
                    assert_ne!(nl_verdict_list_free(l), nl_result::Panic, "a double free is reported");
                    r
                }
                16 => {
                    let mut c = nl_claim_id::default();
                    let r = nl_fleet_claim(f, p, len, inp.u64() % 4096, inp.u64() % 1_000_000, &mut c, &mut err);
                    if r == nl_result::Ok {
                        claims.push(c);
                    }
                    r
                }
                17 => {
                    let c = claims[value as usize % claims.len()];
                    nl_fleet_confirm_claim(f, &c, b"cc".as_ptr(), 2, null_mut(), &mut err)
                }
                18 => {
                    let reason = inp.bytes();
                    nl_fleet_cordon(f, p, len, b"k".as_ptr(), 1, reason.as_ptr(), reason.len(), value % 2 == 0, null_mut(), &mut err)
                }
                19 => {
                    let text = inp.bytes();
                    nl_fleet_abandon_provisioning(f, p, len, text.as_ptr(), text.len(), &mut err)
                }
                20 => {
                    let mut b = null_mut();
                    let call = if value % 4 == 0 { inp.bytes() } else { CALLS[value as usize % CALLS.len()].as_bytes().to_vec() };
                    let r = nl_fleet_call(f, call.as_ptr(), call.len(), &mut b, &mut err);
                    nl_bytes_free(b);
                    r
                }
                _ => {
                    if !freed[which] && value % 32 == 0 {
                        assert_eq!(nl_fleet_free(fleets[which]), nl_result::Ok);
                        freed[which] = true;
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
        for (i, fleet) in fleets.into_iter().enumerate() {
            let r = nl_fleet_free(fleet);
            assert_eq!(r == nl_result::Ok, !freed[i], "a second free is reported, a first succeeds");
        }
    }
});
