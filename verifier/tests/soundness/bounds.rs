//! Snippets where safety rests on scalar bounds: an index bounded by a branch or by ALU
//! operations before it offsets a map value, packet checks written in each comparison form.
//! The generator computes the index's exact range itself; the unsafe form reaches one past.

use crate::mutations::Gen;

/// An index bounded by a comparison, then added to a map value pointer.
pub(crate) fn map_branch(g: &mut Gen, bad: bool) -> String {
    let m = g.rng.below(2) as u32;
    let vs: i64 = if m == 0 { 16 } else { 48 };
    let l = g.label();
    // A 32-bit context field (zero-extended) or a full 64-bit unknown (ktime).
    let wide = g.rng.chance(50);
    let src = if wide {
        "call ktime_get_ns\nmov r7, r0\n".to_string()
    } else {
        g.unknown(7)
    };
    let lim = vs - 1;
    let (cmp, at, sz) = if !bad {
        match g.rng.below(4) {
            0 => (format!("jgt r7, {lim}, {l}"), 0, "b"),
            1 => (format!("jge r7, {vs}, {l}"), 0, "b"),
            2 => (format!("jgt r7, {}, {l}", lim - 3), 0, "w"),
            _ => (format!("jlt r7, {vs}, +1\nja {l}"), 0, "b"),
        }
    } else {
        let mut forms = vec![
            (format!("jgt r7, {vs}, {l}"), 0, "b"),
            (format!("jgt r7, {lim}, {l}"), 0, "h"),
            (format!("jgt r7, {}, {l}", lim - 3), 1, "w"),
            (format!("jlt r7, {vs}, {l}"), 0, "b"),
            (format!("jge r7, {}, {l}", vs + 1), 0, "b"),
        ];
        if wide {
            forms.push((format!("jsgt r7, {lim}, {l}"), 0, "b"));
            forms.push((format!("jgt32 r7, {lim}, {l}"), 0, "b"));
            forms.push((format!("jsge r7, {vs}, {l}"), 0, "b"));
        }
        g.rng.pick(&forms).clone()
    };
    let look = g.lookup(m, true, &l);
    let acc = g.access("r0", sz, at);
    format!("{src}{look}{cmp}\nadd r0, r7\n{acc}{l}:\n")
}

/// A masked index transformed by ALU operations whose result range the generator tracks.
pub(crate) fn alu_bounds(g: &mut Gen, bad: bool) -> String {
    let m = g.rng.below(2) as u32;
    let vs: i64 = if m == 0 { 16 } else { 48 };
    let l = g.label();
    let mask = *g.rng.pick(&[1i64, 3, 7, 15, 31]);
    let mut text = format!("{}and r7, {mask}\n", g.unknown(7));
    let (mut lo, mut hi) = (0i64, mask);
    for _ in 0..1 + g.rng.below(3) {
        let w = if g.rng.chance(30) { "32" } else { "" };
        let (op, k) = match g.rng.below(7) {
            0 => ("add", g.rng.below(6) as i64),
            1 => ("mul", 1 + g.rng.below(3) as i64),
            2 => ("lsh", g.rng.below(3) as i64),
            3 => ("rsh", g.rng.below(3) as i64),
            4 => ("div", 1 + g.rng.below(4) as i64),
            5 => ("mod", 1 + g.rng.below(16) as i64),
            _ => ("sub", g.rng.below(3) as i64),
        };
        (lo, hi) = match op {
            "add" => (lo + k, hi + k),
            "mul" => (lo * k, hi * k),
            "lsh" => (lo << k, hi << k),
            "rsh" => (lo >> k, hi >> k),
            "div" => (lo / k, hi / k),
            "mod" => (0, hi.min(k - 1)),
            _ => (lo - k, hi - k),
        };
        text.push_str(&format!("{op}{w} r7, {k}\n"));
        if lo < 0 {
            // A 32-bit result would wrap to a huge positive value; keep the tracked range
            // honest by stopping here (it is unsafe either way).
            break;
        }
    }
    let at = if bad {
        vs - hi + g.rng.below(3) as i64
    } else {
        (vs - 1 - hi).max(0)
    };
    let look = g.lookup(m, true, &l);
    let acc = g.access("r0", "b", at);
    format!("{text}{look}add r0, r7\n{acc}{l}:\n")
}

/// Packet bounds checks in every comparison form, with the access one byte short of or one
/// byte past the proven range.
pub(crate) fn pkt_compare(g: &mut Gen, bad: bool) -> String {
    let need = 2 + g.rng.below(40);
    let l = g.label();
    let k = g.label();
    let at = if bad { need } else { need - 1 };
    let load = g.pkt_load(need);
    let acc = g.access("r2", "b", at as i64);
    match g.rng.below(8) {
        // Fall through when in bounds.
        0 => format!("{load}jgt r4, r3, {l}\n{acc}{l}:\n"),
        1 => format!("{load}jlt r3, r4, {l}\n{acc}{l}:\n"),
        2 => format!("{load}jge r4, r3, {l}\n{acc}{l}:\n"),
        3 => format!("{load}jle r3, r4, {l}\n{acc}{l}:\n"),
        // Jump when in bounds.
        4 => format!("{load}jle r4, r3, {k}\nja {l}\n{k}:\n{acc}{l}:\n"),
        5 => format!("{load}jge r3, r4, {k}\nja {l}\n{k}:\n{acc}{l}:\n"),
        6 => format!("{load}jlt r4, r3, {k}\nja {l}\n{k}:\n{acc}{l}:\n"),
        // 32-bit comparison of packet pointers: no range learnt at all.
        _ => {
            if bad {
                format!("{load}jgt32 r4, r3, {l}\n{}{l}:\n", g.access("r2", "b", 0))
            } else {
                format!("{load}jgt r4, r3, {l}\n{acc}{l}:\n")
            }
        }
    }
}

/// A bounded scalar spilled to the stack, the slot (partly) overwritten or filled at another
/// width, the fill used as a map value offset: the bounds must survive only an exact fill.
pub(crate) fn spill_scalar(g: &mut Gen, bad: bool) -> String {
    let m = g.rng.below(2) as u32;
    let vs: i64 = if m == 0 { 16 } else { 48 };
    let l = g.label();
    let slot = -16 - 8 * g.rng.below(6) as i64;
    let src = format!("{}and r7, 15\n", g.unknown(7));
    let spill = match (bad, g.rng.below(4)) {
        (false, 0 | 1) => format!("stxdw [r10{slot}], r7\nldxdw r7, [r10{slot}]\n"),
        (false, 2) => format!("stxdw [r10{slot}], r7\nldxw r7, [r10{slot}]\n"),
        (false, _) => format!("stxw [r10{slot}], r7\nldxw r7, [r10{slot}]\n"),
        (true, 0) => format!(
            "stxdw [r10{slot}], r7\nstb [r10{:+}], -1\nldxdw r7, [r10{slot}]\n",
            slot + g.rng.below(8) as i64
        ),
        (true, 1) => format!(
            "stxdw [r10{slot}], r7\nstw [r10{:+}], 1\nldxdw r7, [r10{slot}]\n",
            slot + 4
        ),
        (true, 2) => format!("stdw [r10{slot}], -1\nstxw [r10{slot}], r7\nldxdw r7, [r10{slot}]\n"),
        (true, _) => format!(
            "stxdw [r10{slot}], r7\nmov r8, 64\nlock add [r10{slot}], r8\nldxdw r7, [r10{slot}]\n"
        ),
    };
    let look = g.lookup(m, true, &l);
    format!(
        "{src}{spill}{look}add r0, r7\nldxb r0, [r0+{}]\n{l}:\nmov r8, 8\n",
        vs - 16
    )
}
