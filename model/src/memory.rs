//! Giving freed memory back to the operating system.
//!
//! glibc's malloc keeps what a thread frees in that thread's arena for reuse. A refresh or a new
//! engine's warm-up allocates hundreds of megabytes on the runtime's and the watcher's threads
//! and frees them; without a trim the server over the large organisation held 1.53–1.76 GB after
//! five posted deployments, each arena keeping its own high-water mark (0.97 GB with two arenas,
//! 1.24–1.41 GB with a trim after each engine swap, which is where the watcher calls this).

/// Returns the free memory of every arena to the operating system (a no-op elsewhere than glibc).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers; it walks glibc's own free lists under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
