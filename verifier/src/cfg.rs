//! Control-flow checks before any path is walked (the kernel's `add_subprog`,
//! `check_subprogs` and `check_cfg`).
//!
//! Why separately from the walk: these properties hold for every path at once — each
//! subprogram ends in `exit` or a jump (no falling into the next one), jumps stay inside their
//! subprogram, every instruction is reachable, no jump lands in the middle of an `lddw` — and
//! checking them on the graph gives the kernel's messages at the kernel's instruction, and
//! lets the walk assume a well-formed graph. Back-edges are loops: allowed when privileged
//! (the walk then proves they terminate), refused otherwise.
//!
//! The pass also marks *prune points* (conditional jumps, jump targets and call return
//! sites): the only places where the walk compares its state with stored ones.

use vm_core::isa::{CallTarget, Insn, LdImm64};

use crate::code::{Code, Slot};
use crate::error::{VResult, VerifierError};

/// Maximum number of subprograms (the kernel's `BPF_MAX_SUBPROGS`).
pub const MAX_SUBPROGS: usize = 256;

/// A bpf-to-bpf function: slots `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subprog {
    /// First slot.
    pub start: usize,
    /// One past the last slot.
    pub end: usize,
}

/// The result of the control-flow pass.
#[derive(Debug, Clone)]
pub struct Cfg {
    /// Subprograms by start, the main program first.
    pub subprogs: Vec<Subprog>,
    /// Per slot: whether the walk checks for equivalent stored states there.
    pub prune_points: Vec<bool>,
    /// Per slot: whether it can be reached other than by falling through (a jump target,
    /// a callee entry, a call's return site): the kernel's jump points, each visit of which
    /// is an entry of the path's instruction history.
    pub jmp_points: Vec<bool>,
    /// Per slot: the subprogram it belongs to.
    pub subprog_of: Vec<u32>,
    /// Whether the graph has a cycle (the search met an edge back to an instruction on its
    /// stack; calls count as edges to their callee, so a cycle of the graph without them is
    /// one with them). Without one, no slot lies on a loop and
    /// [`crate::stack_live::loop_slots`] need not run.
    pub has_cycle: bool,
}

impl Cfg {
    /// The subprogram starting at `start`.
    pub fn subprog_at(&self, start: usize) -> Option<usize> {
        self.subprogs.iter().position(|s| s.start == start)
    }
}

/// Successor slots of the instruction at `pc` within its function (calls fall through;
/// their callee is reported by [`callee`]). Targets may be out of range.
pub fn successors(code: &Code, pc: usize) -> ([i64; 2], usize) {
    let next = pc as i64 + 1;
    match code.slots.get(pc) {
        Some(Slot::Insn(insn)) => match *insn {
            Insn::Ja { off, .. } => ([next + i64::from(off), 0], 1),
            Insn::Jmp { off, .. } => ([next, next + i64::from(off)], 2),
            Insn::Exit => ([0, 0], 0),
            Insn::LdImm64 { .. } => ([next + 1, 0], 1),
            _ => ([next, 0], 1),
        },
        // A bad `lddw` still occupies two slots.
        _ if matches!(code.slots.get(pc + 1), Some(Slot::Insn(Insn::LdImm64Tail))) => {
            ([next + 1, 0], 1)
        }
        _ => ([next, 0], 1),
    }
}

/// The first slot of the function called (or whose address is taken) at `pc`.
pub fn callee(code: &Code, pc: usize) -> Option<i64> {
    match code.insn(pc)? {
        Insn::Call(CallTarget::Local(rel)) => Some(pc as i64 + 1 + i64::from(*rel)),
        Insn::LdImm64 {
            value: LdImm64::Func(rel),
            ..
        } => Some(pc as i64 + 1 + i64::from(*rel)),
        _ => None,
    }
}

fn is_jump(code: &Code, pc: usize) -> bool {
    matches!(code.insn(pc), Some(Insn::Ja { .. } | Insn::Jmp { .. }))
}

/// Finds the subprograms and checks their boundaries (`add_subprog` + `check_subprogs`).
pub fn find_subprogs(code: &Code) -> VResult<Vec<Subprog>> {
    let len = code.len();
    let mut starts = vec![0usize];
    for pc in 0..len {
        if let Some(t) = callee(code, pc) {
            if t < 0 || t >= len as i64 {
                return Err(VerifierError::einval(pc, "call to invalid destination"));
            }
            starts.push(t as usize);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    if starts.len() > MAX_SUBPROGS {
        return Err(VerifierError::einval(0, "too many subprograms"));
    }
    let subprogs: Vec<Subprog> = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| Subprog {
            start,
            end: starts.get(i + 1).copied().unwrap_or(len),
        })
        .collect();
    for sp in &subprogs {
        for pc in sp.start..sp.end {
            if is_jump(code, pc) {
                let (targets, n) = successors(code, pc);
                let t = targets[n - 1];
                if t < sp.start as i64 || t >= sp.end as i64 {
                    return Err(VerifierError::einval(
                        pc,
                        format!("jump out of range from insn {pc} to {t}"),
                    ));
                }
            }
        }
        let last = sp.end - 1;
        let ok = matches!(code.insn(last), Some(Insn::Exit | Insn::Ja { .. }));
        if !ok {
            return Err(VerifierError::einval(
                last,
                "last insn is not an exit or jmp",
            ));
        }
    }
    Ok(subprogs)
}

/// What the DFS needs of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    /// A conditional jump (a prune point itself).
    CondJump,
    /// `ja` (its one edge is a branch).
    Ja,
    /// A helper or local call (its return site is a prune point).
    Call,
    /// Anything else.
    Other,
}

/// One slot's outgoing edges: fall-through or `ja` target, conditional target, callee.
#[derive(Debug, Clone, Copy)]
struct Node {
    edges: [Option<i64>; 3],
    kind: NodeKind,
}

impl Node {
    fn of(code: &Code, pc: usize) -> Node {
        let (targets, n) = successors(code, pc);
        let mut edges = [None; 3];
        for (e, &x) in edges.iter_mut().zip(&targets[..n]) {
            *e = Some(x);
        }
        edges[2] = callee(code, pc);
        let kind = match code.insn(pc) {
            Some(Insn::Jmp { .. }) => NodeKind::CondJump,
            Some(Insn::Ja { .. }) => NodeKind::Ja,
            Some(Insn::Call(_)) => NodeKind::Call,
            _ => NodeKind::Other,
        };
        Node { edges, kind }
    }
}

/// Depth-first search over the graph (`check_cfg`): back-edges, unreachable slots, jumps into
/// an `lddw`'s second half; marks prune points.
pub fn check_cfg(code: &Code, subprogs: Vec<Subprog>, allow_loops: bool) -> VResult<Cfg> {
    const UNSEEN: u8 = 0;
    const ON_STACK: u8 = 1;
    const DONE: u8 = 2;
    let len = code.len();
    // A node is on top of the stack once per outgoing edge, so its edges are derived once
    // here rather than from the instruction on every visit (which was most of this pass's
    // cost).
    let nodes: Vec<Node> = (0..len).map(|pc| Node::of(code, pc)).collect();
    let mut state = vec![UNSEEN; len];
    let mut prune = vec![false; len];
    let mut jmp = vec![false; len];
    // (node, next edge index) frames of the explicit DFS stack.
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    let mut has_cycle = false;
    state[0] = ON_STACK;
    while let Some(&(t, first_edge)) = stack.last() {
        let node = nodes[t];
        if first_edge == 0 {
            if node.kind == NodeKind::CondJump {
                prune[t] = true;
            }
            // After any call (helpers too) the path continues somewhere worth checkpointing.
            if node.kind == NodeKind::Call && t + 1 < len {
                prune[t + 1] = true;
                jmp[t + 1] = true;
            }
        }
        let mut next = None;
        let mut edge = first_edge;
        while edge < 3 {
            let i = edge;
            edge += 1;
            let Some(w) = node.edges[i] else { continue };
            if w < 0 || w >= len as i64 {
                return Err(VerifierError::einval(
                    t,
                    format!("jump out of range from insn {t} to {w}"),
                ));
            }
            let w = w as usize;
            let is_branch = i == 1 || (i == 0 && node.kind == NodeKind::Ja);
            if is_branch {
                prune[w] = true;
                jmp[w] = true;
            }
            if i == 2 {
                // Calls: the callee entry and the return site are both prune points.
                prune[w] = true;
                jmp[w] = true;
                if let Some(r) = node.edges[0]
                    && (0..len as i64).contains(&r)
                {
                    prune[r as usize] = true;
                    jmp[r as usize] = true;
                }
            }
            match state[w] {
                UNSEEN => {
                    state[w] = ON_STACK;
                    next = Some(w);
                    break;
                }
                ON_STACK if !allow_loops => {
                    return Err(VerifierError::einval(
                        t,
                        format!("back-edge from insn {t} to {w}"),
                    ));
                }
                ON_STACK => has_cycle = true,
                _ => {}
            }
        }
        if let Some(top) = stack.last_mut() {
            top.1 = edge;
        }
        match next {
            Some(w) => stack.push((w, 0)),
            None => {
                state[t] = DONE;
                stack.pop();
            }
        }
    }
    let mut pc = 0;
    while pc < len {
        if state[pc] != DONE {
            return Err(VerifierError::einval(pc, format!("unreachable insn {pc}")));
        }
        let lddw = matches!(code.insn(pc), Some(Insn::LdImm64 { .. }))
            || matches!(code.slots.get(pc + 1), Some(Slot::Insn(Insn::LdImm64Tail)));
        if lddw && pc + 1 < len {
            if state[pc + 1] != UNSEEN {
                return Err(VerifierError::einval(
                    pc,
                    format!("jump into the middle of ldimm64 insn {pc}"),
                ));
            }
            pc += 1;
        }
        pc += 1;
    }
    let mut subprog_of = vec![0u32; len];
    for (i, sp) in subprogs.iter().enumerate() {
        for s in &mut subprog_of[sp.start..sp.end] {
            *s = i as u32;
        }
    }
    Ok(Cfg {
        subprogs,
        prune_points: prune,
        jmp_points: jmp,
        subprog_of,
        has_cycle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Code {
        let raw = vm_core::asm::assemble(text).unwrap_or_default();
        Code::from_raw(&raw).0
    }

    fn cfg(text: &str, loops: bool) -> VResult<Cfg> {
        let c = code(text);
        let sp = find_subprogs(&c)?;
        check_cfg(&c, sp, loops)
    }

    #[test]
    fn unreachable_instruction_is_reported() {
        let e = cfg("mov r0, 0\nexit\nmov r0, 1\nexit", true).err();
        assert_eq!(e.map(|e| e.message), Some("unreachable insn 2".to_string()));
    }

    #[test]
    fn cycles_are_noticed_and_loop_slots_agree() {
        let cases = [
            ("mov r0, 0\nl: add r0, 1\njlt r0, 4, l\nexit", true),
            ("l: ja l", true),
            ("mov r0, 0\njeq r1, 0, +1\nmov r0, 1\nexit", false),
            ("call local f\nexit\nf:\nmov r0, 1\nexit", false),
            (
                "call local f\nexit\nf:\nmov r0, 1\nl: add r0, 1\njlt r0, 3, l\nexit",
                true,
            ),
        ];
        for (text, cyclic) in cases {
            let c = code(text);
            let got = cfg(text, true).map(|g| g.has_cycle).ok();
            assert_eq!(got, Some(cyclic), "{text}");
            // Without a cycle no slot is on one (what lets the walk skip the search).
            let on_loop = crate::stack_live::loop_slots(&c).contains(&true);
            assert_eq!(on_loop, cyclic, "{text}");
        }
    }

    #[test]
    fn back_edges_need_loops() {
        let text = "mov r0, 0\nl: add r0, 1\njlt r0, 4, l\nexit";
        assert!(cfg(text, true).is_ok());
        let e = cfg(text, false).err();
        assert_eq!(
            e.map(|e| e.message),
            Some("back-edge from insn 2 to 1".to_string())
        );
    }

    #[test]
    fn last_instruction_must_end_the_function() {
        let c = code("mov r0, 0\nexit\nmov r0, 1");
        let e = find_subprogs(&c).err();
        assert_eq!(
            e.map(|e| e.message),
            Some("last insn is not an exit or jmp".to_string())
        );
    }

    #[test]
    fn jump_into_lddw_is_reported_at_the_lddw() {
        let c = code("mov r0, 0\njeq r1, 0, +1\nlddw r0, 5\nexit");
        // The decoder-level target check is not used here: the cfg pass reports it.
        let sp = find_subprogs(&c).unwrap_or_default();
        let e = check_cfg(&c, sp, true).err();
        assert_eq!(
            e.map(|e| e.message),
            Some("jump into the middle of ldimm64 insn 2".to_string())
        );
    }

    #[test]
    fn subprograms_are_found_and_bounded() {
        let c = code("call local f\nexit\nf:\nmov r0, 1\nexit");
        let sp = find_subprogs(&c).unwrap_or_default();
        assert_eq!(sp.len(), 2);
        assert_eq!((sp[1].start, sp[1].end), (2, 4));
    }
}
