//! W3C ids (128-bit trace, 64-bit span) from a fast per-thread generator.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Bumped in a forked child so that every thread's generator reseeds: a child must not repeat
/// the ids its parent draws next.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RNG: RefCell<(u64, SmallRng)> = RefCell::new((0, SmallRng::from_os_rng()));
}

fn with_rng<T>(f: impl FnOnce(&mut SmallRng) -> T) -> T {
    RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        let gen = GENERATION.load(Ordering::Relaxed);
        if slot.0 != gen {
            *slot = (gen, SmallRng::from_os_rng());
        }
        f(&mut slot.1)
    })
}

pub fn trace_id() -> u128 {
    with_rng(|r| loop {
        let id: u128 = r.random();
        if id != 0 {
            return id;
        }
    })
}

pub fn span_id() -> u64 {
    with_rng(|r| loop {
        let id: u64 = r.random();
        if id != 0 {
            return id;
        }
    })
}

pub fn reseed() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_nonzero_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(span_id()));
        }
        assert_ne!(trace_id(), trace_id());
    }

    #[test]
    fn reseed_changes_the_sequence() {
        reseed();
        let a = span_id();
        reseed();
        let b = span_id();
        assert_ne!(a, b);
    }
}
