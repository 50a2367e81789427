//! The state of one path through the program: a chain of call frames (registers and stack
//! each), plus the references the path holds.
//!
//! The kernel's `bpf_func_state` / `bpf_verifier_state`. Frame 0 is the main program; a
//! bpf-to-bpf call pushes a frame whose R1–R5 are the caller's, and the caller's R0–R5 become
//! unreadable until the callee returns. R10 of each frame points at that frame's own stack.

use crate::reg::{RegState, RegType};
use crate::stack::Stack;

/// Number of registers (R0–R10).
pub const NUM_REGS: usize = 11;

/// Maximum depth of a bpf-to-bpf call chain, main program included.
pub const MAX_CALL_FRAMES: usize = 8;

/// One call frame.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FuncState {
    /// R0–R10.
    pub regs: [RegState; NUM_REGS],
    /// This frame's stack.
    pub stack: Stack,
    /// The call instruction that created this frame (`None` for the main program).
    pub callsite: Option<usize>,
    /// Position in the call chain (0 = main program).
    pub frameno: u8,
    /// Index of the subprogram this frame executes.
    pub subprog: usize,
}

/// By hand so that `clone_from` reuses the stack's buffer: the walk copies states at every
/// branch and checkpoint into recycled ones.
impl Clone for FuncState {
    fn clone(&self) -> Self {
        FuncState {
            regs: self.regs,
            stack: self.stack.clone(),
            callsite: self.callsite,
            frameno: self.frameno,
            subprog: self.subprog,
        }
    }

    fn clone_from(&mut self, src: &Self) {
        self.regs = src.regs;
        self.stack.clone_from(&src.stack);
        self.callsite = src.callsite;
        self.frameno = src.frameno;
        self.subprog = src.subprog;
    }
}

impl FuncState {
    /// A fresh frame: every register unwritten except R10 (the frame pointer).
    pub fn new(frameno: u8, subprog: usize, callsite: Option<usize>) -> FuncState {
        let mut regs = [RegState::not_init(); NUM_REGS];
        regs[10] = RegState::pointer(RegType::Stack { frame: frameno }, 0);
        FuncState {
            regs,
            stack: Stack::default(),
            callsite,
            frameno,
            subprog,
        }
    }
}

/// A reference the program acquired and must release before exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefState {
    /// The reference id (the pointer's `ref_obj_id`).
    pub id: u32,
    /// Where it was acquired.
    pub insn: usize,
}

/// One path's state.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct VerifierState {
    /// The call chain; the last frame is the one executing.
    pub frames: Vec<FuncState>,
    /// Acquired, not yet released references.
    pub refs: Vec<RefState>,
}

/// By hand so that `clone_from` reuses every buffer (frames, stacks, references).
impl Clone for VerifierState {
    fn clone(&self) -> Self {
        VerifierState {
            frames: self.frames.clone(),
            refs: self.refs.clone(),
        }
    }

    fn clone_from(&mut self, src: &Self) {
        self.frames.clone_from(&src.frames);
        self.refs.clone_from(&src.refs);
    }
}

impl VerifierState {
    /// The state at the program's entry: R1 = context, R10 = frame pointer.
    pub fn entry() -> VerifierState {
        let mut frame = FuncState::new(0, 0, None);
        frame.regs[1] = RegState::pointer(RegType::Ctx, 0);
        VerifierState {
            frames: vec![frame],
            refs: Vec::new(),
        }
    }

    /// Index of the executing frame.
    pub fn curframe(&self) -> usize {
        self.frames.len().saturating_sub(1)
    }

    /// The executing frame.
    pub fn cur(&self) -> &FuncState {
        // `frames` is never empty: it is created with one frame and calls only push/pop above it.
        &self.frames[self.curframe()]
    }

    /// The executing frame, mutably.
    pub fn cur_mut(&mut self) -> &mut FuncState {
        let i = self.curframe();
        &mut self.frames[i]
    }

    /// Register `r` of the executing frame.
    pub fn reg(&self, r: u8) -> &RegState {
        &self.cur().regs[usize::from(r)]
    }

    /// Register `r` of the executing frame, mutably.
    pub fn reg_mut(&mut self, r: u8) -> &mut RegState {
        &mut self.cur_mut().regs[usize::from(r)]
    }

    /// Applies `f` to every register and spilled register of every frame (the kernel's
    /// `bpf_for_each_reg_in_vstate`): NULL checks, packet range marking and invalidation
    /// must reach copies wherever they are.
    pub fn for_each_reg_mut(&mut self, mut f: impl FnMut(&mut RegState)) {
        for frame in &mut self.frames {
            for r in &mut frame.regs {
                f(r);
            }
            frame.stack.update_spilled(&mut f);
        }
    }
}
