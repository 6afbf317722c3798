//! Process-wide switch for the rayon thread pool.
//!
//! A forked child process inherits the parent's memory but not its threads:
//! if the parent ever started rayon's pool, the child would wait forever on
//! workers that do not exist. Trainers fork environment workers, so the
//! Python package calls [`disable`] in every child after a fork
//! (`os.register_at_fork`), and kernels check [`enabled`] before going parallel.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether kernels may hand work to the rayon pool.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes every kernel run on the calling thread from now on.
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}
