//! `bpf_trace_printk`: formats like the kernel's `bpf_bprintf_prepare` + `bstr_printf` and
//! captures the line in the run outcome instead of the trace pipe.
//!
//! Supported conversions: `%d %i %u %x %X` with `l`/`ll` modifiers, flags `0 - + space`
//! and a width; `%c`; `%s` (read from program memory; an unreadable string prints empty, as
//! the kernel's fault-tolerant copy does); `%p`/`%px`/`%pK` printed as 16 hex digits (the
//! kernel hashes plain `%p`, which is not reproducible); `%%`. Anything else, a missing NUL
//! or more than three arguments is `-EINVAL`, as in the kernel.

use super::super::env::Env;
use super::super::fault::FaultKind;
use super::{EINVAL, errno};

/// `MAX_BPF_PRINTF_BUF`.
const BUF: usize = 1024;
/// `MAX_TRACE_PRINTK_VARARGS`.
const MAX_ARGS: usize = 3;

/// `long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)`.
pub(super) fn trace_printk(env: &mut Env<'_>, a: [u64; 5]) -> Result<u64, FaultKind> {
    let size = (a[1] as u32).min(4096) as usize;
    let mut fmt = std::mem::take(&mut env.st.scratch);
    fmt.clear();
    fmt.resize(size, 0);
    let read = env.mem.copy_in(a[0], &mut fmt);
    let res = read.map(|()| format(env, &fmt, [a[2], a[3], a[4]]));
    env.st.scratch = fmt;
    match res? {
        Some(line) => {
            let len = line.len() as u64;
            let mut line = line;
            if line.len() >= BUF {
                let mut cut = BUF - 1;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            env.st.printk.push(line);
            Ok(len)
        }
        None => Ok(errno(EINVAL)),
    }
}

/// Formats `fmt` (which must contain a NUL); `None` for what the kernel rejects.
fn format(env: &Env<'_>, fmt: &[u8], args: [u64; MAX_ARGS]) -> Option<String> {
    let end = fmt.iter().position(|&b| b == 0)?;
    let f = &fmt[..end];
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    let mut out: Vec<u8> = Vec::new();
    let mut next_arg = 0;
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            out.push(b'%');
            i += 2;
            continue;
        }
        if next_arg >= MAX_ARGS {
            return None;
        }
        let arg = args[next_arg];
        next_arg += 1;
        i += 1;
        let (mut zero, mut left, mut plus, mut space) = (false, false, false, false);
        while matches!(at(i), b'0' | b'+' | b'-' | b' ') {
            match at(i) {
                b'0' => zero = true,
                b'-' => left = true,
                b'+' => plus = true,
                _ => space = true,
            }
            i += 1;
        }
        let mut width = 0usize;
        while at(i).is_ascii_digit() {
            width = width
                .saturating_mul(10)
                .saturating_add((at(i) - b'0') as usize);
            i += 1;
        }
        let body: String;
        let mut numeric = true;
        match at(i) {
            b'p' => {
                // %p, %px, %pK: the pointer value in hex.
                if matches!(at(i + 1), b'x' | b'K') {
                    i += 1;
                } else if at(i + 1).is_ascii_alphanumeric() {
                    return None; // %pI4, %pB, ... are not modelled
                }
                body = format!("{arg:016x}");
                i += 1;
            }
            b's' => {
                body = read_str(env, arg);
                numeric = false;
                i += 1;
            }
            b'c' => {
                body = char::from(arg as u8).to_string();
                numeric = false;
                i += 1;
            }
            _ => {
                let mut long = 0;
                while at(i) == b'l' && long < 2 {
                    long += 1;
                    i += 1;
                }
                let v = if long == 0 { arg as u32 as u64 } else { arg };
                body = match at(i) {
                    b'd' | b'i' => {
                        let s = if long == 0 {
                            v as u32 as i32 as i64
                        } else {
                            v as i64
                        };
                        let sign = if s < 0 {
                            "-"
                        } else if plus {
                            "+"
                        } else if space {
                            " "
                        } else {
                            ""
                        };
                        format!("{sign}{}", s.unsigned_abs())
                    }
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => return None,
                };
                i += 1;
            }
        }
        pad(&mut out, &body, width, left, zero && numeric && !left);
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn pad(out: &mut Vec<u8>, body: &str, width: usize, left: bool, zero: bool) {
    let fill = width.saturating_sub(body.len());
    if left {
        out.extend_from_slice(body.as_bytes());
        out.resize(out.len() + fill, b' ');
    } else if zero {
        let (sign, digits) = match body.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => body.split_at(1),
            _ => ("", body),
        };
        out.extend_from_slice(sign.as_bytes());
        out.resize(out.len() + fill, b'0');
        out.extend_from_slice(digits.as_bytes());
    } else {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(body.as_bytes());
    }
}

/// A NUL-terminated string at `addr`, at most `BUF` bytes; empty if unreadable.
fn read_str(env: &Env<'_>, addr: u64) -> String {
    let mut s = Vec::new();
    let mut b = [0u8; 1];
    while s.len() < BUF {
        if env
            .mem
            .copy_in(addr.wrapping_add(s.len() as u64), &mut b)
            .is_err()
            || b[0] == 0
        {
            break;
        }
        s.push(b[0]);
    }
    String::from_utf8_lossy(&s).into_owned()
}
