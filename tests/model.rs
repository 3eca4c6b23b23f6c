//! Model-based test: a small reference model of the specification's rules, written
//! independently of the library (no shared code), runs beside real fleets over long random
//! operation sequences. After every operation the two must agree on each node's state,
//! occupancy, cordons, ticket and verdict (allowed, every reason, retry-after), and on the
//! outcome of every call.
//!
//! Several fleets share one process, and the operations deliberately cross them: tickets and
//! claims from one fleet are presented to the other, the wall clock is stepped in both
//! directions (graces run on the monotonic clock), policies are set to extreme and invalid
//! values, container ids are reused across nodes, and every free text is arbitrary bytes. The
//! invariant that matters most is checked at the end of every run: no node was decommissioned
//! unless a verdict allowed it at begin (or it was abandoned while still starting), and the
//! audit holds its `node_decommission` entries with `decision_by`.
//!
//! `NL_MODEL_SEEDS` and `NL_MODEL_OPS` scale it (defaults: 4 seeds x 60,000 operations).

use node_lifecycle::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MIN: i64 = 60_000;
const NODES: u64 = 6;
const CONTAINERS: u64 = 6;
const FLEETS: usize = 2;

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

/// The model's policy: milliseconds, `None` for a timer that is off.
#[derive(Clone, Copy, Debug)]
struct MPolicy {
    ready: Option<i64>,
    idle: Option<i64>,
    post_sync: Option<i64>,
    sync_timeout: Option<i64>,
    prov_timeout: Option<i64>,
    claim_ttl: Option<i64>,
    unhealthy_grace: Option<i64>,
    threshold: u32,
}

impl Default for MPolicy {
    fn default() -> Self {
        MPolicy {
            ready: Some(30 * MIN),
            idle: Some(30 * MIN),
            post_sync: Some(10 * MIN),
            sync_timeout: Some(30 * MIN),
            prov_timeout: Some(15 * MIN),
            claim_ttl: Some(30 * MIN),
            unhealthy_grace: Some(15 * MIN),
            threshold: 3,
        }
    }
}

#[derive(Clone, Debug)]
struct MClaim {
    container: Option<u64>,
    created: i64,
    ttl: Option<i64>,
}

#[derive(Clone, Debug)]
struct MNode {
    origin: NodeOrigin,
    state: S,
    containers: BTreeSet<u64>,
    claims: BTreeMap<usize, MClaim>,
    holds: BTreeSet<u64>,
    /// cordon name -> evacuate
    cordons: BTreeMap<String, bool>,
    provisioned: i64,
    initialized: Option<i64>,
    last_container: Option<i64>,
    sync_pending_since: Option<i64>,
    sync_done: Option<i64>,
    failures: u32,
    ticket: Option<usize>,
    pre_drain: Option<S>,
    evacuated_by: Option<String>,
    /// When it last became unhealthy.
    sick_since: i64,
    /// Registered before its VM existed.
    placeholder: bool,
    /// Ever hosted a container.
    hosted: bool,
}

impl MNode {
    fn new(origin: NodeOrigin, state: S, now: i64) -> MNode {
        let recovered = origin == NodeOrigin::Recovered;
        MNode {
            origin,
            state,
            containers: Default::default(),
            claims: Default::default(),
            holds: Default::default(),
            cordons: Default::default(),
            provisioned: now,
            initialized: (origin == NodeOrigin::Cloud && state == S::Ready).then_some(now),
            last_container: None,
            sync_pending_since: recovered.then_some(now),
            sync_done: None,
            failures: 0,
            ticket: None,
            pre_drain: None,
            evacuated_by: None,
            sick_since: now,
            hosted: false,
            placeholder: false,
        }
    }

    /// Deleting it could kill work: it was ready once, hosted a container, or its containers
    /// are not known (found after a restart, or back from unhealthy).
    fn may_have_hosted_work(&self) -> bool {
        self.initialized.is_some()
            || self.hosted
            || self.origin == NodeOrigin::Recovered
            || self.sync_pending_since.is_some()
            || self.sync_done.is_some()
    }

    fn sync_completion(&self, now: i64, p: &MPolicy) -> Option<i64> {
        match self.sync_pending_since {
            Some(since) => match p.sync_timeout {
                Some(t) if now.saturating_sub(since) >= t => Some(since.saturating_add(t)),
                _ => None,
            },
            None => self.sync_done,
        }
    }

    fn evacuation(&self) -> Option<&String> {
        let c = self.evacuated_by.as_ref()?;
        (self.cordons.get(c) == Some(&true) && self.containers.is_empty()).then_some(c)
    }

    /// Every blocking reason in rule order, and (as a monotonic time) when timers alone would
    /// let it pass.
    fn verdict(&self, now: i64, p: &MPolicy) -> (Vec<ReasonCode>, Option<i64>) {
        use ReasonCode::*;
        if self.state == S::Gone {
            return (vec![AlreadyDecommissioned], None);
        }
        let mut r = Vec::new();
        let mut wait: Vec<i64> = Vec::new();
        let elapsed = |since: i64| now.saturating_sub(since).max(0);
        let mut grace = |r: &mut Vec<ReasonCode>, code, since: i64, g: Option<i64>| {
            if let Some(g) = g {
                if elapsed(since) < g {
                    r.push(code);
                    wait.push(g - elapsed(since));
                }
            }
        };
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
        if !self.claims.is_empty() {
            r.push(HasReservations);
        }
        if !self.holds.is_empty() {
            r.push(HasHolds);
        }
        if !protected {
            match self.state {
                S::Ready => {
                    let since = self.initialized.unwrap_or(self.provisioned);
                    grace(&mut r, ReadyTooYoung, since, p.ready);
                }
                S::Active | S::Idle if self.containers.is_empty() => {
                    match (self.last_container, self.evacuation()) {
                        (Some(_), Some(_)) => {}
                        (Some(t), None) => grace(&mut r, IdleTooRecent, t, p.idle),
                        (None, _) => r.push(NoContainerHistory),
                    }
                }
                S::Sick if self.may_have_hosted_work() => {
                    let since = self
                        .last_container
                        .map_or(self.sick_since, |t| t.max(self.sick_since));
                    grace(&mut r, UnhealthyTooRecent, since, p.unhealthy_grace);
                }
                _ => {}
            }
        }
        if self.sync_pending_since.is_some() || self.sync_done.is_some() {
            match self.sync_completion(now, p) {
                None => r.push(ContainerSyncPending),
                Some(done) => grace(&mut r, RecoveryGrace, done, p.post_sync),
            }
        }
        let timers_only = !r.is_empty()
            && r.iter().all(|c| {
                matches!(
                    c,
                    ReadyTooYoung | IdleTooRecent | RecoveryGrace | UnhealthyTooRecent
                )
            });
        (r, timers_only.then(|| wait.into_iter().max().unwrap_or(0)))
    }

    fn enter(&mut self, to: S, now: i64) {
        if self.state == S::Init && to == S::Ready && self.initialized.is_none() {
            self.initialized = Some(now);
        }
        if self.state == S::Sick && to == S::Ready {
            self.sync_pending_since = Some(now);
        }
        if to == S::Sick && self.state != S::Sick {
            self.sick_since = now;
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

    fn state_schedulable(&self) -> bool {
        matches!(self.state, S::Ready | S::Active | S::Idle)
    }

    fn schedulable(&self) -> bool {
        self.state_schedulable() && self.cordons.is_empty()
    }

    fn add(&mut self, c: u64, now: i64) {
        if self.containers.insert(c) {
            self.evacuated_by = None;
            self.hosted = true;
        }
        self.settle(now);
    }

    /// Removing a container the node does not run is a no-op.
    fn remove(&mut self, c: u64, now: i64) {
        if !self.containers.remove(&c) {
            return;
        }
        if self.containers.is_empty() {
            self.last_container = Some(now);
            // What an unhealthy node loses was not moved off it on purpose.
            self.evacuated_by = if self.state == S::Sick {
                None
            } else {
                self.cordons
                    .iter()
                    .find(|(_, e)| **e)
                    .map(|(n, _)| n.clone())
            };
        }
        self.settle(now);
    }

    fn claim_of(&self, c: u64) -> Option<usize> {
        self.claims
            .iter()
            .find(|(_, cl)| cl.container == Some(c))
            .map(|(k, _)| *k)
    }
}

/// One fleet's model.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    policy: MPolicy,
    /// Decommissions completed: node -> decision_by.
    completed: Vec<(String, String)>,
    abandoned: BTreeSet<String>,
}

impl Model {
    fn container_node(&self, c: u64) -> Option<&String> {
        self.nodes
            .iter()
            .find(|(_, n)| n.containers.contains(&c))
            .map(|(id, _)| id)
    }
}

/// The shared clock of both fleets: wall (what is recorded) and monotonic (what is measured).
struct Clock {
    wall: i64,
    mono: i64,
}

#[derive(Debug, Clone)]
enum Op {
    Register(usize, u64, u8),
    Transition(usize, u64, u8),
    Health(usize, u64, bool),
    Add(usize, u64, u64),
    Remove(usize, u64, u64),
    Reserve(usize, u64, u64),
    Release(usize, u64, u64),
    Confirm(usize, u64, u64),
    Claim(usize, u64, bool),
    ConfirmClaim(usize, usize, u64),
    ReleaseClaim(usize, usize),
    Hold(usize, u64, u64),
    Unhold(usize, u64, u64),
    Cordon(usize, u64, u8, bool, Vec<u8>),
    Uncordon(usize, u64, u8),
    Migrate(usize, u64, u64, u64),
    Advance(u32),
    StepWall(i64),
    SetPolicy(usize, u8, u8),
    Begin(usize, u64),
    Complete(usize, usize, bool),
    Fail(usize, usize, Vec<u8>),
    Cancel(usize, usize),
    Abandon(usize, u64, Vec<u8>),
    Tick(usize),
    FinishRestore(usize),
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self) -> Vec<u8> {
        let len = match self.below(10) {
            0 => 5000 + self.below(3000) as usize,
            1 => 0,
            _ => self.below(24) as usize,
        };
        (0..len)
            .map(|_| match self.below(4) {
                0 => self.below(256) as u8,
                1 => [0u8, 0xff, 0x7f, b'\n', 0xc3][self.below(5) as usize],
                _ => b'a' + self.below(26) as u8,
            })
            .collect()
    }
}

fn random_op(r: &mut Rng) -> Op {
    let f = r.below(FLEETS as u64) as usize;
    let n = r.below(NODES);
    let c = r.below(CONTAINERS);
    match r.below(31) {
        0 | 1 => Op::Register(f, n, r.below(6) as u8),
        2..=4 => Op::Transition(f, n, r.below(8) as u8),
        5 => Op::Health(f, n, r.below(3) != 0),
        6 | 7 => Op::Add(f, n, c),
        8 | 9 => Op::Remove(f, n, c),
        10 => Op::Reserve(f, n, c),
        11 => Op::Release(f, n, c),
        12 => Op::Confirm(f, n, c),
        13 => Op::Claim(f, n, r.below(6) == 0),
        14 => Op::ConfirmClaim(f, r.below(8) as usize, c),
        15 => Op::ReleaseClaim(f, r.below(8) as usize),
        16 => Op::Hold(f, n, r.below(2)),
        17 => Op::Unhold(f, n, r.below(2)),
        18 => Op::Cordon(f, n, r.below(2) as u8, r.below(2) == 0, r.bytes()),
        19 => Op::Uncordon(f, n, r.below(2) as u8),
        20 => Op::Migrate(f, c, n, r.below(NODES)),
        21 | 22 => Op::Advance(r.below(40) as u32),
        23 => Op::StepWall(match r.below(6) {
            0 => i64::MIN / 2,
            1 => i64::MAX / 2,
            k => (k as i64 - 3) * 120 * MIN,
        }),
        24 => Op::SetPolicy(f, r.below(8) as u8, r.below(6) as u8),
        25 => Op::Begin(f, n),
        26 => Op::Complete(f, r.below(8) as usize, r.below(5) == 0),
        27 => Op::Fail(f, r.below(8) as usize, r.bytes()),
        28 => Op::Cancel(f, r.below(8) as usize),
        29 => Op::Abandon(f, n, r.bytes()),
        _ => {
            if r.below(2) == 0 {
                Op::Tick(f)
            } else {
                Op::FinishRestore(f)
            }
        }
    }
}

fn id(i: u64) -> String {
    format!("n{i}")
}

fn cid(c: u64) -> String {
    format!("c{c}")
}

const ORIGINS: [NodeOrigin; 4] = [
    NodeOrigin::Cloud,
    NodeOrigin::System,
    NodeOrigin::Dedicated,
    NodeOrigin::Recovered,
];

/// A policy value for `field` of class `class`: 0 (the default), OFF, small, large, a year and
/// a bit (invalid), or a threshold. Returns the library policy, and the model's if valid.
fn policy_change(base: Policy, model: MPolicy, field: u8, class: u8) -> (Policy, Option<MPolicy>) {
    let value: u64 = match class {
        0 => 0,
        1 => OFF,
        2 => 1,
        3 => 5 * MIN as u64,
        4 => 365 * 24 * 60 * MIN as u64,
        _ => 365 * 24 * 60 * MIN as u64 + 1,
    };
    let defaults = MPolicy::default();
    let resolve = |v: u64, d: Option<i64>| -> Option<Option<i64>> {
        match v {
            0 => Some(d),
            OFF => Some(None),
            v if v > 365 * 24 * 60 * MIN as u64 => None,
            v => Some(Some(v as i64)),
        }
    };
    let mut p = base;
    let mut m = model;
    let ok = match field {
        0 => {
            p.ready_grace_ms = value;
            resolve(value, defaults.ready).map(|v| m.ready = v)
        }
        1 => {
            p.idle_grace_ms = value;
            resolve(value, defaults.idle).map(|v| m.idle = v)
        }
        2 => {
            p.post_sync_grace_ms = value;
            resolve(value, defaults.post_sync).map(|v| m.post_sync = v)
        }
        3 => {
            p.sync_timeout_ms = value;
            resolve(value, defaults.sync_timeout).map(|v| m.sync_timeout = v)
        }
        4 => {
            p.provisioning_timeout_ms = value;
            resolve(value, defaults.prov_timeout).map(|v| m.prov_timeout = v)
        }
        5 => {
            p.claim_ttl_ms = value;
            resolve(value, defaults.claim_ttl).map(|v| m.claim_ttl = v)
        }
        6 => {
            p.unhealthy_grace_ms = value;
            resolve(value, defaults.unhealthy_grace).map(|v| m.unhealthy_grace = v)
        }
        _ => {
            let t = [0u32, 1, 2, 5, 1000, 1001][class as usize];
            p.unhealthy_threshold = t;
            match t {
                0 => {
                    m.threshold = 3;
                    Some(())
                }
                1..=1000 => {
                    m.threshold = t;
                    Some(())
                }
                _ => None,
            }
        }
    };
    (p, ok.map(|()| m))
}

struct World {
    fleets: Vec<Fleet>,
    models: Vec<Model>,
    clock: Clock,
    /// Recent tickets handed out by any fleet: (model id, issuing fleet, ticket).
    tickets: Vec<(usize, usize, DecommissionTicket)>,
    /// Recent claims handed out by any fleet: (model id, issuing fleet, claim).
    claims: Vec<(usize, usize, ClaimId)>,
    next_id: usize,
}

impl World {
    /// Applies `op` to the model and says whether the library call must succeed; then makes
    /// the call and checks it did.
    fn step(&mut self, op: &Op) -> bool {
        let now = self.clock.mono;
        match op.clone() {
            Op::Register(f, i, o) => {
                let (origin, image, placeholder) = match o {
                    4 => (NodeOrigin::Cloud, true, false),
                    5 => (NodeOrigin::Cloud, false, true),
                    o => (ORIGINS[o as usize], false, false),
                };
                let m = &mut self.models[f];
                let expect = match m.nodes.get(&id(i)) {
                    Some(n) => {
                        let cloud = |o| matches!(o, NodeOrigin::Cloud | NodeOrigin::Recovered);
                        n.origin == origin || (cloud(n.origin) && cloud(origin))
                    }
                    None => {
                        let state = match (origin, image) {
                            (NodeOrigin::Cloud, false) => S::Prov,
                            (NodeOrigin::Cloud, true) | (NodeOrigin::Recovered, _) => S::Ready,
                            _ => S::Active,
                        };
                        let mut n = MNode::new(origin, state, now);
                        n.placeholder = placeholder;
                        m.nodes.insert(id(i), n);
                        true
                    }
                };
                let mut spec = NodeSpec {
                    origin,
                    ..NodeSpec::cloud(id(i), 0)
                };
                if image {
                    spec = spec.booted_from_image();
                }
                spec.placeholder = placeholder;
                let got = self.fleets[f].register(spec).is_ok();
                got == expect
            }
            Op::Transition(f, i, s) => {
                let to = STATES[s as usize];
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    None => false,
                    Some(n) if n.state == to => true,
                    Some(_) if matches!(to, S::Drain | S::Gone) => false,
                    Some(n) if !table(n.state, to) || n.ticket.is_some() => false,
                    Some(n) => {
                        n.enter(to, now);
                        true
                    }
                };
                let r = self.fleets[f].transition(&id(i), lib_state(to), "model");
                let exists = self.models[f]
                    .nodes
                    .get(&id(i))
                    .is_some_and(|n| n.state != to);
                if matches!(to, S::Drain | S::Gone) && exists {
                    assert!(matches!(r, Err(Error::ProtocolOnly { .. })), "{r:?}");
                }
                r.is_ok() == expect
            }
            Op::Health(f, i, ok) => {
                let threshold = self.models[f].policy.threshold;
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    None => false,
                    Some(n) => {
                        if n.state != S::Gone {
                            if ok {
                                n.failures = 0;
                                if n.state == S::Sick && n.ticket.is_none() {
                                    n.enter(S::Ready, now);
                                }
                            } else {
                                n.failures += 1;
                                if n.failures >= threshold
                                    && matches!(n.state, S::Ready | S::Active | S::Idle)
                                    && n.ticket.is_none()
                                {
                                    n.enter(S::Sick, now);
                                }
                            }
                        }
                        true
                    }
                };
                self.fleets[f].report_health(&id(i), ok).is_ok() == expect
            }
            Op::Add(f, i, c) => {
                let m = &mut self.models[f];
                let elsewhere = m.container_node(c).is_some_and(|n| *n != id(i));
                let expect = match m.nodes.get_mut(&id(i)) {
                    Some(_) if elsewhere => false,
                    None => false,
                    Some(n) if n.containers.contains(&c) => {
                        // Idempotent, but the count still decides ready/active/idle.
                        if let Some(k) = n.claim_of(c) {
                            n.claims.remove(&k);
                        }
                        n.settle(now);
                        true
                    }
                    Some(n) => {
                        // A node must be schedulable now, reserved or not: a cordon placed
                        // after the reservation still stops the start.
                        let claim = n.claim_of(c);
                        let ok = n.schedulable();
                        if ok {
                            if let Some(k) = claim {
                                n.claims.remove(&k);
                            }
                            n.add(c, now);
                        }
                        ok
                    }
                };
                self.fleets[f].add_container(&id(i), &cid(c), 1).is_ok() == expect
            }
            Op::Remove(f, i, c) => {
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    None => false,
                    Some(n) => {
                        n.remove(c, now);
                        true
                    }
                };
                self.fleets[f].remove_container(&id(i), &cid(c)).is_ok() == expect
            }
            Op::Reserve(f, i, c) => {
                let m = &mut self.models[f];
                let running = m.container_node(c).is_some();
                let ttl = m.policy.claim_ttl;
                let expect = match m.nodes.get_mut(&id(i)) {
                    Some(n) if n.schedulable() && !running => {
                        let k = n.claim_of(c).unwrap_or(usize::MAX - c as usize);
                        n.claims.insert(
                            k,
                            MClaim {
                                container: Some(c),
                                created: now,
                                ttl,
                            },
                        );
                        true
                    }
                    _ => false,
                };
                self.fleets[f].reserve(&id(i), &cid(c), 1).is_ok() == expect
            }
            Op::Release(f, i, c) => {
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    None => false,
                    Some(n) => {
                        if let Some(k) = n.claim_of(c) {
                            n.claims.remove(&k);
                        }
                        true
                    }
                };
                self.fleets[f].release_reservation(&id(i), &cid(c)).is_ok() == expect
            }
            Op::Confirm(f, i, c) => {
                let m = &mut self.models[f];
                let elsewhere = m.container_node(c).is_some_and(|n| *n != id(i));
                let expect = match m.nodes.get_mut(&id(i)) {
                    Some(n) if !elsewhere => match n.claim_of(c) {
                        // A reservation does not override a cordon placed after it.
                        Some(k) if n.containers.contains(&c) || n.schedulable() => {
                            n.claims.remove(&k);
                            n.add(c, now);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                self.fleets[f].confirm_reservation(&id(i), &cid(c)).is_ok() == expect
            }
            Op::Claim(f, i, forever) => {
                let m = &mut self.models[f];
                let ttl = if forever { None } else { m.policy.claim_ttl };
                let k = self.next_id;
                self.next_id += 1;
                let expect = match m.nodes.get_mut(&id(i)) {
                    Some(n) if n.schedulable() => {
                        n.claims.insert(
                            k,
                            MClaim {
                                container: None,
                                created: now,
                                ttl,
                            },
                        );
                        true
                    }
                    _ => false,
                };
                match self.fleets[f].claim(&id(i), 1, if forever { OFF } else { 0 }) {
                    Ok(c) => {
                        self.claims.push((k, f, c));
                        expect
                    }
                    Err(_) => !expect,
                }
            }
            Op::ConfirmClaim(f, k, c) => {
                let Some(&(k, issuer, claim)) = self.claims.get(k) else {
                    return true;
                };
                let m = &mut self.models[f];
                let holder = if issuer == f {
                    m.nodes
                        .iter()
                        .find(|(_, n)| n.claims.contains_key(&k))
                        .map(|(id, _)| id.clone())
                } else {
                    None
                };
                let elsewhere = m.container_node(c).cloned();
                let expect = match holder {
                    Some(h) if elsewhere.as_ref().is_none_or(|e| *e == h) => {
                        let n = m.nodes.get_mut(&h).unwrap();
                        if n.containers.contains(&c) || n.schedulable() {
                            n.claims.remove(&k);
                            n.add(c, now);
                            true
                        } else {
                            false
                        }
                    }
                    _ => false,
                };
                let r = self.fleets[f].confirm_claim(claim, &cid(c));
                if issuer != f {
                    assert!(matches!(r, Err(Error::ClaimNotFound(_))), "{r:?}");
                }
                r.is_ok() == expect
            }
            Op::ReleaseClaim(f, k) => {
                let Some(&(k, issuer, claim)) = self.claims.get(k) else {
                    return true;
                };
                let released = issuer == f
                    && self.models[f]
                        .nodes
                        .values_mut()
                        .any(|n| n.claims.remove(&k).is_some());
                self.fleets[f].release_claim(claim) == Ok(released)
            }
            Op::Hold(f, i, h) => {
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    Some(n) if n.ticket.is_none() && !matches!(n.state, S::Drain | S::Gone) => {
                        n.holds.insert(h);
                        true
                    }
                    _ => false,
                };
                self.fleets[f]
                    .place_hold(&id(i), &format!("h{h}"), "")
                    .is_ok()
                    == expect
            }
            Op::Unhold(f, i, h) => {
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    None => false,
                    Some(n) => {
                        n.holds.remove(&h);
                        true
                    }
                };
                self.fleets[f]
                    .release_hold(&id(i), &format!("h{h}"))
                    .is_ok()
                    == expect
            }
            Op::Cordon(f, i, k, evacuate, reason) => {
                let name = format!("k{k}");
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    Some(n) if n.state != S::Gone => {
                        // A cordon already in place is left as it is.
                        n.cordons.entry(name.clone()).or_insert(evacuate);
                        true
                    }
                    _ => false,
                };
                let reason = String::from_utf8_lossy(&reason).into_owned();
                self.fleets[f]
                    .cordon(&id(i), &name, &reason, evacuate)
                    .is_ok()
                    == expect
            }
            Op::Uncordon(f, i, k) => {
                let name = format!("k{k}");
                let expect = match self.models[f].nodes.get_mut(&id(i)) {
                    None => false,
                    Some(n) => {
                        // An evacuation waiver ends with the cordon it happened under.
                        if n.evacuated_by.as_ref() == Some(&name) {
                            n.evacuated_by = None;
                        }
                        n.cordons.remove(&name);
                        true
                    }
                };
                self.fleets[f].uncordon(&id(i), &name).is_ok() == expect
            }
            Op::Migrate(f, c, from, to) => {
                let m = &mut self.models[f];
                let ok = from != to
                    && m.nodes
                        .get(&id(from))
                        .is_some_and(|n| n.containers.contains(&c))
                    && m.nodes.get(&id(to)).is_some_and(|n| n.schedulable());
                if ok {
                    m.nodes.get_mut(&id(from)).unwrap().remove(c, now);
                    m.nodes.get_mut(&id(to)).unwrap().add(c, now);
                }
                self.fleets[f]
                    .record_migration(&cid(c), &id(from), &id(to), "model")
                    .is_ok()
                    == ok
            }
            Op::Advance(mins) => {
                self.clock.wall = self.clock.wall.saturating_add(mins as i64 * MIN);
                self.clock.mono = self.clock.mono.saturating_add(mins as i64 * MIN);
                for f in &self.fleets {
                    f.advance_clock(Duration::from_secs(60 * mins as u64))
                        .unwrap();
                }
                true
            }
            Op::StepWall(delta) => {
                self.clock.wall = self.clock.wall.saturating_add(delta);
                for f in &self.fleets {
                    f.set_clock(Timestamp(self.clock.wall)).unwrap();
                }
                true
            }
            Op::SetPolicy(f, field, class) => {
                let (p, m) =
                    policy_change(self.fleets[f].policy(), self.models[f].policy, field, class);
                let r = self.fleets[f].set_policy(p);
                match m {
                    Some(m) => {
                        self.models[f].policy = m;
                        r.is_ok()
                    }
                    None => matches!(r, Err(Error::InvalidSetting { .. })),
                }
            }
            Op::Begin(f, i) => {
                let m = &mut self.models[f];
                let policy = m.policy;
                let k = self.next_id;
                self.next_id += 1;
                let expect = match m.nodes.get_mut(&id(i)) {
                    Some(n) if n.ticket.is_none() && n.verdict(now, &policy).0.is_empty() => {
                        if n.state != S::Sick {
                            n.pre_drain = Some(n.state);
                            n.enter(S::Drain, now);
                        }
                        n.ticket = Some(k);
                        true
                    }
                    _ => false,
                };
                match self.fleets[f].begin_decommission(&id(i), "model_policy") {
                    Ok(t) => {
                        self.tickets.push((k, f, t));
                        expect
                    }
                    Err(_) => !expect,
                }
            }
            Op::Complete(f, k, forge) => {
                let Some((k, issuer, mut t)) = self.tickets.get(k).cloned() else {
                    return true;
                };
                if forge {
                    // The right id with another node's name.
                    t.node_id = id((t.node_id[1..].parse::<u64>().unwrap() + 1) % NODES);
                }
                let m = &mut self.models[f];
                let expect =
                    issuer == f && m.nodes.get(&t.node_id).is_some_and(|n| n.ticket == Some(k));
                if expect {
                    let n = m.nodes.get_mut(&t.node_id).unwrap();
                    n.ticket = None;
                    n.pre_drain = None;
                    n.enter(S::Gone, now);
                    m.completed.push((t.node_id.clone(), "model_policy".into()));
                }
                let r = self.fleets[f].complete_decommission(&t);
                if !expect {
                    assert!(matches!(r, Err(Error::TicketInvalid(_))), "{r:?}");
                }
                r.is_ok() == expect
            }
            Op::Fail(f, k, text) => {
                let Some((k, issuer, t)) = self.tickets.get(k).cloned() else {
                    return true;
                };
                let expect = issuer == f
                    && self.models[f]
                        .nodes
                        .get(&t.node_id)
                        .is_some_and(|n| n.ticket == Some(k));
                let r = self.fleets[f].fail_decommission(&t, &text);
                if r.is_ok() {
                    let e = self.fleets[f].audit_recent(1).unwrap().pop().unwrap();
                    let err = e.error.unwrap();
                    assert_eq!(e.result, AuditResult::Failed);
                    assert!(!err.is_empty() && err.len() <= 4096);
                    assert!(!err.chars().any(char::is_control), "{err:?}");
                }
                r.is_ok() == expect
            }
            Op::Cancel(f, k) => {
                let Some((k, issuer, t)) = self.tickets.get(k).cloned() else {
                    return true;
                };
                let m = &mut self.models[f];
                let expect =
                    issuer == f && m.nodes.get(&t.node_id).is_some_and(|n| n.ticket == Some(k));
                if expect {
                    let n = m.nodes.get_mut(&t.node_id).unwrap();
                    n.ticket = None;
                    if n.state == S::Drain {
                        n.state = match n.pre_drain {
                            Some(S::Ready) => S::Ready,
                            _ => S::Idle,
                        };
                    }
                    n.pre_drain = None;
                }
                self.fleets[f].cancel_decommission(&t, "model").is_ok() == expect
            }
            Op::Abandon(f, i, text) => {
                let m = &mut self.models[f];
                let expect = match m.nodes.get_mut(&id(i)) {
                    // Only a placeholder: a node with a VM is deleted through the protocol.
                    Some(n)
                        if n.placeholder
                            && matches!(n.state, S::Prov | S::Init)
                            && n.holds.is_empty() =>
                    {
                        n.enter(S::Gone, now);
                        m.abandoned.insert(id(i));
                        true
                    }
                    _ => false,
                };
                self.fleets[f].abandon_provisioning(&id(i), &text).is_ok() == expect
            }
            Op::Tick(f) => {
                let m = &mut self.models[f];
                let p = m.policy;
                for n in m.nodes.values_mut() {
                    if matches!(n.state, S::Prov | S::Init)
                        && p.prov_timeout
                            .is_some_and(|t| now.saturating_sub(n.provisioned) >= t)
                    {
                        n.enter(S::Sick, now);
                    }
                    if n.sync_pending_since.is_some() {
                        if let Some(done) = n.sync_completion(now, &p) {
                            n.sync_pending_since = None;
                            n.sync_done = Some(done);
                        }
                    }
                    n.claims
                        .retain(|_, c| c.ttl.is_none_or(|t| now.saturating_sub(c.created) < t));
                }
                self.fleets[f].tick().is_ok()
            }
            Op::FinishRestore(f) => {
                for n in self.models[f].nodes.values_mut() {
                    if n.sync_pending_since.take().is_some() {
                        n.sync_done = Some(now);
                    }
                }
                self.fleets[f].finish_restore().is_ok()
            }
        }
    }

    fn check(&self, ctx: &dyn Fn() -> String) {
        for (f, (fleet, m)) in self.fleets.iter().zip(&self.models).enumerate() {
            fleet
                .with_nodes(|nodes, policy, lib_now| {
                    assert_eq!(
                        (lib_now.wall.0, lib_now.mono),
                        (self.clock.wall, self.clock.mono),
                        "{}",
                        ctx()
                    );
                    let nodes: Vec<&Node> = nodes.collect();
                    assert_eq!(nodes.len(), m.nodes.len(), "fleet {f} {}", ctx());
                    for (node, (nid, n)) in nodes.into_iter().zip(&m.nodes) {
                        let at = || format!("fleet {f} node {nid}: {}", ctx());
                        assert_eq!(node.id(), nid, "{}", at());
                        assert_eq!(node.state(), lib_state(n.state), "{}", at());
                        assert_eq!(node.container_count(), n.containers.len(), "{}", at());
                        assert_eq!(node.reservation_count(), n.claims.len(), "{}", at());
                        assert_eq!(node.hold_count(), n.holds.len(), "{}", at());
                        assert_eq!(node.cordons().count(), n.cordons.len(), "{}", at());
                        assert_eq!(node.drain().is_some(), n.ticket.is_some(), "{}", at());
                        let v = node_lifecycle::safety::evaluate(node, policy, lib_now);
                        let (reasons, retry) = n.verdict(self.clock.mono, &m.policy);
                        let got: Vec<ReasonCode> = v.blockers.iter().map(|b| b.code).collect();
                        assert_eq!(got, reasons, "{}", at());
                        assert_eq!(v.allowed, reasons.is_empty(), "{}", at());
                        assert_eq!(
                            v.retry_after,
                            retry.map(|w| Timestamp(self.clock.wall.saturating_add(w))),
                            "{}",
                            at()
                        );
                        // Nothing occupied is being deleted.
                        if n.state == S::Drain || n.ticket.is_some() {
                            assert!(
                                n.containers.is_empty()
                                    && n.claims.is_empty()
                                    && n.holds.is_empty(),
                                "{}",
                                at()
                            );
                        }
                    }
                })
                .unwrap();
        }
    }

    /// No node was decommissioned unless a verdict allowed it at begin (or it was abandoned
    /// while starting), and the audit holds its node_decommission entries with decision_by.
    fn check_decommissions(&self, seed: u64) {
        for (f, (fleet, m)) in self.fleets.iter().zip(&self.models).enumerate() {
            for (nid, n) in &m.nodes {
                if n.state != S::Gone {
                    continue;
                }
                let entries = fleet.audit_by_node(nid, usize::MAX).unwrap();
                if m.abandoned.contains(nid) && !m.completed.iter().any(|(c, _)| c == nid) {
                    assert!(
                        entries
                            .iter()
                            .any(|e| e.action == AuditAction::NodeProvision
                                && e.result == AuditResult::Failed),
                        "seed {seed} fleet {f}: {nid} abandoned without its failed entry"
                    );
                    continue;
                }
                let decisions: Vec<&AuditEntry> = entries
                    .iter()
                    .filter(|e| e.action == AuditAction::NodeDecommission)
                    .collect();
                let started = decisions.iter().rposition(|e| {
                    e.result == AuditResult::Success && e.reason.starts_with("decommission_started")
                });
                let completed = decisions.iter().rposition(|e| {
                    e.result == AuditResult::Success && e.reason == "decommission_completed"
                });
                match (started, completed) {
                    (Some(s), Some(c)) if s < c => {
                        assert_eq!(decisions[s].decision_by, "model_policy");
                        assert_eq!(decisions[c].decision_by, "model_policy");
                        assert!(decisions[s].reason.contains("may be decommissioned"));
                    }
                    other => panic!(
                        "seed {seed} fleet {f}: {nid} decommissioned without the protocol's \
                         entries ({other:?}): {decisions:#?}"
                    ),
                }
            }
            assert!(m.completed.iter().all(|(_, by)| by == "model_policy"));
        }
    }
}

fn run(seed: u64, ops: usize) -> (u64, u64) {
    let start = Timestamp(1_767_225_600_000);
    let fleets: Vec<Fleet> = (0..FLEETS)
        .map(|_| {
            Fleet::with_manual_clock(
                FleetOptions {
                    audit_capacity: 1_000_000,
                    ..Default::default()
                },
                start,
            )
            .unwrap()
        })
        .collect();
    let mut w = World {
        fleets,
        models: (0..FLEETS).map(|_| Model::default()).collect(),
        clock: Clock {
            wall: start.0,
            mono: start.0,
        },
        tickets: Vec::new(),
        claims: Vec::new(),
        next_id: 0,
    };
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut outcomes = [0u64; 2];
    for step in 0..ops {
        let op = random_op(&mut rng);
        let agreed = w.step(&op);
        assert!(
            agreed,
            "seed {seed} step {step}: {op:?}: library and model disagree"
        );
        outcomes[0] += 1;
        w.check(&|| format!("seed {seed} step {step} after {op:?}"));
        if w.tickets.len() > 8 {
            w.tickets.remove(0);
        }
        if w.claims.len() > 8 {
            w.claims.remove(0);
        }
    }
    w.check_decommissions(seed);
    for f in &w.fleets {
        let s = f.audit_stats().unwrap();
        assert_eq!(s.retained + s.evicted, s.total_recorded);
        outcomes[1] += s.by_action[&AuditAction::NodeDecommission];
    }
    (outcomes[0], outcomes[1])
}

#[test]
fn the_fleets_agree_with_the_reference_model() {
    let seeds: u64 = std::env::var("NL_MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let ops: usize = std::env::var("NL_MODEL_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let mut total = (0, 0);
    for seed in 1..=seeds {
        let (o, d) = run(seed, ops);
        total.0 += o;
        total.1 += d;
    }
    eprintln!(
        "model: {} operations over {seeds} seeds, {} node_decommission entries checked, wrong decisions: 0",
        total.0, total.1
    );
}
