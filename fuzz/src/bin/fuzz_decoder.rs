//! `cargo run --release -p mlagents-fast-fuzz --bin fuzz_decoder -- [options]`
//!
//! Runs a fuzz campaign over the decoder entry points (see the crate documentation) and
//! prints inputs/s and the outcome counts. Findings stop the campaign with exit status 1
//! after saving the input under `--artifacts`:
//!
//! - a panic (caught; the panic message is printed);
//! - one allocation larger than `--max-alloc` bytes: the decoder sized something from the
//!   message before checking it against the (small) fuzzing limits;
//! - one input running longer than `--timeout-ms`.
//!
//! Options: `--iterations N` (1000000), `--seed S` (0), `--start I` (0), `--artifacts DIR`
//! (fuzz/artifacts), `--max-alloc BYTES` (268435456), `--timeout-ms MS` (5000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mlagents_fast_fuzz::{generate, load_corpus, run_one, FUZZ_LIMITS};

/// The input being decoded, for the allocator and the watchdog to save.
static CURRENT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static CURRENT_LEN: AtomicUsize = AtomicUsize::new(0);
/// Milliseconds since START at which the current input began (0: none running).
static INPUT_STARTED_MS: AtomicU64 = AtomicU64::new(0);
static MAX_ALLOC: AtomicUsize = AtomicUsize::new(256 << 20);
static ARTIFACTS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn save_current(kind: &str) -> Option<PathBuf> {
    let ptr = CURRENT_PTR.load(Ordering::SeqCst);
    let len = CURRENT_LEN.load(Ordering::SeqCst);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the main loop publishes a pointer to the input it is decoding and keeps the
    // input alive until it has cleared the pointer.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let folder = ARTIFACTS.get()?;
    std::fs::create_dir_all(folder).ok()?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = folder.join(format!("{kind}-{hash:016x}.bin"));
    std::fs::write(&path, bytes).ok()?;
    Some(path)
}

/// The system allocator, refusing (as a finding) any single allocation above MAX_ALLOC.
struct CappedAllocator;

impl CappedAllocator {
    fn check(size: usize) {
        if size > MAX_ALLOC.load(Ordering::Relaxed) {
            // Keep later allocations (saving the input, printing) from tripping again.
            MAX_ALLOC.store(usize::MAX, Ordering::SeqCst);
            let saved = save_current("alloc");
            eprintln!(
                "FINDING: one allocation of {size} bytes while decoding; input saved to {saved:?}"
            );
            std::process::exit(1);
        }
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

struct Options {
    iterations: u64,
    seed: u64,
    start: u64,
    artifacts: PathBuf,
    timeout_ms: u64,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        iterations: 1_000_000,
        seed: 0,
        start: 0,
        artifacts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts"),
        timeout_ms: 5000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |text: String| text.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--iterations" => options.iterations = number(value()?)?,
            "--seed" => options.seed = number(value()?)?,
            "--start" => options.start = number(value()?)?,
            "--artifacts" => options.artifacts = PathBuf::from(value()?),
            "--max-alloc" => MAX_ALLOC.store(number(value()?)? as usize, Ordering::SeqCst),
            "--timeout-ms" => options.timeout_ms = number(value()?)?,
            other => {
                return Err(format!(
                    "unknown option {other} (see the file's documentation)"
                ))
            }
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("fuzz_decoder: {message}");
            std::process::exit(2);
        }
    };
    let _ = ARTIFACTS.set(options.artifacts.clone());
    let start = *START.get_or_init(Instant::now);
    let timeout_ms = options.timeout_ms;
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(50));
        let began = INPUT_STARTED_MS.load(Ordering::SeqCst);
        let now = start.elapsed().as_millis() as u64;
        if began != 0 && now.saturating_sub(began) > timeout_ms {
            let saved = save_current("hang");
            eprintln!("FINDING: one input ran over {timeout_ms} ms; saved to {saved:?}");
            std::process::exit(1);
        }
    });
    let corpus: Vec<Vec<u8>> = load_corpus().into_iter().map(|(_, bytes)| bytes).collect();
    let mut outcomes = BTreeMap::new();
    let mut trainer_outcomes = BTreeMap::new();
    let mut panics = 0u64;
    let began = Instant::now();
    for index in options.start..options.start + options.iterations {
        let (data, known) = generate(options.seed, index, &corpus);
        CURRENT_LEN.store(data.len(), Ordering::SeqCst);
        CURRENT_PTR.store(data.as_ptr().cast_mut(), Ordering::SeqCst);
        INPUT_STARTED_MS.store(start.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
        let result = std::panic::catch_unwind(|| run_one(&data, &known, &FUZZ_LIMITS));
        INPUT_STARTED_MS.store(0, Ordering::SeqCst);
        match result {
            Ok(outcome) => {
                *outcomes
                    .entry(format!("{:?}", outcome.unity_message))
                    .or_insert(0u64) += 1;
                *trainer_outcomes
                    .entry(format!("{:?}", outcome.trainer_message))
                    .or_insert(0u64) += 1;
            }
            Err(_) => {
                panics += 1;
                let saved = save_current("panic");
                eprintln!(
                    "FINDING: panic on input {index} (seed {}); saved to {saved:?}",
                    options.seed
                );
            }
        }
        CURRENT_PTR.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "{} inputs in {seconds:.1} s ({:.0} inputs/s), seed {}, corpus {} files, panics {panics}",
        options.iterations,
        options.iterations as f64 / seconds,
        options.seed,
        corpus.len()
    );
    println!("message decoder outcomes: {outcomes:?}");
    println!("trainer message decoder outcomes: {trainer_outcomes:?}");
    if panics > 0 {
        std::process::exit(1);
    }
}
