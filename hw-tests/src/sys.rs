//! The one door to the kernel: `bpf(2)` and `close(2)`.
//!
//! Every system call this crate makes goes through [`syscall`]. A test can replace that
//! function for the current thread with [`override_syscall`] (the same idea as aya's
//! `sys/fake.rs`), so the decoding of logs, errnos and attribute layouts is unit-tested
//! without root and without a kernel. `close` goes through the same door so that fake file
//! descriptors handed out by a fake are never closed for real.
//!
//! The UAPI structures come from `aya_obj::generated` (bindgen output of the kernel headers);
//! this crate writes none by hand.

use std::cell::RefCell;
use std::os::fd::RawFd;

use aya_obj::generated::{bpf_attr, bpf_cmd};

/// One system call, with its arguments.
pub enum Syscall<'a> {
    /// `bpf(cmd, attr, sizeof(attr))`.
    Bpf {
        /// Command.
        cmd: bpf_cmd,
        /// Attribute union; the kernel reads and writes it.
        attr: &'a mut bpf_attr,
    },
    /// `close(fd)`.
    Close {
        /// Descriptor to close.
        fd: RawFd,
    },
}

impl std::fmt::Debug for Syscall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Syscall::Bpf { cmd, .. } => write!(f, "bpf({})", cmd_name(*cmd)),
            Syscall::Close { fd } => write!(f, "close({fd})"),
        }
    }
}

/// Raw outcome of a system call: the non-negative return value, or the errno.
pub type SysResult = Result<i64, i32>;

type Fake = Box<dyn FnMut(Syscall<'_>) -> SysResult>;

thread_local! {
    /// The replacement installed by [`override_syscall`] on this thread, if any.
    static OVERRIDE: RefCell<Option<Fake>> = const { RefCell::new(None) };
}

/// Restores the previous syscall layer of this thread when dropped.
#[must_use = "the override is removed when the guard is dropped"]
pub struct OverrideGuard {
    previous: Option<Fake>,
}

impl std::fmt::Debug for OverrideGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverrideGuard").finish_non_exhaustive()
    }
}

impl Drop for OverrideGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        OVERRIDE.with(|o| *o.borrow_mut() = previous);
    }
}

/// Replaces the system calls of the current thread by `fake` until the guard is dropped.
///
/// Meant for tests: the fake sees every `bpf()` and `close()` this crate would make and
/// decides the result (and may write into the attribute, e.g. a verifier log, see [`fake`]).
pub fn override_syscall(fake: impl FnMut(Syscall<'_>) -> SysResult + 'static) -> OverrideGuard {
    let previous = OVERRIDE.with(|o| o.borrow_mut().replace(Box::new(fake)));
    OverrideGuard { previous }
}

/// Performs one system call, through the thread's override if one is installed.
pub fn syscall(call: Syscall<'_>) -> SysResult {
    // Take the fake out while it runs so that a fake which itself calls `syscall` does not
    // hit a RefCell double borrow (it then reaches the real kernel).
    let fake = OVERRIDE.with(|o| o.borrow_mut().take());
    match fake {
        Some(mut f) => {
            let r = f(call);
            OVERRIDE.with(|o| {
                let mut slot = o.borrow_mut();
                if slot.is_none() {
                    *slot = Some(f);
                }
            });
            r
        }
        None => real_syscall(call),
    }
}

fn real_syscall(call: Syscall<'_>) -> SysResult {
    let ret: i64 = match call {
        Syscall::Bpf { cmd, attr } => {
            // SAFETY: `attr` is a valid, exclusively borrowed bpf_attr of the size we pass;
            // the kernel reads at most that many bytes and writes only inside it and into
            // buffers whose pointers and sizes the caller put in it.
            unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    cmd as libc::c_int,
                    attr as *mut bpf_attr,
                    std::mem::size_of::<bpf_attr>(),
                )
            }
        }
        // SAFETY: closing an fd we own; no memory is involved.
        Syscall::Close { fd } => i64::from(unsafe { libc::close(fd) }),
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret)
    }
}

/// A zeroed attribute union: the kernel requires every unused byte to be zero.
pub fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a C union of integer fields; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `bpf(cmd, attr)` with the errno turned into a [`SyscallError`].
pub fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<i64, SyscallError> {
    syscall(Syscall::Bpf { cmd, attr }).map_err(|errno| SyscallError {
        call: cmd_name(cmd),
        errno,
    })
}

/// Closes a descriptor through the syscall layer; errors are ignored (nothing can be done).
pub fn close(fd: RawFd) {
    let _ = syscall(Syscall::Close { fd });
}

/// A failed system call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call} failed with {} ({errno}): {}", errno_name(*errno), std::io::Error::from_raw_os_error(*errno))]
pub struct SyscallError {
    /// Which call (`BPF_MAP_CREATE`, ...).
    pub call: &'static str,
    /// The errno the kernel returned.
    pub errno: i32,
}

/// The UAPI name of a bpf command, for messages.
pub fn cmd_name(cmd: bpf_cmd) -> &'static str {
    match cmd {
        bpf_cmd::BPF_MAP_CREATE => "BPF_MAP_CREATE",
        bpf_cmd::BPF_MAP_LOOKUP_ELEM => "BPF_MAP_LOOKUP_ELEM",
        bpf_cmd::BPF_MAP_UPDATE_ELEM => "BPF_MAP_UPDATE_ELEM",
        bpf_cmd::BPF_MAP_DELETE_ELEM => "BPF_MAP_DELETE_ELEM",
        bpf_cmd::BPF_MAP_GET_NEXT_KEY => "BPF_MAP_GET_NEXT_KEY",
        bpf_cmd::BPF_PROG_LOAD => "BPF_PROG_LOAD",
        bpf_cmd::BPF_PROG_TEST_RUN => "BPF_PROG_TEST_RUN",
        bpf_cmd::BPF_OBJ_GET_INFO_BY_FD => "BPF_OBJ_GET_INFO_BY_FD",
        bpf_cmd::BPF_MAP_FREEZE => "BPF_MAP_FREEZE",
        _ => "bpf",
    }
}

/// Symbolic name of the errnos the bpf syscall returns (`EACCES`, `EINVAL`, ...).
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::ENOTSUP => "ENOTSUP",
        524 => "ENOTSUPP",
        _ => "errno",
    }
}

/// Helpers for fakes: write what the kernel would write into user buffers.
pub mod fake {
    use aya_obj::generated::bpf_attr;

    /// Writes `text` (NUL-terminated, truncated to fit) into the verifier log buffer of a
    /// `BPF_PROG_LOAD` attribute, and sets `log_true_size` to the full size as 6.4+ kernels do.
    /// Returns whether the text fit.
    ///
    /// # Safety
    /// `attr` must be a `BPF_PROG_LOAD` attribute whose `log_buf`/`log_size` describe a
    /// writable buffer (as built by this crate's loader), or have `log_buf == 0`.
    pub unsafe fn write_log(attr: &mut bpf_attr, text: &str) -> bool {
        // SAFETY: the caller guarantees this is the BPF_PROG_LOAD member.
        let load = unsafe { &mut attr.__bindgen_anon_3 };
        let needed = text.len() + 1;
        load.log_true_size = u32::try_from(needed).unwrap_or(u32::MAX);
        if load.log_buf == 0 || load.log_size == 0 {
            return false;
        }
        let cap = load.log_size as usize;
        let n = text.len().min(cap - 1);
        // SAFETY: the caller guarantees log_buf points to log_size writable bytes; n < cap.
        unsafe {
            let dst = load.log_buf as *mut u8;
            std::ptr::copy_nonoverlapping(text.as_ptr(), dst, n);
            *dst.add(n) = 0;
        }
        needed <= cap
    }

    /// Copies `bytes` to the user pointer `ptr` (at most `cap` bytes); returns bytes written.
    ///
    /// # Safety
    /// `ptr` must point to `cap` writable bytes (a buffer pointer this crate put in an attr).
    pub unsafe fn write_user(ptr: u64, cap: usize, bytes: &[u8]) -> usize {
        let n = bytes.len().min(cap);
        if ptr != 0 {
            // SAFETY: guaranteed by the caller.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr as *mut u8, n) };
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_is_per_thread_and_restored() {
        {
            let _g = override_syscall(|call| match call {
                Syscall::Bpf { .. } => Err(libc::EPERM),
                Syscall::Close { .. } => Ok(0),
            });
            let mut attr = zeroed_attr();
            let e = bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr).expect_err("must fail");
            assert_eq!(e.errno, libc::EPERM);
            assert_eq!(e.call, "BPF_MAP_CREATE");
            assert!(e.to_string().contains("EPERM"), "{e}");
        }
        assert!(OVERRIDE.with(|o| o.borrow().is_none()));
    }

    #[test]
    fn nested_overrides_restore_the_outer_one() {
        let _outer = override_syscall(|_| Ok(1));
        {
            let _inner = override_syscall(|_| Ok(2));
            assert_eq!(syscall(Syscall::Close { fd: -1 }), Ok(2));
        }
        assert_eq!(syscall(Syscall::Close { fd: -1 }), Ok(1));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(errno_name(22), "EINVAL");
        assert_eq!(errno_name(28), "ENOSPC");
    }
}
