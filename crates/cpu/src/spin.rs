//! A pass with the pool's other workers kept awake: between two parallel ops the pass's own
//! thread does a little serial work (shapes, buffers, the next op's plan), long enough for an
//! idle rayon worker to go to sleep on a futex, so every op waited for a wake-up before its
//! other half started. `perf` of ResNet-18's Guided Backprop put 2.9 % of the samples in the
//! kernel's futex wake and sleep paths (0.8 % with the workers spinning); interleaved rounds on
//! an Intel AVX-512 machine, 2 threads: ResNet-18's forward 17.8 → 17.0 ms, ResNet-50's 42.3 →
//! 39.4, their Guided Grad-CAM 39.7 → 37.9 and 93.9 → 89.6 (docs/PERFORMANCE.md). As OpenMP
//! runtimes do by default, the workers burn their cores while they wait, for the pass only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a spinning worker goes on with no job before it leaves the pool to its own idling.
/// It bounds the delay of the one case where spinning could hold work up: a spinner that a
/// worker took while it waited for part of a job (more than two threads, or passes from several
/// threads at once) sits above that job on its stack until it returns.
const IDLE: Duration = Duration::from_millis(2);

/// Runs `pass` in a scope of the rayon pool (on the calling worker, or injected into the pool
/// from another thread) with one spinner ([`until`]) per other worker, stopped when the pass
/// returns.
pub(crate) fn pass<R: Send>(pass: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    rayon::scope(|s| {
        let home = rayon::current_thread_index();
        for _ in 1..rayon::current_num_threads() {
            let done = &done;
            s.spawn(move |_| until(done, home));
        }
        // Set however the pass ends (a panic included), so that the scope's wait ends too.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _done = Done(&done);
        pass()
    })
}

/// Runs the pool's pending jobs on this worker until `done` is set, or until no job came for
/// [`IDLE`]. Returns at once on the thread `home`: the pass's own, which takes a spinner off
/// its own queue while it waits for a stolen half of a job, and would there only delay the pass
/// that sets `done`.
fn until(done: &AtomicBool, home: Option<usize>) {
    if rayon::current_thread_index() == home {
        return;
    }
    let mut idle_since = Instant::now();
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle_since = Instant::now(),
            Some(rayon::Yield::Idle) if idle_since.elapsed() < IDLE => std::hint::spin_loop(),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// A pass of parallel ops, some with a nested pass, gives the sums it should on pools of
    /// one to four workers, called from four threads at once (as the test harness calls the
    /// backend), and every call returns.
    #[test]
    fn passes_from_many_threads_finish_with_their_results() {
        for threads in 1..=4 {
            let pool = pool(threads);
            std::thread::scope(|s| {
                for caller in 0..4u64 {
                    let pool = &pool;
                    s.spawn(move || {
                        for round in 0..20u64 {
                            let got = pool.install(|| {
                                pass(|| {
                                    let mut total = 0u64;
                                    for op in 0..8u64 {
                                        let n = 1000 + op * 37 + caller;
                                        total +=
                                            (0..n).into_par_iter().map(|v| v ^ round).sum::<u64>();
                                        if op % 3 == 0 {
                                            total += pass(|| (0..n).into_par_iter().sum::<u64>());
                                        }
                                    }
                                    total
                                })
                            });
                            let mut want = 0u64;
                            for op in 0..8u64 {
                                let n = 1000 + op * 37 + caller;
                                want += (0..n).map(|v| v ^ round).sum::<u64>();
                                if op % 3 == 0 {
                                    want += (0..n).sum::<u64>();
                                }
                            }
                            assert_eq!(got, want, "{threads} threads, caller {caller}");
                        }
                    });
                }
            });
        }
    }

    /// A pass that panics: the panic reaches the caller, and the spinners stop.
    #[test]
    fn a_panicking_pass_stops_its_spinners() {
        let pool = pool(3);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| pass(|| -> u32 { panic!("in the pass") }))
        }));
        assert!(caught.is_err());
        // The pool still runs passes.
        assert_eq!(
            pool.install(|| pass(|| (0..100u32).into_par_iter().sum::<u32>())),
            4950
        );
    }

    /// A spinner returns as soon as its pass is done, at once on the pass's own thread, and
    /// after [`IDLE`] without a job.
    #[test]
    fn a_spinner_stops_when_its_pass_is_done_and_not_at_home() {
        let pool = pool(2);
        let done = AtomicBool::new(true);
        pool.install(|| until(&done, Some(1)));
        let started = Instant::now();
        let not_done = AtomicBool::new(false);
        pool.install(|| until(&not_done, rayon::current_thread_index()));
        assert!(started.elapsed() < IDLE, "returned at once at home");
        // Away from home, with no job and its pass not done: back after IDLE.
        let started = Instant::now();
        pool.install(|| until(&not_done, None));
        let waited = started.elapsed();
        assert!(
            waited >= IDLE && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
}
