//! Fleet handles: generation-checked slots, so that a call on a freed fleet is reported instead
//! of touching freed memory, without a global lock or a hash lookup on every call.
//!
//! An `nl_fleet *` is never dereferenced: it is a token holding a slot index and the slot's
//! generation at creation. A call enters the slot with one compare-and-swap (which also checks
//! the generation) and leaves it with one atomic decrement; `nl_fleet_free` marks the slot
//! closing, waits for the calls inside to leave, drops the fleet and bumps the generation, so
//! every later use of the old token fails cleanly. Freed slots are reused oldest first, so a
//! stale token would have to survive 2^32 reuses of its slot (2^15 on 32-bit targets) to match
//! again.

use super::boundary::{nl_result, FfiError, FfiResult};
use crate::fleet::Fleet;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// A fleet of nodes: the registry, its audit ring, policy and clock.
///
/// Thread-safety: fully thread-safe. One `nl_fleet` may be used from any number of threads at
/// once; every call is atomic. The pointer is an opaque token that is never dereferenced: a
/// call on a freed fleet returns `NL_RESULT_USE_AFTER_FREE` instead of touching memory, and
/// `nl_fleet_free` while other threads are inside calls is safe (it waits for them).
pub struct nl_fleet {
    _opaque: [u8; 0],
}

const INDEX_BITS: u32 = 16;
const SEGMENT_LEN: usize = 256;
const SEGMENTS: usize = (1 << INDEX_BITS) / SEGMENT_LEN;
/// Bits of the generation carried in a token.
const GEN_BITS: u32 = if usize::BITS >= 64 {
    32
} else {
    usize::BITS - INDEX_BITS - 1
};
const GEN_MASK: u64 = (1u64 << GEN_BITS) - 1;
/// Slot state: generation in the high 32 bits, a closing flag, and the calls inside.
const CLOSING: u64 = 1 << 31;
const ACTIVE: u64 = CLOSING - 1;

struct Slot {
    state: AtomicU64,
    fleet: AtomicPtr<Fleet>,
}

type Segment = [Slot; SEGMENT_LEN];

static TABLE: [AtomicPtr<Segment>; SEGMENTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SEGMENTS];
static NEVER_USED: AtomicU32 = AtomicU32::new(0);
static FREE_SLOTS: parking_lot::Mutex<VecDeque<u32>> = parking_lot::Mutex::new(VecDeque::new());

fn slot(index: usize) -> Option<&'static Slot> {
    let seg = TABLE.get(index / SEGMENT_LEN)?.load(Ordering::Acquire);
    if seg.is_null() {
        return None;
    }
    // SAFETY: segments are allocated once and never freed.
    Some(unsafe { &(*seg)[index % SEGMENT_LEN] })
}

/// The slot `index`, allocating its segment the first time.
fn slot_or_alloc(index: usize) -> &'static Slot {
    let cell = &TABLE[index / SEGMENT_LEN];
    if cell.load(Ordering::Acquire).is_null() {
        let fresh: Box<Segment> = Box::new(std::array::from_fn(|_| Slot {
            state: AtomicU64::new(1 << 32),
            fleet: AtomicPtr::new(std::ptr::null_mut()),
        }));
        let fresh = Box::into_raw(fresh);
        if cell
            .compare_exchange(
                std::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: ours, never published.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }
    slot(index).expect("allocated above")
}

fn token(index: usize, generation: u64) -> *mut nl_fleet {
    (((generation & GEN_MASK) as usize) << INDEX_BITS | index) as *mut nl_fleet
}

fn use_after_free() -> FfiError {
    FfiError::new(
        nl_result::UseAfterFree,
        "fleet handle was already freed or did not come from nl_fleet_new",
    )
}

/// Registers a fleet and returns its handle.
pub fn insert(fleet: Fleet) -> FfiResult<*mut nl_fleet> {
    let index = match FREE_SLOTS.lock().pop_front() {
        Some(i) => i as usize,
        None => {
            let i = NEVER_USED.fetch_add(1, Ordering::Relaxed) as usize;
            if i >= SEGMENTS * SEGMENT_LEN {
                NEVER_USED.fetch_sub(1, Ordering::Relaxed);
                return Err(FfiError::invalid(format!(
                    "too many live fleets (at most {})",
                    SEGMENTS * SEGMENT_LEN
                )));
            }
            i
        }
    };
    let s = slot_or_alloc(index);
    s.fleet
        .store(Box::into_raw(Box::new(fleet)), Ordering::Release);
    let generation = s.state.load(Ordering::Acquire) >> 32;
    Ok(token(index, generation))
}

/// A call inside a fleet; leaving drops it.
pub struct Entered {
    slot: &'static Slot,
    fleet: &'static Fleet,
}

impl std::ops::Deref for Entered {
    type Target = Fleet;
    fn deref(&self) -> &Fleet {
        self.fleet
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.slot.state.fetch_sub(1, Ordering::Release);
    }
}

fn decode(handle: *const nl_fleet) -> FfiResult<(&'static Slot, u64)> {
    if handle.is_null() {
        return Err(FfiError::null("fleet"));
    }
    let t = handle as usize;
    let index = t & ((1 << INDEX_BITS) - 1);
    let generation = (t >> INDEX_BITS) as u64;
    Ok((slot(index).ok_or_else(use_after_free)?, generation))
}

/// Enters the fleet behind a handle for the length of a call.
pub fn enter(handle: *const nl_fleet) -> FfiResult<Entered> {
    let (slot, generation) = decode(handle)?;
    let mut s = slot.state.load(Ordering::Acquire);
    loop {
        if (s >> 32) & GEN_MASK != generation || s & CLOSING != 0 || s & ACTIVE == ACTIVE {
            return Err(use_after_free());
        }
        match slot
            .state
            .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    let fleet = slot.fleet.load(Ordering::Acquire);
    // SAFETY: the slot's generation matched and the call is counted in, so the fleet cannot be
    // dropped until this call leaves.
    Ok(Entered {
        slot,
        fleet: unsafe { &*fleet },
    })
}

/// Frees the fleet behind a handle, waiting for the calls inside it. A handle already freed is
/// reported, not touched.
pub fn remove(handle: *mut nl_fleet) -> FfiResult<()> {
    let (slot, generation) = decode(handle)?;
    let mut s = slot.state.load(Ordering::Acquire);
    loop {
        if (s >> 32) & GEN_MASK != generation || s & CLOSING != 0 {
            return Err(use_after_free());
        }
        match slot
            .state
            .compare_exchange_weak(s, s | CLOSING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    while slot.state.load(Ordering::Acquire) & ACTIVE != 0 {
        std::thread::yield_now();
    }
    let fleet = slot.fleet.swap(std::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: stored by `insert`, taken once under the closing flag with no call inside.
    drop(unsafe { Box::from_raw(fleet) });
    // The next generation; one that masks to 0 in a token is skipped (a token is never NULL).
    let mut next = ((s >> 32) + 1) & 0xFFFF_FFFF;
    while next & GEN_MASK == 0 {
        next = (next + 1) & 0xFFFF_FFFF;
    }
    slot.state.store(next << 32, Ordering::Release);
    let index = (handle as usize) & ((1 << INDEX_BITS) - 1);
    FREE_SLOTS.lock().push_back(index as u32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::FleetOptions;

    #[test]
    fn a_freed_handle_is_detected_and_slots_are_reused_with_a_new_generation() {
        let a = insert(Fleet::new(FleetOptions::default()).unwrap()).unwrap();
        assert!(enter(a).is_ok());
        remove(a).unwrap();
        assert_eq!(enter(a).err().unwrap().code, nl_result::UseAfterFree);
        assert_eq!(remove(a).err().unwrap().code, nl_result::UseAfterFree);
        let b = insert(Fleet::new(FleetOptions::default()).unwrap()).unwrap();
        assert_ne!(a, b);
        assert_eq!(enter(a).err().unwrap().code, nl_result::UseAfterFree);
        assert!(enter(b).is_ok());
        remove(b).unwrap();
        assert_eq!(
            enter(std::ptr::null()).err().unwrap().code,
            nl_result::NullArgument
        );
        // A token no slot ever had.
        let bogus = ((12345usize) << INDEX_BITS | 60000) as *const nl_fleet;
        assert_eq!(enter(bogus).err().unwrap().code, nl_result::UseAfterFree);
    }

    #[test]
    fn free_waits_for_calls_inside() {
        let h = insert(Fleet::new(FleetOptions::default()).unwrap()).unwrap() as usize;
        let inside = enter(h as *const nl_fleet).unwrap();
        let freer = std::thread::spawn(move || remove(h as *mut nl_fleet));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!freer.is_finished(), "free must wait for the call inside");
        assert_eq!(inside.len(), 0);
        drop(inside);
        freer.join().unwrap().unwrap();
    }
}
