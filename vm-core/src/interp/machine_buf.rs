//! Where the run loop's [`Machine`] lives in memory, chosen against *4K aliasing*.
//!
//! # Why placement matters
//!
//! eBPF registers live in `Machine::r`, so nearly every handler stores a register while the
//! next handler loads fields of its op from the code array. x86 cores decide early whether a
//! load may depend on an older, still pending store by comparing only the low 12 address
//! bits; a load whose page offset equals a pending store's is held back or replayed even
//! though the addresses differ. Measured on the project's AMD EPYC (KVM) machines with the
//! three-instruction sum loop: with `r0`/`r1` at the page offsets of the loop's own ops,
//! 1.2–1.9 ns per instruction; anywhere else, 0.85–1.1 (a scan over 32 placements, twice).
//! Before this module the Machine was an ordinary heap box, and the benchmark binary at
//! the time happened to put it at such an offset: 1.30 ns per instruction against 0.92 for
//! the same code with the Machine placed, in interleaved runs. Which programs suffered
//! depended on heap layout, a lottery rather than a property of the program, and it is
//! much of why figures moved between builds.
//!
//! # What is done
//!
//! The Machine sits in its own page-aligned allocation with a page of slack, and the Vm
//! moves it inside that allocation ([`MachineBuf::place`]) whenever the code changes, so that
//! the page offsets of `r0..r10` miss the page offsets of the hot ranges it is told about
//! (the fast copy of the code, the top of frame 0's stack). Only when the hot ranges cover
//! every page offset (code over about 4 KB) does some aliasing remain, and then it is no
//! worse than before.

use std::alloc::Layout;
use std::ops::Range;
use std::ptr::NonNull;

use super::exec::Machine;
use super::memory::View;

const PAGE: usize = 4096;

/// Bytes of the registers instructions can name (`r0..r10`), the part that must not alias.
const HOT_REGS: usize = 11 * 8;

/// One Vm's Machine, at an offset of its allocation chosen by [`MachineBuf::place`]. A raw
/// allocation rather than a `Box`, so that the `&mut Vm` that slow paths derive from
/// `Machine::vm` asserts nothing about the Machine a handler is using.
pub(crate) struct MachineBuf {
    base: NonNull<u8>,
    /// Byte offset of the Machine inside the allocation (a multiple of its alignment).
    off: usize,
    /// `base + off`, kept so that each run's access costs no address arithmetic.
    at: NonNull<Machine<'static>>,
}

// SAFETY: the allocation is owned exclusively by the Vm that holds this value; its raw
// pointers are reset at the start of every run.
unsafe impl Send for MachineBuf {}

impl MachineBuf {
    fn layout() -> Layout {
        let size = PAGE + std::mem::size_of::<Machine<'static>>();
        // A page alignment and a non-zero size: always a valid layout.
        Layout::from_size_align(size, PAGE).unwrap_or_else(|_| unreachable!())
    }

    pub(crate) fn new() -> MachineBuf {
        let layout = Self::layout();
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(base) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        let m = Machine {
            r: [0; 256],
            view: View::EMPTY,
            fp: std::ptr::null_mut(),
            delta: 0,
            depth: 0,
            max_depth: 0,
            tail_calls: 0,
            ip: std::ptr::null(),
            n: 0,
            stop: None,
            xdp: [0; 8],
            xdp_on: false,
            vm: std::ptr::null_mut(),
            _vm: std::marker::PhantomData,
        };
        // SAFETY: offset 0 of a page-aligned allocation of at least `size_of::<Machine>()`
        // bytes is suitably aligned and in bounds.
        unsafe { base.as_ptr().cast::<Machine<'static>>().write(m) };
        MachineBuf {
            base,
            off: 0,
            at: base.cast(),
        }
    }

    fn ptr(&self) -> *mut Machine<'static> {
        self.at.as_ptr()
    }

    /// The Machine.
    ///
    /// # Safety
    /// No other reference to the Machine may be live.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get<'a>(&self) -> &'a mut Machine<'static> {
        // SAFETY: the Machine was written at `ptr()` and stays there until `place` or `drop`,
        // which take `&mut self`; the caller guarantees exclusivity.
        unsafe { &mut *self.ptr() }
    }

    /// Moves the Machine so that the page offsets of `r0..r10` avoid those of `hot` (address
    /// ranges that the run loop loads from or stores to all the time). Keeps it where it is
    /// when it already avoids them, or when no offset does.
    pub(crate) fn place(&mut self, hot: &[Range<usize>]) {
        let regs = std::mem::offset_of!(Machine<'static>, r);
        let page_base = self.base.as_ptr() as usize;
        let clear = |off: usize| !hot.iter().any(|h| overlaps(page_base + off + regs, h));
        if clear(self.off) {
            return;
        }
        let align = std::mem::align_of::<Machine<'static>>();
        let Some(off) = (0..PAGE).step_by(align).find(|&off| clear(off)) else {
            return;
        };
        // SAFETY: both offsets are below PAGE and aligned, so source and destination lie in
        // the allocation; `copy` allows them to overlap; the Machine is plain data moved as a
        // whole, and the old place is not read again.
        let to: NonNull<Machine<'static>> = unsafe {
            let to = self.base.add(off).cast();
            std::ptr::copy(self.ptr(), to.as_ptr(), 1);
            to
        };
        self.off = off;
        self.at = to;
    }
}

/// Whether the registers at `regs` share a page offset with any byte of `hot`.
fn overlaps(regs: usize, hot: &Range<usize>) -> bool {
    let len = hot.end.saturating_sub(hot.start);
    if len == 0 {
        return false;
    }
    if len + HOT_REGS > PAGE {
        return true;
    }
    // Page offsets of `hot` start at `h`; the registers' at `r`. The two intervals
    // [h, h + len) and [r, r + HOT_REGS) overlap modulo PAGE when the distance from h to r
    // (mod PAGE) is under len, or the distance from r to h is under HOT_REGS.
    let h = hot.start % PAGE;
    let r = regs % PAGE;
    (r + PAGE - h) % PAGE < len || (h + PAGE - r) % PAGE < HOT_REGS
}

impl Drop for MachineBuf {
    fn drop(&mut self) {
        // SAFETY: the Machine at `ptr()` is initialised and dropped exactly once, then the
        // allocation made in `new` with the same layout is freed.
        unsafe {
            std::ptr::drop_in_place(self.ptr());
            std::alloc::dealloc(self.base.as_ptr(), Self::layout());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy;

    #[test]
    fn overlap_is_modulo_page() {
        // Same page offset, different pages.
        assert!(overlaps(0x1bf0, &(0x5bc0..0x5c00)));
        // Just after and just before the hot range.
        assert!(!overlaps(0x1c00, &(0x5bc0..0x5c00)));
        assert!(!overlaps(0x1bc0 - HOT_REGS, &(0x5bc0..0x5c00)));
        assert!(overlaps(0x1bc0 - HOT_REGS + 8, &(0x5bc0..0x5c00)));
        // Wrapping around the end of a page.
        assert!(overlaps(0x2ff8, &(0x7000..0x7010)));
        assert!(overlaps(0x2008, &(0x6ff0..0x7010)));
        // Ranges too large to avoid, and empty ones.
        assert!(overlaps(0x10, &(0..PAGE)));
        assert!(!overlaps(0x10, &(0x10..0x10)));
    }

    #[test]
    fn place_moves_registers_off_hot_ranges_and_keeps_contents() {
        let mut buf = MachineBuf::new();
        // SAFETY: no other reference to the Machine exists in this test.
        unsafe { buf.get() }.r[3] = 0xabcd;
        let regs = |b: &MachineBuf| {
            // SAFETY: as above.
            unsafe { b.get() }.r.as_ptr() as usize
        };
        let at = regs(&buf);
        let hot = [
            at + PAGE * 7 - 16..at + PAGE * 7 + 200,
            at + 1000..at + 1100,
        ];
        buf.place(&hot);
        let now = regs(&buf);
        assert!(hot.iter().all(|h| !overlaps(now, h)), "{now:#x}");
        // SAFETY: as above.
        assert_eq!(unsafe { buf.get() }.r[3], 0xabcd);
        // Placing again with the same ranges keeps it.
        buf.place(&hot);
        assert_eq!(regs(&buf), now);
    }

    /// Byte-wise definition of an overlap modulo the page, for checking `overlaps`.
    fn overlaps_slow(regs: usize, hot: &Range<usize>) -> bool {
        let offsets = |start: usize, len: usize| (start..start + len).map(|a| a % PAGE);
        let hot_offsets: std::collections::HashSet<usize> =
            offsets(hot.start, hot.end.saturating_sub(hot.start)).collect();
        offsets(regs, HOT_REGS).any(|o| hot_offsets.contains(&o))
    }

    proptest::proptest! {
        #[test]
        fn overlaps_agrees_with_the_bytewise_definition(
            regs in (0usize..3 * PAGE).prop_map(|r| r & !7),
            start in 0usize..3 * PAGE,
            len in 0usize..PAGE + 200,
        ) {
            let hot = start..start + len;
            proptest::prop_assert_eq!(overlaps(regs, &hot), overlaps_slow(regs, &hot));
        }

        /// Placement keeps the Machine's contents and, whenever some offset avoids every
        /// range, ends on one.
        #[test]
        fn place_avoids_what_can_be_avoided(
            ranges in proptest::collection::vec((0usize..PAGE, 0usize..1500), 0..4),
            value in proptest::num::u64::ANY,
        ) {
            let mut buf = MachineBuf::new();
            // SAFETY: no other reference to the Machine exists in this test.
            unsafe { buf.get() }.r[10] = value;
            let base = buf.base.as_ptr() as usize;
            let hot: Vec<Range<usize>> =
                ranges.iter().map(|&(s, l)| base + s..base + s + l).collect();
            buf.place(&hot);
            // SAFETY: as above.
            let m = unsafe { buf.get() };
            proptest::prop_assert_eq!(m.r[10], value);
            let regs = m.r.as_ptr() as usize;
            let avoidable = (0..PAGE)
                .step_by(8)
                .any(|o| hot.iter().all(|h| !overlaps(base + o, h)));
            if avoidable {
                proptest::prop_assert!(hot.iter().all(|h| !overlaps(regs, h)));
            }
        }
    }
}
