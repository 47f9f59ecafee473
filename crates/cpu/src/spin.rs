//! A pass with the pool's other workers kept awake: between two parallel ops the pass's own
//! thread does a little serial work (shapes, buffers, the next op's plan), long enough for an
//! idle rayon worker to go to sleep on a futex, so every op waited for a wake-up before its
//! other half started. `perf` of ResNet-18's Guided Backprop put 2.9 % of the samples in the
//! kernel's futex wake and sleep paths (0.8 % with the workers spinning); interleaved rounds on
//! an Intel AVX-512 machine, 2 threads: ResNet-18's forward 17.8 → 17.0 ms, ResNet-50's 42.3 →
//! 39.4, their Guided Grad-CAM 39.7 → 37.9 and 93.9 → 89.6 (docs/PERFORMANCE.md; measured
//! with 2 threads and one caller). As OpenMP runtimes do by default, the workers burn their
//! cores while they wait, for the pass only. With passes from several threads at once nothing
//! spins (the pool idles as rayon has it).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a spinning worker goes on with no job before it leaves the pool to its own idling
/// (within a pass, a long op's other half; a pass that ended without its spinners taken).
const IDLE: Duration = Duration::from_millis(2);

/// Outermost passes running now, from every thread. Spinners run only while there is one:
/// with passes from several threads at once, a worker waiting inside one pass's job could take
/// another pass's spinner off a queue and hold the first pass up until the second ended.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Passes running on this thread (a pass inside a pass runs in place, served by the
    /// outermost one's spinners).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Runs `pass` on a worker of the rayon pool (in place on one, else injected into the pool)
/// with one spinner ([`until`]) per other worker, detached: the pass returns when `pass` does,
/// and its spinners stop as soon as they next look.
pub(crate) fn pass<R: Send>(pass: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| {
        let depth = DEPTH.get();
        DEPTH.set(depth + 1);
        // Unwound however the pass ends (a panic included): this thread's depth, the count of
        // outermost passes, and the spinners' signal.
        struct Leave(usize, Option<Arc<AtomicBool>>);
        impl Drop for Leave {
            fn drop(&mut self) {
                DEPTH.set(self.0);
                if let Some(done) = &self.1 {
                    done.store(true, Ordering::Release);
                    ACTIVE.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        let done = (depth == 0).then(|| {
            ACTIVE.fetch_add(1, Ordering::AcqRel);
            let done = Arc::new(AtomicBool::new(false));
            let home = rayon::current_thread_index();
            for _ in 1..rayon::current_num_threads() {
                let done = Arc::clone(&done);
                rayon::spawn(move || until(&done, home));
            }
            done
        });
        let _leave = Leave(depth, done);
        pass()
    })
}

/// Runs the pool's pending jobs on this worker while `done` is unset and this pass is the only
/// outermost one, and until no job came for [`IDLE`]. Returns at once on the thread `home`: the
/// pass's own, which takes a spinner off its own queue while it waits for a stolen half of a
/// job, and would there only delay the pass that sets `done`.
fn until(done: &AtomicBool, home: Option<usize>) {
    spin(done, home, &ACTIVE)
}

/// [`until`] with the count of outermost passes given.
fn spin(done: &AtomicBool, home: Option<usize>, active: &AtomicUsize) {
    if rayon::current_thread_index() == home {
        return;
    }
    let mut idle_since = Instant::now();
    while !done.load(Ordering::Acquire) && active.load(Ordering::Acquire) == 1 {
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

    /// A spinner returns as soon as its pass is done, at once on the pass's own thread or
    /// beside another outermost pass, and after [`IDLE`] without a job.
    #[test]
    fn a_spinner_stops_when_it_should() {
        let pool = pool(2);
        let (one, two) = (AtomicUsize::new(1), AtomicUsize::new(2));
        let (done, not_done) = (AtomicBool::new(true), AtomicBool::new(false));
        let timed = |f: &(dyn Fn() + Sync)| {
            pool.install(|| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
        };
        assert!(timed(&|| spin(&done, None, &one)) < IDLE, "done");
        let home = || rayon::current_thread_index();
        assert!(timed(&|| spin(&not_done, home(), &one)) < IDLE, "at home");
        assert!(
            timed(&|| spin(&not_done, None, &two)) < IDLE,
            "beside another pass"
        );
        let waited = timed(&|| spin(&not_done, None, &one));
        assert!(
            waited >= IDLE && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
}
