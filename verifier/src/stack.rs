//! The stack of one call frame, byte by byte: 512 bytes below the frame pointer, grouped in
//! 8-byte slots that can hold a spilled register.
//!
//! Why per byte: programs write structs field by field (`*(u32 *)(r10 -8) = 0` then
//! `*(u32 *)(r10 -4) = ...`), and a helper reading 8 bytes needs all 8 initialised. Why a
//! spilled register per slot: clang spills pointers and bounded scalars around calls, and the
//! fill must give back the pointer type and the bounds, not "some bytes".
//!
//! Layout follows the kernel (`bpf_stack_state`): slot `spi` covers `fp-8*(spi+1)` up to
//! `fp-8*spi-1`; within a slot, `types[0]` is the byte at the highest address and `types[7]`
//! the lowest, which is also the order the log prints them in (`fp-8=0000????` means
//! `fp-1..fp-4` are zero, `fp-5..fp-8` uninitialised). A register spill of `n` bytes at an
//! 8-aligned offset covers `types[8-n..8]`.

use crate::reg::{RegState, RegType};

/// Maximum stack of one frame, and of all frames of a call chain together.
pub const MAX_BPF_STACK: i32 = 512;

/// Size of one slot (and of a register).
pub const REG_SIZE: usize = 8;

/// What one stack byte holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SlotType {
    /// Never written (`?`).
    Invalid,
    /// Part of a spilled register (`r`); the register is the slot's `spilled`.
    Spill,
    /// Some data (`m`).
    Misc,
    /// Known zero (`0`).
    Zero,
}

impl SlotType {
    /// The log's character for this byte.
    pub const fn log_char(self) -> char {
        match self {
            SlotType::Invalid => '?',
            SlotType::Spill => 'r',
            SlotType::Misc => 'm',
            SlotType::Zero => '0',
        }
    }
}

/// One 8-byte slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StackSlot {
    /// Per-byte contents, highest address first.
    pub types: [SlotType; REG_SIZE],
    /// The register spilled here (meaningful when the bytes say [`SlotType::Spill`]).
    pub spilled: RegState,
}

impl Default for StackSlot {
    fn default() -> Self {
        StackSlot {
            types: [SlotType::Invalid; REG_SIZE],
            spilled: RegState::not_init(),
        }
    }
}

impl StackSlot {
    /// The eight byte kinds as one word: equal words, equal kinds (one comparison instead
    /// of eight, for state comparison).
    pub fn types_word(&self) -> u64 {
        u64::from_ne_bytes(self.types.map(|t| t as u8))
    }

    /// Whether a register is spilled here (its lowest byte is part of the spill, which is
    /// where every spill starts).
    pub fn is_spilled(&self) -> bool {
        self.types[REG_SIZE - 1] == SlotType::Spill
    }

    /// Whether all 8 bytes hold one spilled register.
    pub fn is_full_spill(&self) -> bool {
        self.types.iter().all(|t| *t == SlotType::Spill)
    }

    /// Number of bytes the spill covers (from the lowest address up).
    pub fn spill_size(&self) -> usize {
        self.types
            .iter()
            .rev()
            .take_while(|t| **t == SlotType::Spill)
            .count()
    }

    /// Whether the slot holds a spilled pointer (something a scalar read must not see).
    pub fn holds_pointer(&self) -> bool {
        self.is_spilled() && self.spilled.is_pointer()
    }

    /// Whether every byte is uninitialised.
    pub fn is_invalid(&self) -> bool {
        self.types.iter().all(|t| *t == SlotType::Invalid)
    }

    /// Turns a spilled register into plain data (a write into part of it, or a helper
    /// writing here): every initialised byte of the slot becomes [`SlotType::Misc`], as the
    /// kernel's `scrub_spilled_slot` does. No-op when nothing is spilled.
    pub fn scrub_spill(&mut self) {
        if self.is_spilled() {
            for t in &mut self.types {
                if *t != SlotType::Invalid {
                    *t = SlotType::Misc;
                }
            }
            self.spilled = RegState::not_init();
        }
    }
}

/// Where a byte at `fp + off` (`off` in `-512..=-1`) lives: (slot index, byte index in slot).
pub const fn locate(off: i32) -> (usize, usize) {
    let slot = (-off - 1) as usize;
    (slot / REG_SIZE, slot % REG_SIZE)
}

/// The stack of one frame; slots are allocated as deep as the program has written.
///
/// Every slot carries a *version*: a number drawn fresh (per thread) whenever the slot may
/// change, and copied with the state. Two states whose slot has the same version hold the
/// same contents there (up to the `precise` mark of a spilled scalar, which pruning reads
/// from the stored state only), so state comparison can skip it without looking inside.
/// Version 0 is the never-written slot.
#[derive(Debug, Default)]
pub struct Stack {
    slots: Vec<StackSlot>,
    vers: Vec<u64>,
}

thread_local! {
    static NEXT_VERSION: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// A version no slot has had before on this thread.
fn fresh_version() -> u64 {
    NEXT_VERSION.with(|c| {
        let v = c.get();
        c.set(v.wrapping_add(1).max(1));
        v
    })
}

/// Equal contents; versions are bookkeeping.
impl PartialEq for Stack {
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots
    }
}

impl Eq for Stack {}

impl std::hash::Hash for Stack {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.slots.hash(state);
    }
}

/// By hand so that `clone_from` reuses the buffers.
impl Clone for Stack {
    fn clone(&self) -> Self {
        Stack {
            slots: self.slots.clone(),
            vers: self.vers.clone(),
        }
    }

    fn clone_from(&mut self, src: &Self) {
        self.slots.clone_from(&src.slots);
        self.vers.clone_from(&src.vers);
    }
}

impl Stack {
    /// Number of allocated slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Slot `spi`, if allocated.
    pub fn slot(&self, spi: usize) -> Option<&StackSlot> {
        self.slots.get(spi)
    }

    /// All allocated slots, `fp-8` first.
    pub fn slots(&self) -> &[StackSlot] {
        &self.slots
    }

    /// Mutable slots (each gets a new version).
    pub fn slots_mut(&mut self) -> &mut [StackSlot] {
        for v in &mut self.vers {
            *v = fresh_version();
        }
        &mut self.slots
    }

    /// Slot `spi`, allocating (as uninitialised) up to it; it gets a new version.
    pub fn slot_mut(&mut self, spi: usize) -> &mut StackSlot {
        if self.slots.len() <= spi {
            self.slots.resize(spi + 1, StackSlot::default());
            self.vers.resize(spi + 1, 0);
        }
        self.vers[spi] = fresh_version();
        &mut self.slots[spi]
    }

    /// Allocates every slot down to `spi` as uninitialised, keeping versions: the kernel's
    /// `grow_stack_state`, which every stack access does, reads included. How deep the
    /// stack is allocated matters to pruning: a current slot beyond it cannot stand for a
    /// used slot of a stored state.
    pub fn grow(&mut self, spi: usize) {
        if self.slots.len() <= spi {
            self.slots.resize(spi + 1, StackSlot::default());
            self.vers.resize(spi + 1, 0);
        }
    }

    /// The version of slot `spi` (0 when never written).
    pub fn version(&self, spi: usize) -> u64 {
        self.vers.get(spi).copied().unwrap_or(0)
    }

    /// Applies `f` to every spilled register; a slot whose register changed gets a new
    /// version.
    pub fn update_spilled(&mut self, mut f: impl FnMut(&mut RegState)) {
        for (s, v) in self.slots.iter_mut().zip(&mut self.vers) {
            if s.is_spilled() {
                let before = s.spilled;
                f(&mut s.spilled);
                if s.spilled != before {
                    *v = fresh_version();
                }
            }
        }
    }

    /// Sets the `precise` mark of every spilled scalar (`true`) or every spilled register
    /// (`false`). Precision is not part of a slot's version.
    pub(crate) fn set_spills_precise(&mut self, precise: bool) {
        for s in &mut self.slots {
            if s.is_spilled() && (!precise || s.spilled.is_scalar()) {
                s.spilled.precise = precise;
            }
        }
    }

    /// Marks the scalar spilled at `spi` precise; `false` if there is none or it already
    /// was (precision backtracking then stops following it).
    pub(crate) fn mark_spill_precise(&mut self, spi: usize) -> bool {
        match self.slots.get_mut(spi) {
            Some(s) if s.is_spilled() && s.spilled.is_scalar() && !s.spilled.precise => {
                s.spilled.precise = true;
                true
            }
            _ => false,
        }
    }

    /// The contents of the byte at `fp + off`.
    pub fn byte(&self, off: i32) -> SlotType {
        let (spi, j) = locate(off);
        self.slots
            .get(spi)
            .map_or(SlotType::Invalid, |s| s.types[j])
    }

    /// Sets the byte at `fp + off`.
    pub fn set_byte(&mut self, off: i32, t: SlotType) {
        let (spi, j) = locate(off);
        self.slot_mut(spi).types[j] = t;
    }

    /// Every register spilled in this frame, mutably (each such slot gets a new version).
    pub fn spilled_regs_mut(&mut self) -> impl Iterator<Item = &mut RegState> {
        self.slots
            .iter_mut()
            .zip(&mut self.vers)
            .filter(|(s, _)| s.is_spilled())
            .map(|(s, v)| {
                *v = fresh_version();
                &mut s.spilled
            })
    }

    /// Every spilled register.
    pub fn spilled_regs(&self) -> impl Iterator<Item = &RegState> {
        self.slots
            .iter()
            .filter(|s| s.is_spilled())
            .map(|s| &s.spilled)
    }

    /// Whether some spilled register is a pointer into stack frame `frame`.
    pub fn holds_stack_pointer_into(&self, frame: u8) -> bool {
        self.spilled_regs()
            .any(|r| r.ty == RegType::Stack { frame })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_map_to_kernel_slot_order() {
        assert_eq!(locate(-1), (0, 0));
        assert_eq!(locate(-8), (0, 7));
        assert_eq!(locate(-9), (1, 0));
        let mut s = Stack::default();
        for off in -4..0 {
            s.set_byte(off, SlotType::Zero);
        }
        let printed: String = s.slot(0).map_or(String::new(), |sl| {
            sl.types.iter().map(|t| t.log_char()).collect()
        });
        assert_eq!(printed, "0000????");
    }
}
