//! Recipe → instructions, valid for the Linux 6.18 verifier by construction.
//!
//! The lowering tracks which registers hold scalars ([`code::Scalars`]); everything else
//! (uninitialised, ctx / packet / map pointers) is never read, compared or stored. A read of
//! a non-scalar register is preceded by a fix-up `mov`, so any recipe (including every
//! shrunk one) is valid. Joins (the end of an `if`, a skipped block) keep only the scalars
//! of both paths; a loop body is lowered until its entry state is a fixed point, so the
//! code is valid for every iteration.
//!
//! Frame layout of every function (offsets from r10):
//!
//! ```text
//!   -8        ctx pointer spill (main only)
//!  -72..-8    scalar area: initialised in the prologue, the `Mem` region at top level
//!  -80..-72   map key
//! -112..-80   map value for updates
//! -152..-72   main only, at exit: the r0..r9 dump, copied into the dump map
//! ```
//!
//! Main is 152 bytes and subprograms 112, so main plus two nested calls stays under the
//! kernel's 512-byte combined limit after its 32-byte rounding (160 + 128 + 128).

pub(crate) mod code;
mod memory;
mod stmt;

use std::collections::BTreeMap;

use vm_core::isa::{CallTarget, Insn, JmpCond, LdImm64, Operand, Size, Width};
use vm_core::{ProgType, Program};

use self::code::{Code, Cx, Region, Scalars};
use super::recipe::{Recipe, RegInit, Sub};
use super::{DUMP_MAP, map_defs};

/// Spill slot of the context pointer.
pub(crate) const CTX_SLOT: i16 = -8;
/// Start of the scalar area (64 bytes).
pub(crate) const SCALAR_LO: i16 = -72;
/// Bytes in the scalar area.
pub(crate) const SCALAR_LEN: u16 = 64;
/// Map key slot (u32).
pub(crate) const KEY_SLOT: i16 = -80;
/// Start of the map value staging area (32 bytes).
pub(crate) const VALUE_LO: i16 = -112;
/// Start of the register dump area (80 bytes, main program exit only).
pub(crate) const DUMP_LO: i16 = -152;
/// Most iterations of a generated loop.
pub const MAX_LOOP_COUNT: u8 = 6;
/// Most iterations of nested loops together (the product of their counts). The verifier
/// walks every iteration separately (the counter is precise), and branches inside a body
/// multiply per iteration; nested loops of 6 × 6 × 6 iterations with a few unknown branches
/// inside exceed its 1M-instruction budget, 8 stays far below it.
pub const MAX_ITERATIONS: u32 = 8;
/// Budget of conditional branches (`if`s, packet bounds checks, map-value NULL checks) times
/// iterations in a loop body: a body running `k` times (nested loops: the product) may
/// hold `MAX_LOOP_BRANCHES / k` branches, nested loops included; further `if`s are lowered
/// without their branch, further checked blocks are dropped. The verifier walks iterations
/// separately and cannot always prune the paths of one iteration against each other (a
/// precise register differs), so `b` branches over `k` iterations can cost `2^(b*k)` paths:
/// with `b*k <= 8` the worst seen over 200k programs stays near 10% of the 1M limit. A
/// subprogram counts as a body of [`SUB_ITERATIONS`] iterations: it is walked again for
/// every call.
pub const MAX_LOOP_BRANCHES: u32 = 8;
/// Iterations already "spent" when a subprogram starts: it may be called from inside a
/// loop (and call the other subprogram from inside its own), so its loops stay short.
pub const SUB_ITERATIONS: u32 = 4;

/// Why a recipe could not be lowered (only absurdly large hand-made recipes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    /// A jump offset does not fit its field.
    #[error("jump at slot {at} needs offset {rel}, which does not fit")]
    JumpTooFar {
        /// Slot of the jump.
        at: usize,
        /// Required offset.
        rel: i64,
    },
    /// Internal: a patch targeted something that is not a jump.
    #[error("slot {at} is not a jump")]
    NotAJump {
        /// Slot.
        at: usize,
    },
}

/// A lowered recipe.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// The XDP program, with its maps ([`map_defs`]).
    pub program: Program,
    /// How often each feature tag was emitted (packet loads, map-value atomics, loops, ...).
    pub features: BTreeMap<&'static str, u32>,
}

/// Lowers `recipe` into an XDP program named `name`.
pub fn lower(recipe: &Recipe, name: &str) -> Result<Lowered, LowerError> {
    let _span = tracing::debug_span!("gen.lower", stmts = recipe.main.len()).entered();
    let nsubs = recipe.subs.len();
    let cx = Cx {
        region: Region::Stack,
        reserved: 0,
        has_ctx: true,
        sub: None,
        nsubs,
        iters: 1,
        fn_iters: 1,
    };
    let mut main = Code::default();
    let mut st = prologue(recipe, &mut main)?;
    stmt::lower_block(&recipe.main, &cx, &mut st, &mut main, &recipe.subs)?;
    epilogue(recipe.ret, &st, &mut main);

    // Subprograms, in order, each only if something reachable calls it (the kernel refuses
    // unreachable code). Sub i only calls subs after i, so one forward pass suffices.
    let mut reachable = vec![false; nsubs];
    for &(_, s) in &main.calls {
        if let Some(r) = reachable.get_mut(s) {
            *r = true;
        }
    }
    let mut code = main;
    let mut starts = vec![None; nsubs];
    for (i, sub) in recipe.subs.iter().enumerate() {
        if !reachable.get(i).copied().unwrap_or(false) {
            continue;
        }
        let body = lower_sub(sub, i, nsubs, &recipe.subs)?;
        for &(_, s) in &body.calls {
            if let Some(r) = reachable.get_mut(s) {
                *r = true;
            }
        }
        starts[i] = Some(code.len());
        code.tag("subprogram");
        code.append(body);
    }
    for &(at, s) in &code.calls {
        let target = starts.get(s).copied().flatten().unwrap_or(at + 1);
        let rel = target as i64 - at as i64 - 1;
        let rel = i32::try_from(rel).map_err(|_| LowerError::JumpTooFar { at, rel })?;
        if let Some(slot) = code.insns.get_mut(at) {
            *slot = Insn::Call(CallTarget::Local(rel));
        }
    }
    let mut features = BTreeMap::new();
    for t in &code.tags {
        *features.entry(*t).or_insert(0) += 1;
    }
    Ok(Lowered {
        program: Program {
            name: name.to_string(),
            section: Some("xdp".to_string()),
            prog_type: ProgType::Xdp,
            insns: code.insns,
            maps: map_defs(),
        },
        features,
    })
}

/// Zeroes (or seeds) the scalar area of a frame.
fn init_scalar_area(code: &mut Code, words: &[i32]) {
    for i in 0..(SCALAR_LEN / 8) {
        let v = words.get(usize::from(i)).copied().unwrap_or(0);
        code.store_imm(Size::DW, 10, SCALAR_LO + 8 * i as i16, v);
    }
}

fn reg_init(code: &mut Code, r: u8, init: RegInit) {
    match init {
        RegInit::Imm(v) => code.mov_imm(r, v),
        RegInit::Imm32(v) => {
            code.push(code::alu(
                vm_core::isa::AluOp::Mov,
                Width::W32,
                r,
                Operand::Imm(v),
            ));
        }
        RegInit::Imm64(v) => {
            code.push(Insn::LdImm64 {
                dst: r,
                value: LdImm64::Imm(v),
            });
        }
        RegInit::Packet { fallback, .. } => code.mov_imm(r, fallback),
    }
}

/// Spills ctx, initialises the scalar area and r0..r9. Registers initialised from the packet
/// are loaded after a 14-byte bounds check; the (never taken at run time, but verified)
/// short path gives them their fallback constants, so both paths leave every register a
/// scalar.
fn prologue(recipe: &Recipe, code: &mut Code) -> Result<Scalars, LowerError> {
    code.store_reg(Size::DW, 10, CTX_SLOT, 1);
    init_scalar_area(code, &recipe.stack_init);
    let init = |r: u8| {
        recipe
            .init
            .get(usize::from(r))
            .copied()
            .unwrap_or(RegInit::Imm(0))
    };
    let any_packet = (0..10).any(|r| matches!(init(r), RegInit::Packet { .. }));
    if !any_packet {
        for r in 0..10 {
            reg_init(code, r, init(r));
        }
        return Ok(Scalars(0x3ff));
    }
    code.tag("init.packet");
    code.load(Size::W, 2, 1, 0);
    code.load(Size::W, 3, 1, 4);
    code.mov_reg(1, 2);
    code.push(code::alu(
        vm_core::isa::AluOp::Add,
        Width::W64,
        1,
        Operand::Imm(14),
    ));
    let check = code.push(Insn::Jmp {
        cond: JmpCond::Gt,
        width: Width::W64,
        dst: 1,
        src: Operand::Reg(3),
        off: 0,
    });
    // Path A: r2 (the base) last.
    for r in [0, 1, 3, 4, 5, 6, 7, 8, 9, 2] {
        match init(r) {
            RegInit::Packet {
                size, signed, off, ..
            } => {
                let off = u16::from(off) % (14 - size.bytes() as u16 + 1);
                code.push(Insn::Load {
                    size,
                    signed: signed && size != Size::DW,
                    dst: r,
                    src: 2,
                    off: off as i16,
                });
            }
            other => reg_init(code, r, other),
        }
    }
    let skip = code.push(Insn::Ja {
        off: 0,
        long: false,
    });
    code.patch_here(check)?;
    for r in 0..10 {
        reg_init(code, r, init(r));
    }
    code.patch_here(skip)?;
    Ok(Scalars(0x3ff))
}

/// Dumps r0..r9 (0 for non-scalars) into the dump map and returns a value that depends on
/// the dumped `ret` and on every register.
fn epilogue(ret: u8, st: &Scalars, code: &mut Code) {
    for r in 0..10u8 {
        let off = DUMP_LO + 8 * i16::from(r);
        if st.has(r) {
            code.store_reg(Size::DW, 10, off, r);
        } else {
            code.store_imm(Size::DW, 10, off, 0);
        }
    }
    code.push(Insn::LdImm64 {
        dst: 1,
        value: LdImm64::MapValue {
            fd: DUMP_MAP as i32,
            off: 0,
        },
    });
    // r0 = dump[ret] + (xor of all dumps, high half folded into the low): the kernel
    // reports only 32 bits of r0, so let those depend on every register too.
    code.load(Size::DW, 0, 10, DUMP_LO + 8 * i16::from(ret % 10));
    code.mov_imm(3, 0);
    for r in 0..10i16 {
        code.load(Size::DW, 2, 10, DUMP_LO + 8 * r);
        code.store_reg(Size::DW, 1, 8 * r, 2);
        code.push(code::alu(
            vm_core::isa::AluOp::Xor,
            Width::W64,
            3,
            Operand::Reg(2),
        ));
    }
    code.mov_reg(2, 3);
    code.push(code::alu(
        vm_core::isa::AluOp::Rsh,
        Width::W64,
        2,
        Operand::Imm(32),
    ));
    code.push(code::alu(
        vm_core::isa::AluOp::Xor,
        Width::W64,
        3,
        Operand::Reg(2),
    ));
    code.push(code::alu(
        vm_core::isa::AluOp::Add,
        Width::W64,
        0,
        Operand::Reg(3),
    ));
    code.push(Insn::Exit);
}

fn lower_sub(sub: &Sub, index: usize, nsubs: usize, subs: &[Sub]) -> Result<Code, LowerError> {
    let mut code = Code::default();
    init_scalar_area(&mut code, &[]);
    let mut st = Scalars(0);
    for r in 1..=sub.params.min(5) {
        st.set(r);
    }
    let cx = Cx {
        region: Region::Stack,
        reserved: 0,
        has_ctx: false,
        sub: Some(index),
        nsubs,
        iters: SUB_ITERATIONS,
        fn_iters: SUB_ITERATIONS,
    };
    stmt::lower_block(&sub.body, &cx, &mut st, &mut code, subs)?;
    let r = stmt::read(&cx, &mut st, &mut code, sub.ret);
    if r != 0 {
        code.mov_reg(0, r);
    }
    code.push(Insn::Exit);
    Ok(code)
}
