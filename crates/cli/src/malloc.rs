//! The allocator's thresholds, set once at start-up. A forward pass allocates and frees
//! activations of megabytes each, many times over; glibc serves blocks above 128 KiB (rising to
//! the largest freed, at most 32 MiB) by `mmap` and returns the heap's free top to the system
//! beyond twice that, so every pass pays the page faults of fresh zeroed pages again. Keeping
//! blocks up to 32 MiB on the heap and the freed memory in the process reuses them instead:
//! resnet50 Guided Grad-CAM on the CPU ran 10–30 % faster with these settings (measured with
//! `gradcam bench`, docs/PERFORMANCE.md). Only the CLI does this; a program embedding the
//! library keeps its own allocator settings.

/// Raises glibc's `mmap` and trim thresholds (no effect on other C libraries).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes two allocator parameters; it is called before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
