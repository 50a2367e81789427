//! Which CPUs a measurement runs on.
//!
//! Why: the project's machines are 2-vCPU guests on a shared host, and the two vCPUs are not
//! equally fast at a given moment. Timing the interpreter pinned to each in turn gave 0.79
//! and 1.22 ns per instruction one run after the other, and a few seconds later 0.77 and 0.79 (the
//! slow one moves: another tenant's work on the physical core behind it, as far as a guest can
//! tell). A one-thread measurement lands on whichever vCPU the scheduler picks, so the
//! scaling "two threads / one thread" mixed the simulator's scaling with the luck of that
//! pick: 1.47x to 2.34x for the same binary within minutes. Pinning the one-thread runs to
//! each CPU in turn and comparing two threads with their mean measures what the simulator
//! does with the cores it is given.

/// The CPUs the calling thread may run on, in increasing order (empty if unknown, e.g. on
/// systems other than Linux).
pub fn allowed_cpus() -> Vec<usize> {
    imp::allowed_cpus()
}

/// Runs `f` with the calling thread restricted to `cpus` (threads `f` spawns inherit the
/// restriction), then restores the previous set. Returns `None` without running `f` if the
/// restriction cannot be applied (no such CPU, or not Linux).
pub fn on_cpus<T>(cpus: &[usize], f: impl FnOnce() -> T) -> Option<T> {
    let before = imp::get()?;
    imp::set(cpus).then_some(())?;
    let out = f();
    imp::restore(&before);
    Some(out)
}

#[cfg(target_os = "linux")]
mod imp {
    /// The calling thread's CPU set.
    pub fn get() -> Option<libc::cpu_set_t> {
        // SAFETY: `cpu_set_t` is a plain bit array; all-zero is a valid (empty) value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; the size is that of `set`, which the kernel
        // fills in.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        (rc == 0).then_some(set)
    }

    pub fn allowed_cpus() -> Vec<usize> {
        let Some(set) = get() else {
            return Vec::new();
        };
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `i` is below CPU_SETSIZE, the bit count of `set`.
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect()
    }

    pub fn set(cpus: &[usize]) -> bool {
        if cpus.is_empty() || cpus.iter().any(|&c| c >= libc::CPU_SETSIZE as usize) {
            return false;
        }
        // SAFETY: as in `get`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            // SAFETY: `c` is below CPU_SETSIZE (checked above).
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: pid 0 is the calling thread; `set` is a valid CPU set of the given size.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
    }

    pub fn restore(set: &libc::cpu_set_t) {
        // SAFETY: as in `set`. Restoring a set the kernel gave us cannot fail in a way that
        // matters to a measurement; the result is ignored.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn get() -> Option<()> {
        None
    }
    pub fn allowed_cpus() -> Vec<usize> {
        Vec::new()
    }
    pub fn set(_: &[usize]) -> bool {
        false
    }
    pub fn restore(_: &()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_restores() {
        let all = allowed_cpus();
        if cfg!(target_os = "linux") {
            assert!(!all.is_empty(), "Linux reports the allowed CPUs");
        }
        let Some(&first) = all.first() else {
            return;
        };
        let inside = on_cpus(&[first], allowed_cpus);
        assert_eq!(inside, Some(vec![first]));
        assert_eq!(allowed_cpus(), all, "the previous set is back");
        // Threads spawned inside inherit the set.
        let child = on_cpus(&[first], || {
            std::thread::spawn(allowed_cpus).join().unwrap_or_default()
        });
        assert_eq!(child, Some(vec![first]));
        // A CPU that cannot exist is refused, and nothing runs.
        assert_eq!(on_cpus(&[usize::MAX], || 1), None);
        assert_eq!(on_cpus(&[], || 1), None);
    }
}
