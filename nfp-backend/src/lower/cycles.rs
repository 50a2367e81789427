//! Static cycle estimate of lowered code: the cheapest and the dearest path from the entry to
//! an `Exit`, each instruction charged its [`cost::insn_cycles`](crate::cost::insn_cycles)
//! issue + wait cycles and taken branches the branch penalty.
//!
//! Why only an estimate: loops (bounded loops of privileged programs) are cut at their back
//! edges, so the maximum counts each loop body once; `rtn` is assumed to return to any
//! bpf-to-bpf return point (exact for single-call-site subprograms).

use crate::cost::{Latencies, insn_cycles};
use crate::target::{Cond, MeInsn};

/// (successor, extra cycles on that edge).
fn successors(code: &[MeInsn], pc: usize, returns: &[usize], lat: &Latencies) -> Vec<(usize, u64)> {
    let taken = u64::from(lat.branch_taken_penalty);
    match code[pc] {
        MeInsn::Br {
            cond: Cond::Always,
            target,
            ..
        } => vec![(usize::from(target), taken)],
        MeInsn::Br { target, .. } | MeInsn::BrBit { target, .. } => {
            vec![(usize::from(target), taken), (pc + 1, 0)]
        }
        MeInsn::Rtn { .. } => returns.iter().map(|&r| (r, taken)).collect(),
        MeInsn::Exit => Vec::new(),
        _ => vec![(pc + 1, 0)],
    }
}

/// `(min, max)` cycles over entry-to-exit paths; `(0, 0)` for code without an exit.
pub fn estimate(code: &[MeInsn], returns: &[usize], lat: &Latencies) -> (u64, u64) {
    let n = code.len();
    if n == 0 {
        return (0, 0);
    }
    // Iterative DFS for a post-order, marking back edges (edges to nodes on the stack).
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut order = Vec::with_capacity(n);
    let mut back = std::collections::HashSet::new();
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    state[0] = 1;
    while let Some(&mut (v, ref mut i)) = stack.last_mut() {
        let succ = successors(code, v, returns, lat);
        if *i < succ.len() {
            let (w, _) = succ[*i];
            *i += 1;
            if w >= n {
                continue;
            }
            match state[w] {
                0 => {
                    state[w] = 1;
                    stack.push((w, 0));
                }
                1 => {
                    back.insert((v, w));
                }
                _ => {}
            }
        } else {
            state[v] = 2;
            order.push(v);
            stack.pop();
        }
    }
    // Post-order: successors come first, so one pass computes cost-to-exit.
    const NONE: (u64, u64) = (u64::MAX, 0);
    let mut best = vec![NONE; n];
    let mut reach_exit = vec![false; n];
    for &v in &order {
        let c = insn_cycles(&code[v], lat);
        let own = u64::from(c.issue) + u64::from(c.wait);
        if matches!(code[v], MeInsn::Exit) {
            best[v] = (own, own);
            reach_exit[v] = true;
            continue;
        }
        let mut acc = NONE;
        let mut any = false;
        for (w, extra) in successors(code, v, returns, lat) {
            if w >= n || back.contains(&(v, w)) || !reach_exit[w] {
                continue;
            }
            any = true;
            acc.0 = acc.0.min(best[w].0 + extra);
            acc.1 = acc.1.max(best[w].1 + extra);
        }
        if any {
            best[v] = (acc.0 + own, acc.1 + own);
            reach_exit[v] = true;
        }
    }
    if reach_exit[0] { best[0] } else { (0, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{AluOp, Dst, Src};

    #[test]
    fn diamond_min_and_max() {
        let alu = MeInsn::Alu {
            op: AluOp::PassB,
            dst: Dst::None,
            a: Src::None,
            b: Src::Imm(0),
        };
        let code = vec![
            MeInsn::Br {
                cond: Cond::Eq,
                target: 3,
                defer: 0,
            },
            alu,
            alu,
            MeInsn::Exit,
        ];
        let lat = Latencies::NFP4000;
        let (lo, hi) = estimate(&code, &[], &lat);
        let exit = u64::from(lat.exit);
        assert_eq!(lo, 1 + u64::from(lat.branch_taken_penalty) + exit);
        assert_eq!(hi, 3 + exit);
    }
}
