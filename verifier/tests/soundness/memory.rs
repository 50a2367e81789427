//! Snippets that access memory: packet, stack, map values, context; uninitialised reads.
//! Each takes the generator and whether to write the unsafe form.

use crate::mutations::{Gen, Profile};

pub(crate) fn pkt_beyond(g: &mut Gen, bad: bool) -> String {
    let (sz, n) = g.size();
    let need = n + g.rng.below(40);
    let at = if bad {
        need - n + 1 + g.rng.below(8)
    } else {
        g.rng.below(need - n + 1)
    };
    let l = g.label();
    let cond = g.rng.pick(&["jgt r4, r3", "jlt r3, r4"]);
    let acc = g.access("r2", sz, at as i64);
    format!("{}{cond}, {l}\n{acc}{l}:\n", g.pkt_load(need))
}

pub(crate) fn pkt_before(g: &mut Gen, bad: bool) -> String {
    let need = 8 + g.rng.below(32);
    let l = g.label();
    let k = 1 + g.rng.below(16) as i64;
    let body = match (bad, g.rng.below(2)) {
        (false, _) => g.access("r2", "b", 0),
        (true, 0) => g.access("r2", "b", -k),
        (true, _) => format!("sub r2, {k}\n{}", g.access("r2", "b", 0)),
    };
    format!("{}jgt r4, r3, {l}\n{body}{l}:\n", g.pkt_load(need))
}

pub(crate) fn pkt_unchecked(g: &mut Gen, bad: bool) -> String {
    let need = 4 + g.rng.below(32);
    let l = g.label();
    let (d, _) = g.pkt_offsets();
    let acc = g.access("r2", "w", 0);
    match (bad, g.rng.below(3)) {
        (false, _) => format!("{}jgt r4, r3, {l}\n{acc}{l}:\n", g.pkt_load(need)),
        (true, 0) => format!("{}{acc}", g.pkt_load(need)),
        // Checked, then data re-read: the fresh pointer has no range.
        (true, 1) => format!(
            "{}jgt r4, r3, {l}\nldxw r2, [r6+{d}]\n{acc}{l}:\n",
            g.pkt_load(need)
        ),
        // A checked copy, an access through another, unchecked, pointer.
        (true, _) => format!(
            "{}jgt r4, r3, {l}\nldxw r5, [r6+{d}]\nldxw r0, [r5+0]\n{l}:\n",
            g.pkt_load(need)
        ),
    }
}

pub(crate) fn pkt_wrong_check(g: &mut Gen, bad: bool) -> String {
    let need = 4 + g.rng.below(32);
    let l = g.label();
    let cond = if bad {
        *g.rng.pick(&[
            "jle r4, r3",
            "jsgt r4, r3",
            "jeq r4, r3",
            "jne r4, r3",
            "jslt r3, r4",
            "jgt r3, r4",
        ])
    } else {
        *g.rng.pick(&["jgt r4, r3", "jlt r3, r4"])
    };
    let acc = g.access("r2", "w", 0);
    format!("{}{cond}, {l}\n{acc}{l}:\n", g.pkt_load(need))
}

pub(crate) fn pkt_end(g: &mut Gen, bad: bool) -> String {
    let need = 4 + g.rng.below(32);
    let l = g.label();
    let pre = match (bad, g.rng.below(4)) {
        (false, _) => String::new(),
        (true, 0) => "add r3, 1\n".to_string(),
        (true, 1) => "sub r3, 8\n".to_string(),
        (true, 2) => "ldxb r0, [r3+0]\n".to_string(),
        (true, _) => "ldxb r0, [r3-1]\n".to_string(),
    };
    format!(
        "{}{pre}jgt r4, r3, {l}\nldxb r0, [r2+0]\n{l}:\n",
        g.pkt_load(need)
    )
}

pub(crate) fn pkt_var(g: &mut Gen, bad: bool) -> String {
    let (d, e) = g.pkt_offsets();
    let l = g.label();
    let mask = *g.rng.pick(&[7i64, 15, 63, 255]);
    let k = 1 + g.rng.below(8);
    let u = g.unknown(5);
    let (and, at, check_first) = match (bad, g.rng.below(3)) {
        (false, _) => (format!("and r5, {mask}\n"), k - 1, false),
        (true, 0) => (String::new(), k - 1, false),
        (true, 1) => (format!("and r5, {mask}\n"), k, false),
        (true, _) => (format!("and r5, {mask}\n"), k - 1, true),
    };
    if check_first {
        // The check covers data + k, then a variable offset is added: no range left.
        format!(
            "{u}{and}ldxw r2, [r6+{d}]\nldxw r3, [r6+{e}]\nmov r4, r2\nadd r4, {k}\njgt r4, r3, {l}\nadd r2, r5\nldxb r0, [r2+{at}]\n{l}:\n"
        )
    } else {
        format!(
            "{u}{and}ldxw r2, [r6+{d}]\nldxw r3, [r6+{e}]\nadd r2, r5\nmov r4, r2\nadd r4, {k}\njgt r4, r3, {l}\nldxb r0, [r2+{at}]\n{l}:\n"
        )
    }
}

pub(crate) fn stack_oob(g: &mut Gen, bad: bool) -> String {
    let (sz, n) = g.size();
    let n = n as i64;
    if !bad {
        let off = -n * (1 + g.rng.below((512 / n) as u64) as i64);
        return format!("st{sz} [r10{off}], 1\nldx{sz} r0, [r10{off}]\n");
    }
    let off = *g.rng.pick(&[0, n, 8, -n / 2, -512 - n, -520, -1024, 4096]);
    // -n/2 crosses 0 for n ≥ 2 (and is misaligned); for n = 1 it is 0, also outside.
    match g.rng.below(3) {
        0 => format!("st{sz} [r10{off:+}], 1\n"),
        1 => format!("stx{sz} [r10{off:+}], r7\n"),
        _ => format!("mov r2, r10\nadd r2, {off}\nldx{sz} r0, [r2+0]\n"),
    }
}

pub(crate) fn stack_var(g: &mut Gen, bad: bool) -> String {
    let u = g.unknown(5);
    let (base, mask) = if bad {
        *g.rng.pick(&[
            (-64i64, 127i64),
            (-8, 15),
            (-32, 63),
            (-64, 0xffff),
            (-512, 1023),
        ])
    } else {
        *g.rng
            .pick(&[(-64i64, 63i64), (-8, 7), (-512, 511), (-128, 31)])
    };
    let acc = g.access("r2", "b", 0);
    let and = if bad && g.rng.chance(20) {
        String::new()
    } else {
        format!("and r5, {mask}\n")
    };
    format!("{u}{and}mov r2, r10\nadd r2, {base}\nadd r2, r5\n{acc}")
}

pub(crate) fn stack_misaligned(g: &mut Gen, bad: bool) -> String {
    let (sz, n) = *g.rng.pick(&[("h", 2i64), ("w", 4), ("dw", 8)]);
    let slot = -16 - 8 * g.rng.below(8) as i64;
    let off = if bad {
        slot + 1 + g.rng.below(n as u64 - 1) as i64
    } else {
        slot
    };
    let src = if g.profile == Profile::SocketUnpriv || sz != "dw" {
        "r7"
    } else {
        *g.rng.pick(&["r6", "r10", "r7"])
    };
    format!("stx{sz} [r10{off}], {src}\nldx{sz} r0, [r10{off}]\n")
}

pub(crate) fn spill_clobber(g: &mut Gen, bad: bool) -> String {
    let field = g.ctx_field();
    let slot = -16 - 8 * g.rng.below(6) as i64;
    let clobber = if bad {
        match g.rng.below(3) {
            0 => format!("stb [r10{}], 0\n", slot + g.rng.below(8) as i64),
            1 => format!("stxw [r10{}], r7\n", slot + 4 * g.rng.below(2) as i64),
            _ => format!("sth [r10{}], 0\n", slot + 2 * g.rng.below(4) as i64),
        }
    } else {
        String::new()
    };
    format!("stxdw [r10{slot}], r6\n{clobber}ldxdw r1, [r10{slot}]\nldxw r0, [r1+{field}]\n")
}

pub(crate) fn map_oob(g: &mut Gen, bad: bool) -> String {
    let m = g.rng.below(2) as u32;
    let vs: i64 = if m == 0 { 16 } else { 48 };
    let (sz, n) = g.size();
    let n = n as i64;
    let off = if !bad {
        g.rng.below((vs - n + 1) as u64) as i64
    } else if g.rng.chance(70) {
        vs - n + 1 + g.rng.below(8) as i64
    } else {
        -(1 + g.rng.below(8) as i64)
    };
    let l = g.label();
    let look = g.lookup(m, true, &l);
    let acc = g.access("r0", sz, off);
    format!("{look}{acc}{l}:\n")
}

pub(crate) fn map_var(g: &mut Gen, bad: bool) -> String {
    let m = g.rng.below(2) as u32;
    let vs: i64 = if m == 0 { 16 } else { 48 };
    let l = g.label();
    let (and, sz, at) = if !bad {
        let mask = *g.rng.pick(&[7i64, 15]);
        (
            format!("and r7, {mask}\n"),
            "b",
            g.rng.below((vs - mask) as u64) as i64,
        )
    } else {
        match g.rng.below(4) {
            0 => (String::new(), "b", 0),
            1 => (
                format!("and r7, {}\n", g.rng.pick(&[vs, 63, 255, 0xffff])),
                "b",
                0,
            ),
            2 => (
                "and r7, 15\n".to_string(),
                "w",
                vs - 15 - 3 + g.rng.below(3) as i64,
            ),
            _ => ("and r7, 7\n".to_string(), "b", vs - 7),
        }
    };
    let u = g.unknown(7);
    let look = g.lookup(m, true, &l);
    let acc = g.access("r0", sz, at);
    format!("{u}{look}{and}add r0, r7\n{acc}{l}:\n")
}

pub(crate) fn map_null(g: &mut Gen, bad: bool) -> String {
    let m = g.rng.below(2) as u32;
    let l = g.label();
    let (sz, _) = *g.rng.pick(&[("b", 1), ("w", 4)]);
    match (bad, g.rng.below(3)) {
        (false, _) => {
            let look = g.lookup(m, true, &l);
            let acc = g.access("r0", sz, 0);
            format!("{look}{acc}{l}:\n")
        }
        (true, 0) => {
            let look = g.lookup(m, false, &l);
            let acc = g.access("r0", sz, 0);
            format!("{look}{acc}")
        }
        (true, 1) => {
            let look = g.lookup(m, false, &l);
            let acc = g.access("r0", sz, 0);
            format!("{look}jne r0, 0, {l}\n{acc}{l}:\n")
        }
        (true, _) => {
            let look = g.lookup(m, false, &l);
            let acc = g.access("r0", sz, 0);
            format!("{look}jeq r0, 1, {l}\n{acc}{l}:\n")
        }
    }
}

pub(crate) fn uninit_reg(g: &mut Gen, bad: bool) -> String {
    let r = if bad { 1 + g.rng.below(5) } else { 0 };
    let op = g.rng.pick(&["mov", "add", "xor"]);
    match g.rng.below(2) {
        0 => format!("call get_prandom_u32\n{op} r7, r{r}\n"),
        _ => {
            let l = g.label();
            let look = g.lookup(1, false, &l);
            let r = if r == 0 { 0 } else { 1 + g.rng.below(5) };
            format!("{look}jne r{r}, 0, {l}\nmov r7, 1\n{l}:\n")
        }
    }
}

pub(crate) fn uninit_stack(g: &mut Gen, bad: bool) -> String {
    let off = -72 - 8 * g.rng.below(55) as i64;
    match (bad, g.rng.below(3)) {
        (false, _) => format!("stdw [r10{off}], 1\nldxdw r0, [r10{off}]\n"),
        (true, 0) => format!("ldxdw r0, [r10{off}]\n"),
        (true, 1) => format!("stw [r10{off}], 1\nldxdw r0, [r10{off}]\n"),
        (true, _) => {
            let l = g.label();
            format!(
                "lddw r1, map_fd 0\nmov r2, r10\nadd r2, {off}\ncall map_lookup_elem\njeq r0, 0, {l}\n{l}:\n"
            )
        }
    }
}

pub(crate) fn ctx_bad(g: &mut Gen, bad: bool) -> String {
    let field = g.ctx_field();
    if !bad {
        return format!("ldxw r0, [r6+{field}]\n");
    }
    let xdp = g.profile == Profile::Xdp;
    let sock = matches!(g.profile, Profile::Socket | Profile::SocketUnpriv);
    let mut options: Vec<String> = vec![
        format!("ldxdw r0, [r6+{}]", if xdp { 12 } else { 0 }),
        format!("ldxw r0, [r6+{}]", field + 1 + g.rng.below(3) as i64),
        format!(
            "ldxw r0, [r6+{}]",
            if xdp {
                24 + 4 * g.rng.below(4)
            } else {
                192 + 4 * g.rng.below(8)
            }
        ),
        "ldxw r0, [r6-4]".to_string(),
        format!("stw [r6+{}], 0", if xdp { 12 } else { 0 }),
        format!("stxw [r6+{}], r6", if xdp { 16 } else { 8 }),
    ];
    if sock {
        options.push("ldxw r0, [r6+76]".to_string());
        options.push("stw [r6+8], 1".to_string());
    }
    if xdp {
        options.push("ldxh r0, [r6+0]".to_string());
        options.push("ldxw r0, [r6+20]".to_string());
    }
    format!("{}\n", g.rng.pick(&options))
}

pub(crate) fn ctx_modified(g: &mut Gen, bad: bool) -> String {
    let field = g.ctx_field();
    match (bad, g.rng.below(3)) {
        (false, _) => format!("mov r1, r6\nldxw r0, [r1+{field}]\n"),
        (true, 0) => format!("mov r1, r6\nadd r1, 4\nldxw r0, [r1{:+}]\n", field - 4),
        (true, 1) => format!("mov r1, r6\nsub r1, -4\nldxw r0, [r1{:+}]\n", field - 4),
        (true, _) => format!(
            "{}and r2, 4\nmov r1, r6\nadd r1, r2\nldxw r0, [r1+{field}]\n",
            g.unknown(2)
        ),
    }
}
