//! Snippets that misuse pointers: forbidden arithmetic, leaks, returns, helper arguments,
//! ring buffer records, the frame pointer.

use crate::mutations::{Gen, Profile};

/// `r1` = a pointer of a random kind, `deref` reads through it safely; `end` closes labels.
pub(crate) fn some_pointer(g: &mut Gen) -> (String, String, String) {
    let kinds: &[u8] = if matches!(g.profile, Profile::Xdp | Profile::Tc) {
        &[0, 1, 2, 3]
    } else {
        &[0, 1, 2]
    };
    match g.rng.pick(kinds) {
        0 => (
            "stdw [r10-16], 1\nmov r1, r10\n".into(),
            "ldxdw r0, [r1-16]\n".into(),
            String::new(),
        ),
        1 => {
            let f = g.ctx_field();
            (
                "mov r1, r6\n".into(),
                format!("ldxw r0, [r1+{f}]\n"),
                String::new(),
            )
        }
        2 => {
            let l = g.label();
            let look = g.lookup(1, true, &l);
            (
                format!("{look}mov r1, r0\n"),
                "ldxw r0, [r1+0]\n".into(),
                format!("{l}:\n"),
            )
        }
        _ => {
            let l = g.label();
            (
                format!("{}jgt r4, r3, {l}\nmov r1, r2\n", g.pkt_load(8)),
                "ldxw r0, [r1+0]\n".into(),
                format!("{l}:\n"),
            )
        }
    }
}

pub(crate) fn ptr_alu(g: &mut Gen, bad: bool) -> String {
    let (pre, deref, end) = some_pointer(g);
    let op = if bad {
        g.rng
            .pick(&[
                "mul r1, 2",
                "mul r1, 1",
                "div r1, 1",
                "mod r1, 64",
                "and r1, -8",
                "and r1, -1",
                "or r1, 0",
                "xor r1, 0",
                "lsh r1, 0",
                "rsh r1, 0",
                "arsh r1, 1",
                "neg r1",
                "add32 r1, 0",
                "sub32 r1, 0",
                "mov32 r1, r1",
                "be16 r1",
                "le64 r1",
            ])
            .to_string()
    } else {
        g.rng
            .pick(&["add r1, 0", "sub r1, 0", "mov r1, r1"])
            .to_string()
    };
    format!("{pre}{op}\n{deref}{end}")
}

pub(crate) fn ptr_ptr(g: &mut Gen, bad: bool) -> String {
    let (pre, deref, end) = some_pointer(g);
    if !bad {
        return format!("{pre}{deref}{end}");
    }
    let op = match g.rng.below(5) {
        0 => format!("add r1, r{}", g.rng.pick(&[6, 10])),
        1 => format!("sub r1, r{}", g.rng.pick(&[6, 10])),
        2 => "mov r5, 8\nsub r5, r1\nmov r1, r5".to_string(),
        3 => "mov r5, 8\nadd r5, r1\nmov r1, r5".to_string(),
        _ => "mov r5, 8\nmul r5, r1\nmov r1, r5".to_string(),
    };
    format!("{pre}{op}\n{deref}{end}")
}

pub(crate) fn return_ptr(g: &mut Gen, bad: bool) -> String {
    let (pre, _, end) = some_pointer(g);
    let l = g.label();
    let src = if bad { "r1" } else { "r7" };
    format!(
        "{pre}mov r7, 1\nmov r8, r1\ncall get_prandom_u32\nmov r1, r8\njeq r0, 0, {l}\nmov r0, {src}\nexit\n{l}:\n{end}mov r8, 8\n"
    )
}

pub(crate) fn ptr_leak(g: &mut Gen, bad: bool) -> String {
    let l = g.label();
    let look = g.lookup(0, true, &l);
    let body = match (bad, g.rng.below(4)) {
        (false, _) => "stxdw [r0+0], r7\n".to_string(),
        (true, 0) => format!(
            "stxdw [r0+{}], r{}\n",
            8 * g.rng.below(2),
            g.rng.pick(&[6, 10, 0])
        ),
        (true, 1) => "jeq r0, r6, +0\n".to_string(),
        (true, 2) => "mov r1, r10\nsub r1, r6\nstxdw [r0+0], r1\n".to_string(),
        (true, _) => {
            "mov r1, r0\nstxdw [r10-16], r1\nldxdw r2, [r10-16]\nstxdw [r0+8], r2\n".to_string()
        }
    };
    format!("{look}{body}{l}:\n")
}

pub(crate) fn division(g: &mut Gen, bad: bool) -> String {
    let w = if g.rng.chance(30) { "32" } else { "" };
    let op = g.rng.pick(&["div", "mod", "sdiv", "smod"]);
    if !bad {
        return match g.rng.below(2) {
            0 => format!("{op}{w} r7, {}\n", 1 + g.rng.below(9)),
            _ => format!("mov r8, 0\n{op}{w} r7, r8\n"),
        };
    }
    match g.rng.below(3) {
        0 => format!("{op}{w} r7, 0\n"),
        1 => format!("mov r1, r10\n{op} r1, 3\nldxb r0, [r1-8]\n"),
        _ => format!("{op} r7, r10\n"),
    }
}

pub(crate) fn ringbuf(g: &mut Gen, bad: bool) -> String {
    let size = 8 * (1 + g.rng.below(3));
    let l = g.label();
    let res = format!("lddw r1, map_fd 2\nmov r2, {size}\nmov r3, 0\ncall ringbuf_reserve\n");
    let submit = "mov r1, r7\nmov r2, 0\ncall ringbuf_submit\n";
    let ok = format!("stw [r7+{}], 1\n", 4 * g.rng.below(size / 4));
    let body = match (bad, g.rng.below(6)) {
        (false, _) => format!("{res}jeq r0, 0, {l}\nmov r7, r0\n{ok}{submit}"),
        (true, 0) => format!("{res}mov r7, r0\n{ok}{submit}"),
        (true, 1) => format!(
            "{res}jeq r0, 0, {l}\nmov r7, r0\nstw [r7+{}], 1\n{submit}",
            size - 3 + g.rng.below(6)
        ),
        (true, 2) => format!("{res}jeq r0, 0, {l}\nmov r7, r0\n{submit}{ok}"),
        (true, 3) => format!("{res}jeq r0, 0, {l}\nmov r7, r0\n{ok}"),
        (true, 4) => format!("{res}jeq r0, 0, {l}\nmov r7, r0\n{submit}{submit}"),
        (true, _) => format!("{res}jeq r0, 0, {l}\nmov r7, r0\nstw [r7-4], 1\n{submit}"),
    };
    format!("{body}{l}:\nmov r7, 7\n")
}

pub(crate) fn fp_write(g: &mut Gen, bad: bool) -> String {
    if !bad {
        return "mov r1, r10\nadd r1, -8\nstdw [r1+0], 1\n".to_string();
    }
    g.rng
        .pick(&[
            "mov r10, 0\n",
            "add r10, -8\n",
            "ldxdw r10, [r10-8]\n",
            "mov32 r10, r7\n",
            "neg r10\n",
        ])
        .to_string()
}

pub(crate) fn scalar_deref(g: &mut Gen, bad: bool) -> String {
    let (sz, _) = g.size();
    if !bad {
        return format!("mov r1, r10\nst{sz} [r1-8], 1\n");
    }
    match g.rng.below(3) {
        0 => format!("ldx{sz} r0, [r7+0]\n"),
        1 => format!("mov r1, 0\nst{sz} [r1+{}], 1\n", 8 * g.rng.below(4)),
        _ => format!("{}ldx{sz} r0, [r1+0]\n", g.unknown(1)),
    }
}

pub(crate) fn helper_arg(g: &mut Gen, bad: bool) -> String {
    let l = g.label();
    if !bad {
        let m = g.rng.below(2) as u32;
        let look = g.lookup(m, true, &l);
        return format!("{look}{l}:\n");
    }
    let (map, key) = match g.rng.below(6) {
        0 => (
            "lddw r1, map_fd 0\n",
            "mov r2, r10\nadd r2, -4\n".to_string(),
        ),
        1 => ("lddw r1, map_fd 0\n", "mov r2, r10\n".to_string()),
        2 => ("lddw r1, map_fd 0\n", "mov r2, r6\n".to_string()),
        3 => ("mov r1, 0\n", "mov r2, r10\nadd r2, -8\n".to_string()),
        4 => ("lddw r1, map_fd 0\n", "mov r2, 0\n".to_string()),
        _ => ("mov r1, r10\n", "mov r2, r10\nadd r2, -8\n".to_string()),
    };
    format!("stdw [r10-8], 1\n{map}{key}call map_lookup_elem\njeq r0, 0, {l}\n{l}:\n")
}

/// `*_load_bytes(ctx, 0, buf, len)`: the buffer (stack or map value) must hold `len` bytes.
pub(crate) fn helper_mem(g: &mut Gen, bad: bool) -> String {
    let helper = if g.profile == Profile::Xdp {
        "xdp_load_bytes"
    } else {
        "skb_load_bytes"
    };
    let l = g.label();
    let (buf, cap) = if g.rng.chance(50) {
        ("mov r3, r10\nadd r3, -32\n".to_string(), 32i64)
    } else {
        let look = g.lookup(1, true, &l);
        (format!("{look}mov r3, r0\n"), 48)
    };
    let field = g.ctx_field();
    let len = match (bad, g.rng.below(6)) {
        (false, 0..=2) => format!("mov r4, {}\n", 1 + g.rng.below(cap as u64)),
        (false, _) => format!("ldxw r4, [r6+{field}]\nand r4, 15\nadd r4, 1\n"),
        (true, 0) => format!("mov r4, {}\n", cap + 1 + g.rng.below(8) as i64),
        (true, 1) => format!("ldxw r4, [r6+{field}]\nand r4, 63\nadd r4, 1\n"),
        (true, 2) => format!("ldxw r4, [r6+{field}]\n"),
        (true, 3) => "mov r4, 0\n".to_string(),
        (true, 4) => "mov r4, -1\n".to_string(),
        (true, _) => "mov r4, 16\nmov r3, r10\nadd r3, -8\n".to_string(),
    };
    format!("{buf}mov r1, r6\nmov r2, 0\n{len}call {helper}\n{l}:\n")
}

/// Atomic read-modify-write instructions on each kind of memory.
pub(crate) fn atomics(g: &mut Gen, bad: bool) -> String {
    let l = g.label();
    let field = g.ctx_field();
    let pkt = matches!(g.profile, Profile::Xdp | Profile::Tc);
    if !bad {
        return match g.rng.below(4) {
            0 => "stdw [r10-16], 0\nlock add [r10-16], r7\n".to_string(),
            1 => {
                let look = g.lookup(1, true, &l);
                format!("{look}lock add [r0+{}], r7\n{l}:\n", 8 * g.rng.below(6))
            }
            2 => "stw [r10-16], 0\nlock add32 [r10-16], r7\n".to_string(),
            _ => "stdw [r10-16], 0\nmov r0, 0\nlock cmpxchg [r10-16], r7\n".to_string(),
        };
    }
    match g.rng.below(if pkt { 8 } else { 7 }) {
        0 => format!("lock add32 [r6+{field}], r7\n"),
        1 => "stdw [r10-16], 0\nlock add [r10-12], r7\n".to_string(),
        2 => {
            let look = g.lookup(1, true, &l);
            format!(
                "{look}lock add [r0{:+}], r7\n{l}:\n",
                *g.rng.pick(&[44, 48, -8])
            )
        }
        3 => format!(
            "stxdw [r10-16], r6\nlock add [r10-16], r7\nldxdw r1, [r10-16]\nldxw r0, [r1+{field}]\n"
        ),
        4 => "lock xchg [r10-16], r7\n".to_string(),
        5 => "stdw [r10-16], 0\nlock add [r10-16], r10\n".to_string(),
        6 => "lock add [r7+0], r8\n".to_string(),
        _ => format!(
            "{}jgt r4, r3, {l}\nlock add32 [r2+0], r7\n{l}:\n",
            g.pkt_load(8)
        ),
    }
}
