//! The ring's promises, each against a model or a scan.

use super::*;
use crate::clock::Timestamp;
use std::collections::VecDeque;

fn rec(node: &str, action: AuditAction, result: AuditResult) -> AuditRecord {
    AuditRecord::new(action, Text::new(node), result)
}

fn ring_with(n: u64, cap: usize) -> AuditRing {
    let mut r = AuditRing::new(cap);
    for i in 0..n {
        let node = format!("n{}", i % 3);
        let action = if i % 2 == 0 {
            AuditAction::NodeDecommission
        } else {
            AuditAction::LifecycleTransition
        };
        r.append(
            rec(&node, action, AuditResult::Success),
            Timestamp(i as i64),
        );
    }
    r
}

fn seqs(v: &[AuditEntry]) -> Vec<u64> {
    v.iter().map(|e| e.seq).collect()
}

#[test]
fn bounded_with_monotonic_sequence_and_counted_evictions() {
    let r = ring_with(10, 4);
    assert_eq!(r.len(), 4);
    assert_eq!(
        r.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
    let s = r.stats();
    assert_eq!((s.total_recorded, s.retained, s.evicted), (10, 4, 6));
    assert_eq!(s.retained + s.evicted, s.total_recorded);
    assert_eq!(s.by_action[&AuditAction::NodeDecommission], 5);
    assert_eq!(s.last_entry.unwrap().seq, 10);
}

#[test]
fn queries_return_newest_in_chronological_order() {
    let r = ring_with(10, 100);
    assert_eq!(seqs(&r.recent(3)), vec![8, 9, 10]);
    assert_eq!(seqs(&r.by_node("n0", 2)), vec![7, 10]);
    assert_eq!(
        seqs(&r.by_action(AuditAction::LifecycleTransition, 100)),
        vec![2, 4, 6, 8, 10]
    );
    assert!(r.by_result(AuditResult::Failed, 100).is_empty());
    assert!(r.by_node("nobody", 10).is_empty());
    assert!(r.recent(0).is_empty(), "a limit of 0 returns nothing");
    assert!(AuditRing::new(3).recent(5).is_empty());
}

#[test]
fn every_index_answers_what_a_scan_answers_through_evictions() {
    let mut r = AuditRing::new(5);
    for i in 0..40u64 {
        let node = format!("n{}", i % 4);
        let action = AuditAction::ALL[(i % 5) as usize];
        let result = AuditResult::ALL[(i % 3) as usize];
        r.append(rec(&node, action, result), Timestamp(i as i64));
        let scan = |keep: &dyn Fn(&AuditEntry) -> bool| -> Vec<u64> {
            r.iter().filter(|e| keep(e)).map(|e| e.seq).collect()
        };
        for n in 0..5 {
            let id = format!("n{n}");
            assert_eq!(
                seqs(&r.by_node(&id, usize::MAX)),
                scan(&|e| e.node_id == id)
            );
        }
        for a in AuditAction::ALL {
            assert_eq!(seqs(&r.by_action(a, usize::MAX)), scan(&|e| e.action == a));
        }
        for res in AuditResult::ALL {
            assert_eq!(
                seqs(&r.by_result(res, usize::MAX)),
                scan(&|e| e.result == res)
            );
        }
        assert!(r.by_node.len() <= 5);
        assert_eq!(
            r.by_node.values().map(VecDeque::len).sum::<usize>(),
            r.len()
        );
        assert_eq!(
            r.by_action.iter().map(VecDeque::len).sum::<usize>(),
            r.len()
        );
    }
    let restored = AuditRing::restore(3, r.state());
    assert_eq!(
        seqs(&restored.by_node("n2", 10)),
        restored
            .iter()
            .filter(|e| e.node_id == "n2")
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        restored.by_node.values().map(VecDeque::len).sum::<usize>(),
        3
    );
}

#[test]
fn renames_survive_a_restore() {
    let mut r = AuditRing::new(10);
    r.append(
        rec("old", AuditAction::NodeProvision, AuditResult::Success),
        Timestamp(0),
    );
    r.alias(&Text::from("old"), &Text::from("new"));
    r.append(
        rec("new", AuditAction::NodeRenamed, AuditResult::Success),
        Timestamp(0),
    );
    let restored = AuditRing::restore(10, r.state());
    assert_eq!(seqs(&restored.by_node("new", 10)), vec![1, 2]);
}

#[test]
fn pages_walk_backwards_with_a_cursor_and_filters() {
    let r = ring_with(10, 100);
    let q = |filter, before: Option<u64>, limit| {
        r.page(&AuditQuery {
            filter,
            before_seq: before,
            limit,
            ..Default::default()
        })
    };
    let p = q(AuditFilter::All, None, 4);
    assert_eq!(seqs(&p.entries), vec![10, 9, 8, 7]);
    assert_eq!(p.next_before_seq, Some(7));
    let p = q(AuditFilter::All, Some(7), 4);
    assert_eq!(seqs(&p.entries), vec![6, 5, 4, 3]);
    let p = q(AuditFilter::All, Some(3), 4);
    assert_eq!((seqs(&p.entries), p.next_before_seq), (vec![2, 1], None));
    let p = q(AuditFilter::Node("n1".into()), Some(8), 2);
    assert_eq!(seqs(&p.entries), vec![5, 2]);
    let p = q(AuditFilter::Action(AuditAction::NodeDecommission), None, 0);
    assert!(p.entries.is_empty());
    let p = r.page(&AuditQuery {
        after_seq: Some(8),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(seqs(&p.entries), vec![10, 9]);
    // Time bounds: [from, to).
    let p = r.page(&AuditQuery {
        from_ms: Some(Timestamp(3)),
        to_ms: Some(Timestamp(6)),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(seqs(&p.entries), vec![6, 5, 4]);
}

#[test]
fn a_renamed_node_keeps_its_history_in_queries() {
    let mut r = AuditRing::new(4);
    r.append(
        rec("old", AuditAction::NodeProvision, AuditResult::Success),
        Timestamp(0),
    );
    r.append(
        rec("x", AuditAction::ScaleUp, AuditResult::Success),
        Timestamp(0),
    );
    r.append(
        rec("new", AuditAction::ScaleUp, AuditResult::Success),
        Timestamp(0),
    );
    r.alias(&Text::from("old"), &Text::from("new"));
    r.append(
        rec("new", AuditAction::NodeRenamed, AuditResult::Success),
        Timestamp(0),
    );
    assert_eq!(seqs(&r.by_node("new", 10)), vec![1, 3, 4]);
    assert_eq!(
        seqs(&r.by_node("old", 10)),
        vec![1, 3, 4],
        "the old id finds the same history"
    );
    // Eviction of the old-named entry keeps the merged index consistent.
    r.append(
        rec("x", AuditAction::ScaleUp, AuditResult::Success),
        Timestamp(0),
    );
    assert_eq!(seqs(&r.by_node("new", 10)), vec![3, 4]);
    assert!(
        r.aliases.is_empty(),
        "the alias goes with the last old-named entry"
    );
    // A chain of renames: a -> b -> c.
    let mut r = AuditRing::new(10);
    r.append(
        rec("a", AuditAction::ScaleUp, AuditResult::Success),
        Timestamp(0),
    );
    r.alias(&Text::from("a"), &Text::from("b"));
    r.append(
        rec("b", AuditAction::ScaleUp, AuditResult::Success),
        Timestamp(0),
    );
    r.alias(&Text::from("b"), &Text::from("c"));
    assert_eq!(seqs(&r.by_node("c", 10)), vec![1, 2]);
    for _ in 0..10 {
        r.append(
            rec("z", AuditAction::ScaleUp, AuditResult::Success),
            Timestamp(0),
        );
    }
    assert!(r.by_node("c", 10).is_empty());
    assert_eq!(r.by_node.len(), 1, "only z is left");
    assert!(r.aliases.is_empty());
}

#[test]
fn since_is_a_cursor_that_reports_gaps() {
    let r = ring_with(10, 4); // holds 7..=10
    let p = r.since(0, 100);
    assert_eq!(p.missed, 6);
    assert_eq!(p.entries.first().unwrap().seq, 7);
    assert_eq!(p.next_cursor, 10);
    let p = r.since(8, 1);
    assert_eq!((p.missed, p.entries.len(), p.next_cursor), (0, 1, 9));
    let p = r.since(10, 100);
    assert!(p.entries.is_empty());
    assert_eq!((p.missed, p.next_cursor), (0, 10));
    // A cursor from the future (another fleet's) returns nothing and is kept.
    assert_eq!(r.since(50, 10).next_cursor, 50);
    assert_eq!(r.since(u64::MAX, 10).next_cursor, u64::MAX);
    let empty = AuditRing::new(2).since(0, 10);
    assert_eq!(
        (empty.entries.len(), empty.missed, empty.next_cursor),
        (0, 0, 0)
    );
}

#[test]
fn memory_stops_growing_once_the_ring_is_full() {
    // Smaller under Miri (a thousand times slower), still several chunks of a full ring.
    let (capacity, appends, every) = if cfg!(miri) {
        (300, 1_200, 100)
    } else {
        (1000, 20_000, 500)
    };
    let mut r = AuditRing::new(capacity);
    let mut reserved = Vec::new();
    for i in 0..appends {
        r.append(
            rec(
                &format!("n{}", i % 3000),
                AuditAction::ScaleUp,
                AuditResult::Success,
            ),
            Timestamp(i),
        );
        if i >= 2 * capacity as i64 && i % every == 0 {
            reserved.push(r.entries.reserved_bytes());
        }
    }
    assert!(
        reserved.windows(2).all(|w| w[0] == w[1]),
        "chunks are reused, not reallocated: {reserved:?}"
    );
    assert!(r.spare_lists.len() <= 64);
}

#[test]
fn entries_serialise_with_stable_names() {
    let mut r = AuditRing::new(2);
    r.append(
        rec("n1", AuditAction::NodeDecommission, AuditResult::Rejected)
            .reason(103, "node has 2 containers")
            .decision_by("manual"),
        Timestamp(42),
    );
    let j = serde_json::to_value(r.recent(1)).unwrap();
    assert_eq!(j[0]["action"], "node_decommission");
    assert_eq!(j[0]["result"], "rejected");
    assert_eq!(j[0]["reason_code"], 103);
    assert_eq!(j[0]["at_ms"], 42);
    let stats = serde_json::to_value(r.stats()).unwrap();
    assert_eq!(stats["by_result"]["rejected"], 1);
    assert_eq!(stats["by_action"]["reservation_expired"], 0);
}
