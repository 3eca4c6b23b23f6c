//! Model-based test: a small reference model of SPEC.md's rules, written independently of the
//! library (no shared code), runs beside a real fleet over long random operation sequences.
//! After every operation the two must agree on each node's state, occupancy and verdict
//! (allowed, every reason, retry-after), and on the outcome of every decommission call.
//!
//! `NL_MODEL_SEEDS` and `NL_MODEL_OPS` scale it (defaults: 6 seeds x 100,000 operations).

use node_lifecycle::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MIN: i64 = 60_000;
const GRACE_READY: i64 = 30 * MIN;
const GRACE_IDLE: i64 = 30 * MIN;
const GRACE_POST_SYNC: i64 = 10 * MIN;
const SYNC_TIMEOUT: i64 = 30 * MIN;
const PROVISIONING_TIMEOUT: i64 = 15 * MIN;
const THRESHOLD: u32 = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum S {
    Prov,
    Init,
    Ready,
    Active,
    Idle,
    Drain,
    Gone,
    Sick,
}

fn lib_state(s: S) -> LifecycleState {
    use LifecycleState::*;
    match s {
        S::Prov => Provisioning,
        S::Init => Initializing,
        S::Ready => Ready,
        S::Active => Active,
        S::Idle => Idle,
        S::Drain => Draining,
        S::Gone => Decommissioned,
        S::Sick => Unhealthy,
    }
}

/// The user's table, written out again.
fn table(from: S, to: S) -> bool {
    use S::*;
    let allowed: &[S] = match from {
        Prov => &[Init, Sick, Gone],
        Init => &[Ready, Sick, Gone],
        Ready => &[Active, Idle, Drain, Sick, Gone],
        Active => &[Idle, Sick, Drain],
        Idle => &[Active, Drain, Sick, Gone],
        Drain => &[Gone, Sick],
        Sick => &[Gone, Ready],
        Gone => &[],
    };
    allowed.contains(&to)
}

#[derive(Clone, Debug)]
struct MNode {
    origin: NodeOrigin,
    state: S,
    containers: BTreeSet<u8>,
    reservations: BTreeSet<u8>,
    holds: BTreeSet<u8>,
    provisioned: i64,
    initialized: Option<i64>,
    last_container: Option<i64>,
    sync_pending_since: Option<i64>,
    sync_done: Option<i64>,
    failures: u32,
    ticket: Option<u64>,
    pre_drain: Option<S>,
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    now: i64,
    next_ticket: u64,
}

impl MNode {
    fn sync_completion(&self, now: i64) -> Option<i64> {
        match self.sync_pending_since {
            Some(since) if now >= since + SYNC_TIMEOUT => Some(since + SYNC_TIMEOUT),
            Some(_) => None,
            None => self.sync_done,
        }
    }

    /// Every blocking reason in rule order, and when timers alone would let it pass.
    fn verdict(&self, now: i64) -> (Vec<ReasonCode>, Option<i64>) {
        use ReasonCode::*;
        if self.state == S::Gone {
            return (vec![AlreadyDecommissioned], None);
        }
        let mut r = Vec::new();
        let mut wait: Vec<i64> = Vec::new();
        let protected = matches!(self.origin, NodeOrigin::System | NodeOrigin::Dedicated);
        match self.origin {
            NodeOrigin::System => r.push(SystemNode),
            NodeOrigin::Dedicated => r.push(DedicatedNode),
            _ => {}
        }
        if matches!(self.state, S::Prov | S::Init) {
            r.push(StillStarting);
        }
        if !self.containers.is_empty() {
            r.push(HasContainers);
        }
        if !self.reservations.is_empty() {
            r.push(HasReservations);
        }
        if !self.holds.is_empty() {
            r.push(HasHolds);
        }
        if !protected {
            match self.state {
                S::Ready => {
                    let since = self.initialized.unwrap_or(self.provisioned);
                    if now - since < GRACE_READY {
                        r.push(ReadyTooYoung);
                        wait.push(since + GRACE_READY);
                    }
                }
                S::Active | S::Idle if self.containers.is_empty() => match self.last_container {
                    Some(t) if now - t < GRACE_IDLE => {
                        r.push(IdleTooRecent);
                        wait.push(t + GRACE_IDLE);
                    }
                    Some(_) => {}
                    None => r.push(NoContainerHistory),
                },
                _ => {}
            }
        }
        if self.sync_pending_since.is_some() || self.sync_done.is_some() {
            match self.sync_completion(now) {
                None => r.push(ContainerSyncPending),
                Some(done) if now - done < GRACE_POST_SYNC => {
                    r.push(RecoveryGrace);
                    wait.push(done + GRACE_POST_SYNC);
                }
                Some(_) => {}
            }
        }
        let timers_only = !r.is_empty()
            && r.iter()
                .all(|c| matches!(c, ReadyTooYoung | IdleTooRecent | RecoveryGrace));
        (
            r,
            if timers_only {
                wait.into_iter().max()
            } else {
                None
            },
        )
    }

    fn enter(&mut self, to: S, now: i64) {
        if self.state == S::Init && to == S::Ready && self.initialized.is_none() {
            self.initialized = Some(now);
        }
        if to == S::Drain {
            self.pre_drain = Some(self.state);
        }
        if self.state == S::Drain {
            self.ticket = None;
            self.pre_drain = None;
        }
        if self.state == S::Sick && to == S::Ready {
            self.sync_pending_since = Some(now);
        }
        self.state = to;
    }

    fn settle(&mut self, now: i64) {
        match (self.state, self.containers.is_empty()) {
            (S::Ready | S::Idle, false) => self.enter(S::Active, now),
            (S::Active, true) => self.enter(S::Idle, now),
            _ => {}
        }
    }

    fn schedulable(&self) -> bool {
        matches!(self.state, S::Ready | S::Active | S::Idle)
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Register(u8, u8),
    Transition(u8, u8),
    Health(u8, bool),
    Add(u8, u8),
    Remove(u8, u8),
    Reserve(u8, u8),
    Release(u8, u8),
    Hold(u8, u8),
    Unhold(u8, u8),
    Advance(u16),
    Begin(u8),
    Complete(u8),
    Fail(u8),
    Cancel(u8),
    Tick,
    FinishRestore,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u8 {
        (self.next() % n) as u8
    }
}

fn random_op(r: &mut Rng) -> Op {
    let n = |r: &mut Rng| r.below(6);
    let c = |r: &mut Rng| r.below(3);
    match r.below(20) {
        0 => Op::Register(n(r), r.below(4)),
        1..=3 => Op::Transition(n(r), r.below(8)),
        4 => Op::Health(n(r), r.below(3) != 0),
        5 | 6 => Op::Add(n(r), c(r)),
        7 | 8 => Op::Remove(n(r), c(r)),
        9 => Op::Reserve(n(r), c(r)),
        10 => Op::Release(n(r), c(r)),
        11 => Op::Hold(n(r), r.below(2)),
        12 => Op::Unhold(n(r), r.below(2)),
        13 | 14 => Op::Advance((r.next() % 40) as u16),
        15 => Op::Begin(n(r)),
        16 => Op::Complete(r.below(8)),
        17 => Op::Fail(r.below(8)),
        18 => Op::Cancel(r.below(8)),
        _ => {
            if r.below(2) == 0 {
                Op::Tick
            } else {
                Op::FinishRestore
            }
        }
    }
}

fn id(i: u8) -> String {
    format!("n{i}")
}

fn origin(o: u8) -> NodeOrigin {
    [
        NodeOrigin::Cloud,
        NodeOrigin::System,
        NodeOrigin::Dedicated,
        NodeOrigin::Recovered,
    ][o as usize]
}

const STATES: [S; 8] = [
    S::Prov,
    S::Init,
    S::Ready,
    S::Active,
    S::Idle,
    S::Drain,
    S::Gone,
    S::Sick,
];

/// Applies `op` to the model and says whether the library must succeed.
fn model_apply(m: &mut Model, op: Op, tickets: &[u64]) -> bool {
    let now = m.now;
    match op {
        Op::Register(i, o) => {
            if m.nodes.contains_key(&id(i)) {
                return false;
            }
            let origin = origin(o);
            let state = match origin {
                NodeOrigin::Cloud => S::Prov,
                NodeOrigin::Recovered => S::Ready,
                _ => S::Active,
            };
            let recovered = origin == NodeOrigin::Recovered;
            m.nodes.insert(
                id(i),
                MNode {
                    origin,
                    state,
                    containers: Default::default(),
                    reservations: Default::default(),
                    holds: Default::default(),
                    provisioned: now,
                    initialized: None,
                    last_container: None,
                    sync_pending_since: recovered.then_some(now),
                    sync_done: None,
                    failures: 0,
                    ticket: None,
                    pre_drain: None,
                },
            );
            true
        }
        Op::Transition(i, s) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            let to = STATES[s as usize];
            if n.state == to {
                return true;
            }
            if !table(n.state, to) || n.ticket.is_some() {
                return false;
            }
            if matches!(to, S::Drain | S::Gone) && !n.verdict(now).0.is_empty() {
                return false;
            }
            n.enter(to, now);
            true
        }
        Op::Health(i, ok) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            if n.state != S::Gone {
                if ok {
                    n.failures = 0;
                    if n.state == S::Sick && n.ticket.is_none() {
                        n.enter(S::Ready, now);
                    }
                } else {
                    n.failures += 1;
                    if n.failures >= THRESHOLD
                        && matches!(n.state, S::Ready | S::Active | S::Idle)
                        && n.ticket.is_none()
                    {
                        n.enter(S::Sick, now);
                    }
                }
            }
            true
        }
        Op::Add(i, c) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            if !n.schedulable() {
                return false;
            }
            n.reservations.remove(&c);
            n.containers.insert(c);
            n.settle(now);
            true
        }
        Op::Remove(i, c) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            if n.containers.remove(&c) && n.containers.is_empty() {
                n.last_container = Some(now);
            }
            n.settle(now);
            true
        }
        Op::Reserve(i, c) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            if !n.schedulable() || n.containers.contains(&c) {
                return false;
            }
            n.reservations.insert(c);
            true
        }
        Op::Release(i, c) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            n.reservations.remove(&c);
            true
        }
        Op::Hold(i, h) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            if n.ticket.is_some() || matches!(n.state, S::Drain | S::Gone) {
                return false;
            }
            n.holds.insert(h);
            true
        }
        Op::Unhold(i, h) => {
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            n.holds.remove(&h);
            true
        }
        Op::Advance(mins) => {
            m.now += mins as i64 * MIN;
            true
        }
        Op::Begin(i) => {
            let next = m.next_ticket + 1;
            let Some(n) = m.nodes.get_mut(&id(i)) else {
                return false;
            };
            if n.ticket.is_some() || !n.verdict(now).0.is_empty() {
                return false;
            }
            if n.state != S::Sick {
                n.enter(S::Drain, now);
            }
            n.ticket = Some(next);
            m.next_ticket = next;
            true
        }
        Op::Complete(k) | Op::Fail(k) | Op::Cancel(k) => {
            let Some(t) = tickets.get(k as usize) else {
                return false;
            };
            let Some(n) = m.nodes.values_mut().find(|n| n.ticket == Some(*t)) else {
                return false;
            };
            match op {
                Op::Complete(_) => {
                    n.ticket = None;
                    n.enter(S::Gone, now);
                }
                Op::Cancel(_) => {
                    n.ticket = None;
                    if n.state == S::Drain {
                        let back = match n.pre_drain {
                            Some(S::Ready) | None => S::Ready,
                            Some(_) => S::Idle,
                        };
                        n.state = back;
                        n.pre_drain = None;
                    }
                }
                _ => {}
            }
            true
        }
        Op::Tick => {
            for n in m.nodes.values_mut() {
                if matches!(n.state, S::Prov | S::Init)
                    && now >= n.provisioned + PROVISIONING_TIMEOUT
                {
                    n.enter(S::Sick, now);
                }
                if n.sync_pending_since.is_some() {
                    if let Some(done) = n.sync_completion(now) {
                        n.sync_pending_since = None;
                        n.sync_done = Some(done);
                    }
                }
            }
            true
        }
        Op::FinishRestore => {
            for n in m.nodes.values_mut() {
                if n.sync_pending_since.take().is_some() {
                    n.sync_done = Some(now);
                }
            }
            true
        }
    }
}

fn library_apply(f: &Fleet, op: Op, tickets: &mut Vec<u64>) -> bool {
    match op {
        Op::Register(i, o) => f
            .register(NodeSpec {
                origin: origin(o),
                ..NodeSpec::cloud(id(i), 0)
            })
            .is_ok(),
        Op::Transition(i, s) => f
            .transition(&id(i), lib_state(STATES[s as usize]), "model")
            .is_ok(),
        Op::Health(i, ok) => f.report_health(&id(i), ok).is_ok(),
        Op::Add(i, c) => f.add_container(&id(i), &format!("c{c}"), 0).is_ok(),
        Op::Remove(i, c) => f.remove_container(&id(i), &format!("c{c}")).is_ok(),
        Op::Reserve(i, c) => f.reserve(&id(i), &format!("c{c}"), 0).is_ok(),
        Op::Release(i, c) => f.release_reservation(&id(i), &format!("c{c}")).is_ok(),
        Op::Hold(i, h) => f.place_hold(&id(i), &format!("h{h}"), "").is_ok(),
        Op::Unhold(i, h) => f.release_hold(&id(i), &format!("h{h}")).is_ok(),
        Op::Advance(mins) => f
            .advance_clock(Duration::from_secs(60 * mins as u64))
            .is_ok(),
        Op::Begin(i) => match f.begin_decommission(&id(i), "model") {
            Ok(t) => {
                tickets.push(t.id);
                if tickets.len() > 8 {
                    tickets.remove(0);
                }
                true
            }
            Err(_) => false,
        },
        Op::Complete(k) => tickets
            .get(k as usize)
            .is_some_and(|t| f.complete_decommission(*t).is_ok()),
        Op::Fail(k) => tickets
            .get(k as usize)
            .is_some_and(|t| f.fail_decommission(*t, "model").is_ok()),
        Op::Cancel(k) => tickets
            .get(k as usize)
            .is_some_and(|t| f.cancel_decommission(*t, "model").is_ok()),
        Op::Tick => f.tick().is_ok(),
        Op::FinishRestore => f.finish_restore().is_ok(),
    }
}

fn run(seed: u64, ops: usize) {
    let f = Fleet::with_manual_clock(
        FleetOptions {
            audit_capacity: 64,
            ..Default::default()
        },
        Timestamp(0),
    )
    .unwrap();
    let mut m = Model::default();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut tickets: Vec<u64> = Vec::new();
    let mut outcomes = [0u64; 2];
    for step in 0..ops {
        let op = random_op(&mut rng);
        let before = tickets.clone();
        let expected = model_apply(&mut m, op, &before);
        let got = library_apply(&f, op, &mut tickets);
        assert_eq!(
            got, expected,
            "seed {seed} step {step}: {op:?} succeeded={got}, model says {expected}"
        );
        if let Op::Begin(_) = op {
            if got {
                assert_eq!(
                    tickets.last(),
                    Some(&m.next_ticket),
                    "seed {seed} step {step}: ticket numbers"
                );
            }
        }
        outcomes[got as usize] += 1;
        let now = m.now;
        // One read of the whole fleet per step; the verdicts are the library's own rule.
        f.with_nodes(|nodes, policy, lib_now| {
            assert_eq!(lib_now.0, now);
            let nodes: Vec<&Node> = nodes.collect();
            assert_eq!(
                nodes.len(),
                m.nodes.len(),
                "seed {seed} step {step}: node count"
            );
            for (node, (nid, n)) in nodes.into_iter().zip(&m.nodes) {
                let ctx = || format!("seed {seed} step {step} after {op:?}: node {nid}");
                assert_eq!(node.id(), nid, "{}", ctx());
                assert_eq!(node.state(), lib_state(n.state), "{}", ctx());
                assert_eq!(node.container_count(), n.containers.len(), "{}", ctx());
                assert_eq!(node.reservation_count(), n.reservations.len(), "{}", ctx());
                assert_eq!(node.hold_count(), n.holds.len(), "{}", ctx());
                assert_eq!(node.drain_ticket().map(|d| d.ticket), n.ticket, "{}", ctx());
                let v = node_lifecycle::safety::evaluate(node, policy, lib_now);
                let (reasons, retry) = n.verdict(now);
                let got: Vec<ReasonCode> = v.blockers.iter().map(|b| b.code).collect();
                assert_eq!(got, reasons, "{}", ctx());
                assert_eq!(v.allowed, reasons.is_empty(), "{}", ctx());
                assert_eq!(v.retry_after.map(|t| t.0), retry, "{}", ctx());
                // The invariant that matters most: nothing occupied is being deleted.
                if n.state == S::Drain || n.ticket.is_some() {
                    assert!(
                        n.containers.is_empty() && n.reservations.is_empty(),
                        "{}",
                        ctx()
                    );
                }
            }
        });
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "seed {seed}: the sequence exercised only one outcome"
    );
    let s = f.audit_stats();
    assert_eq!(s.retained + s.evicted, s.total_recorded);
}

#[test]
fn the_fleet_agrees_with_the_reference_model() {
    let seeds: u64 = std::env::var("NL_MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let ops: usize = std::env::var("NL_MODEL_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for seed in 1..=seeds {
        run(seed, ops);
    }
}
