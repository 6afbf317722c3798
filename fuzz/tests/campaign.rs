//! A quick slice of the fuzz campaign and the committed corpus, under `cargo test`.
//!
//! The test binary refuses (aborts on) any single allocation above 256 MiB, so an
//! allocation sized from a message before its check fails the run, as in `fuzz_decoder`.

use std::alloc::{GlobalAlloc, Layout, System};

use mlagents_fast_core::proto::DecodeLimits;
use mlagents_fast_fuzz::{generate, load_corpus, run_one, Outcome, FUZZ_LIMITS};

struct CappedAllocator;

const MAX_ALLOC: usize = 256 << 20;

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            std::process::abort();
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            std::process::abort();
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOC {
            std::process::abort();
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

#[test]
fn corpus_reproducers_are_errors_under_default_and_fuzz_limits() {
    let corpus = load_corpus();
    assert!(
        corpus.len() >= 8,
        "tests/fuzz_corpus holds the issue's reproducers"
    );
    for (name, bytes) in &corpus {
        for limits in [&FUZZ_LIMITS, &DecodeLimits::DEFAULT] {
            let outcomes = run_one(bytes, &[], limits);
            // limit-trainer-*: messages from a trainer (the host-side decoder); the limits
            // they exceed are the fuzzing ones (the defaults would need megabytes).
            if name.starts_with("limit-trainer-") {
                if limits == &FUZZ_LIMITS {
                    assert_eq!(outcomes.trainer_message, Outcome::Limit, "{name}");
                }
            } else if name.starts_with("crash-") {
                assert_ne!(
                    outcomes.unity_message,
                    Outcome::Ok,
                    "{name} decoded without error"
                );
            }
        }
    }
}

#[test]
fn quick_campaign_finds_nothing() {
    let corpus: Vec<Vec<u8>> = load_corpus().into_iter().map(|(_, bytes)| bytes).collect();
    let mut decoded = 0;
    let mut trainer_decoded = 0;
    let mut trainer_limits = 0;
    for index in 0..20_000 {
        let (data, known) = generate(7, index, &corpus);
        let outcomes = run_one(&data, &known, &FUZZ_LIMITS);
        decoded += usize::from(outcomes.unity_message == Outcome::Ok);
        trainer_decoded += usize::from(outcomes.trainer_message == Outcome::Ok);
        trainer_limits += usize::from(outcomes.trainer_message == Outcome::Limit);
    }
    // The generator reaches both decoders' success paths and the trainer decoder's limits,
    // not only their first checks.
    assert!(decoded > 2_000, "only {decoded} inputs decoded");
    assert!(
        trainer_decoded > 1_000,
        "only {trainer_decoded} trainer messages decoded"
    );
    assert!(
        trainer_limits > 50,
        "only {trainer_limits} trainer messages over a limit"
    );
}
