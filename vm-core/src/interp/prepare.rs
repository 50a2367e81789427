//! Preparing runs: what a run sets up before it executes and what the Vm resets between
//! runs, kept apart from `Vm::execute` so that the per-run path stays short to read.
//!
//! Why this is its own concern: for short programs the fixed cost around the handler chain
//! is a large part of a run (a 25-instruction parser executes in less time than a naive
//! setup takes). So everything here is decided as rarely as possible: a full setup of the
//! input ([`Vm::setup_input`]) only when its length changes or a packet may have moved
//! (publishing a [`FastInput`] for the runs after it), the full reset ([`Vm::reset_state`])
//! only after a run that was not clean or a change between runs, and otherwise only what a
//! clean run can have left: frame 0's stack tail ([`Vm::zero_frame0`]) and, for programs
//! that may read a register before writing it, the registers ([`Vm::zero_registers`]).

use super::context::CtxKind;
use super::exec;
use super::fault::{BadInput, RunError};
use super::memory::{CTX, MAX_FRAMES, MEM, STACK_SIZE, STACK0, Window, vaddr};
use super::{Vm, env, op};

impl Vm {
    /// Sets up the input of a packet program, or of a `mem` program whose input length
    /// changed (the window moves).
    #[inline(never)]
    pub(super) fn setup_input(&mut self, input: &[u8]) -> Result<(u64, u64), RunError> {
        match self.ctx.kind {
            CtxKind::Mem => {
                let r1 = if input.is_empty() { 0 } else { vaddr(MEM, 0) };
                let r2 = input.len() as u64;
                // The window stays as it is until the next full setup or `add_program`.
                if self.borrow_input {
                    let p = input.as_ptr().cast_mut();
                    // SAFETY: as for the in-place case in `execute`: read-only, used only
                    // during this run, republished by every run.
                    let w = unsafe { Window::part(p, input.len(), 0, input.len()) };
                    self.mem.set(MEM, w, Window::EMPTY);
                    self.borrow_len = input.len();
                    self.mem_r1 = r1;
                } else {
                    self.input.clear();
                    self.input.extend_from_slice(input);
                    let w = Window::whole(&mut self.input);
                    self.mem.set(MEM, w, w);
                    self.fast = FastInput {
                        len: input.len(),
                        dst: self.input.as_mut_ptr(),
                        r1,
                        r2,
                    };
                }
                self.reset = RESET_ALL;
                Ok((r1, r2))
            }
            _ => {
                self.setup_packet(input)?;
                if self.mem.changed() {
                    // SAFETY: as in `execute`: no other reference to the Machine is live.
                    let m = unsafe { self.machine.get() };
                    m.view = self.mem.view();
                    m.set_xdp(self.ctx.xdp_words(&self.pkt));
                }
                let (r1, r2) = (vaddr(CTX, 0), 0);
                if self.ctx.kind == CtxKind::Xdp {
                    // Until a run that is not clean (or a change between runs, see
                    // `reset_all`), the layout, the `xdp_md` image (read-only to the program;
                    // no XDP helper writes it) and the region table stay as this setup left
                    // them; a same-sized input needs its bytes copied only. (An skb context
                    // has fields the program may write, so tc and socket-filter programs are
                    // set up in full every run.)
                    self.fast = FastInput {
                        len: input.len(),
                        dst: self.pkt.data_ptr(),
                        r1,
                        r2,
                    };
                }
                Ok((r1, r2))
            }
        }
    }

    /// Brings the Vm back to the state every run starts from, after a run that was not
    /// clean or a change between runs: stack bytes re-zeroed, helper output cleared, map
    /// windows and the region table's view refreshed, the Machine's frame state reset.
    #[inline(never)]
    pub(super) fn reset_state(&mut self) {
        if self.stack_dirty || self.stack_reset != RESET_NONE {
            self.zero_stacks();
        }
        self.stack_dirty = false;
        self.dirty_frames = 0;
        if !self.st.printk.is_empty() {
            self.st.printk.clear();
        }
        self.st.redirect = None;
        if self.maps_dirty {
            env::map_maps(&mut self.mem, &mut self.maps);
            self.arrays.clear();
            let cpu = self.config.cpu;
            self.arrays
                .extend(self.maps.iter().map(|map| exec::ArrayLookup::of(map, cpu)));
            self.maps_dirty = false;
        }
        // SAFETY: as in `execute`: no other reference to the Machine is live.
        let m = unsafe { self.machine.get() };
        if self.mem.changed() {
            m.view = self.mem.view();
            m.set_xdp(self.ctx.xdp_words(&self.pkt));
        }
        m.fp = self.stack.ptr();
        m.delta = self.code.len * std::mem::size_of::<op::Op>();
        m.depth = 0;
        m.max_depth = 0;
        m.tail_calls = 0;
        self.zero_registers();
        self.reset = self.clean_reset;
    }

    /// Sets r0..r10 to what a run starts from, r1 and r2 aside (set by every run): zeros,
    /// and r10 the top of frame 0.
    #[inline(always)]
    pub(super) fn zero_registers(&mut self) {
        // SAFETY: as in `execute`: no other reference to the Machine is live.
        let m = unsafe { self.machine.get() };
        m.r[..11].fill(0);
        m.r[10] = vaddr(STACK0, STACK_SIZE as u32);
    }

    /// Re-zeroes what a clean run may have written to the stack: frame 0 (no call) from
    /// [`Vm::stack_from0`] (no store missed the write window, so no watermark moved).
    #[inline(always)]
    pub(super) fn zero_frame0(&mut self) {
        const TOP: usize = 64;
        let from = self.stack_from0.min(STACK_SIZE);
        let base = self.stack.ptr();
        if from >= STACK_SIZE - TOP {
            // The usual case (a few locals): the top 64 bytes in four vector stores, with no
            // length-dependent loop (which LLVM would turn into a call to memset). Bytes
            // below `from` are zero already, so zeroing them too changes nothing.
            // SAFETY: frame 0 is the first STACK_SIZE bytes of the stack allocation, which
            // nothing else accesses during this call.
            unsafe {
                base.add(STACK_SIZE - TOP)
                    .cast::<[u64; TOP / 8]>()
                    .write_unaligned([0; TOP / 8])
            };
        } else {
            // SAFETY: `from <= STACK_SIZE`, so the range lies inside frame 0, as above.
            unsafe { std::ptr::write_bytes(base.add(from), 0, STACK_SIZE - from) };
        }
    }

    /// Recomputes [`Vm::stack_reset`] and [`Vm::stack_from0`] (after the program or the
    /// stack watermarks changed).
    pub(super) fn update_stack_reset(&mut self) {
        let (marks, marked) = self.mem.stack_watermarks();
        let from = self.code.stack_low.min(marks[0] as usize).min(STACK_SIZE) & !7;
        self.stack_from0 = from;
        self.stack_reset = if marked > 1 {
            // A deeper frame is writable through translated addresses (a pointer formed
            // from r10 can reach it without a call): the general re-zeroing covers it.
            RESET_ALL
        } else if from < STACK_SIZE {
            RESET_STACK
        } else {
            RESET_NONE
        };
        self.clean_reset = self.stack_reset | if self.zero_regs { RESET_REGS } else { 0 };
    }

    /// Makes the next run reset everything first ([`Vm::reset_state`]), and set up a packet
    /// program's input in full: after a run that was not clean (a helper may have moved the
    /// packet) or a change between runs. A `mem` program's input window stays valid.
    pub(super) fn reset_all(&mut self) {
        self.reset |= RESET_ALL;
        if self.ctx.kind != CtxKind::Mem {
            self.fast = FastInput::NONE;
        }
    }

    /// Lays out the packet and the context for a run of a packet program.
    pub(super) fn setup_packet(&mut self, input: &[u8]) -> Result<(), BadInput> {
        self.pkt.setup(self.prog_type, input)?;
        self.ctx.setup(
            &self.pkt,
            self.config.ingress_ifindex,
            self.config.rx_queue_index,
        );
        self.pkt.map_into(&mut self.mem);
        Ok(())
    }

    /// Re-zeroes the stack bytes the previous run may have written: from the lowest direct
    /// store offset in every frame it used, and from the watermark of writes through
    /// translated addresses in every frame (see `memory`).
    #[inline]
    pub(super) fn zero_stacks(&mut self) {
        let direct = self.code.stack_low.min(STACK_SIZE) & !7;
        let (marks, marked) = self.mem.stack_watermarks();
        let frames = (self.dirty_frames + 1).max(marked).min(MAX_FRAMES);
        let stack = self.stack.ptr();
        for (d, &mark) in marks.iter().enumerate().take(frames) {
            let from = if d <= self.dirty_frames {
                direct
            } else {
                STACK_SIZE
            };
            let from = from.min(mark as usize & !7);
            if from >= STACK_SIZE {
                continue;
            }
            // SAFETY: `d < MAX_FRAMES` and `from < STACK_SIZE`, so the range lies inside the
            // stack allocation, which nothing else accesses during this call.
            unsafe { zero_tail(stack.add(d * STACK_SIZE + from), STACK_SIZE - from) };
        }
    }
}

/// [`Vm::reset`]: nothing to reset before the next run.
pub(super) const RESET_NONE: u8 = 0;
/// [`Vm::reset`]: re-zero frame 0's stack from [`Vm::stack_from0`].
pub(super) const RESET_STACK: u8 = 1;
/// [`Vm::reset`]: the full [`Vm::reset_state`].
pub(super) const RESET_ALL: u8 = 2;
/// [`Vm::reset`]: zero the registers ([`Vm::zero_registers`]).
pub(super) const RESET_REGS: u8 = 4;

/// Writes `len` zero bytes at `p`; `len` is a multiple of 8.
///
/// # Safety
/// `p..p + len` must be writable and not referenced elsewhere during the call.
#[inline(always)]
unsafe fn zero_tail(p: *mut u8, len: usize) {
    if len <= 64 {
        // Short tails (the common case) without a call to memset.
        for i in (0..len).step_by(8) {
            // SAFETY: `i + 8 <= len` (len is a multiple of 8), inside the caller's range.
            unsafe { p.add(i).cast::<u64>().write_unaligned(0) };
        }
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::write_bytes(p, 0, len) };
    }
}

/// How a run sets up an input of the length the last full setup ([`Vm::setup_input`])
/// published, when it must copy it: one comparison and a copy instead of the general
/// checks.
#[derive(Clone, Copy)]
pub(super) struct FastInput {
    /// The input length it applies to (`usize::MAX`: none, as no slice is that long).
    pub(super) len: usize,
    /// Where the input's bytes go: the `mem` copy or the XDP packet's `data`, `len` bytes of
    /// a buffer the Vm owns that never moves (the copy is only replaced by a full setup,
    /// which publishes anew; the packet buffer is allocated once).
    pub(super) dst: *mut u8,
    /// r1 and r2 of the run.
    pub(super) r1: u64,
    pub(super) r2: u64,
}

// SAFETY: `dst` points into buffers owned by the Vm that holds this value, and is only
// written through by that Vm's runs.
unsafe impl Send for FastInput {}

impl FastInput {
    pub(super) const NONE: FastInput = FastInput {
        len: usize::MAX,
        dst: std::ptr::null_mut(),
        r1: 0,
        r2: 0,
    };
}

/// The 8 × 512-byte stack, allocated once per Vm. Held as a raw allocation rather than a
/// `Box` so that moving the Vm never invalidates the region table's pointers into it.
pub(super) struct StackBuf {
    ptr: std::ptr::NonNull<u8>,
}

// SAFETY: the allocation is owned exclusively by the Vm that holds this value.
unsafe impl Send for StackBuf {}

impl StackBuf {
    const LEN: usize = MAX_FRAMES * STACK_SIZE;

    pub(super) fn new() -> StackBuf {
        let b: Box<[u8]> = vec![0u8; Self::LEN].into_boxed_slice();
        let leaked: &'static mut [u8] = Box::leak(b);
        StackBuf {
            ptr: std::ptr::NonNull::from(leaked).cast::<u8>(),
        }
    }

    pub(super) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for StackBuf {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), Self::LEN);
        // SAFETY: `ptr` came from `Box::leak` of a boxed slice of `LEN` bytes and is
        // freed exactly once, here.
        drop(unsafe { Box::from_raw(slice) });
    }
}
