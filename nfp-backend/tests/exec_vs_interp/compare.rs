//! Runs one program through the reference microengine executor and vm-core's interpreter
//! and compares everything observable: the full 64-bit r0, the packet bytes after the run and
//! every entry of every map.

use nfp_backend::compile::Compiled;
use nfp_backend::exec::{Executor, RunOpts};
use vm_core::Program;
use vm_core::asm::{Syntax, disassemble};
use vm_core::interp::{Vm, VmConfig};
use vm_core::maps::MapSet;

/// Both engines loaded with the same program and the same initial map contents; state
/// (maps) is kept across packets in both.
pub struct Pair<'a> {
    program: &'a Program,
    compiled: &'a Compiled,
    vm: Vm,
    maps: MapSet,
    ex: Executor,
}

/// Prefill applied identically to both engines' maps: `(fd, key, value)`.
pub type Prefill = [(usize, Vec<u8>, Vec<u8>)];

impl<'a> Pair<'a> {
    /// Loads both engines, the executor running on ME context `thread` (each context has
    /// its own stack area and packet buffer, so addressing bugs show on contexts other
    /// than 0); an interpreter that refuses the program is an error message.
    pub fn new(
        program: &'a Program,
        compiled: &'a Compiled,
        prefill: &Prefill,
        thread: u8,
    ) -> Result<Self, String> {
        let mut vm =
            Vm::new(program, VmConfig::default()).map_err(|e| format!("interpreter load: {e}"))?;
        let mut maps =
            MapSet::new(&program.maps, vm.config().ncpus).map_err(|e| format!("maps: {e}"))?;
        for (fd, k, v) in prefill {
            if let Some(m) = vm.maps_mut().get_mut(*fd) {
                m.user_update(k, v, 0)
                    .map_err(|e| format!("prefill interp: {e:?}"))?;
            }
            if let Some(m) = maps.get_mut(*fd) {
                m.user_update(k, v, 0)
                    .map_err(|e| format!("prefill exec: {e:?}"))?;
            }
        }
        Ok(Pair {
            program,
            compiled,
            vm,
            maps,
            ex: Executor::new(RunOpts {
                thread,
                ..RunOpts::default()
            }),
        })
    }

    /// Runs one packet in both; `Err` describes the first difference (with everything needed
    /// to reproduce it).
    pub fn run(&mut self, packet: &[u8]) -> Result<(), String> {
        let want = self.vm.run(packet);
        let got = self.ex.run(&self.compiled.code, &mut self.maps, packet);
        let mut diffs = Vec::new();
        match (&want, &got) {
            (Ok(w), Ok(g)) => {
                if w.retval != g.retval {
                    diffs.push(format!(
                        "retval: interp {:#x}, executor {:#x}",
                        w.retval, g.retval
                    ));
                }
                if w.packet != g.packet {
                    let first = w.packet.iter().zip(&g.packet).position(|(a, b)| a != b);
                    diffs.push(format!(
                        "packet bytes differ (lengths interp {} executor {}, first difference at byte {:?})\n  interp:   {}\n  executor: {}",
                        w.packet.len(),
                        g.packet.len(),
                        first,
                        hex(&w.packet),
                        hex(&g.packet)
                    ));
                }
            }
            (Err(e), Ok(g)) => diffs.push(format!(
                "interpreter failed ({e}) but executor returned {:#x}",
                g.retval
            )),
            (Ok(w), Err(e)) => diffs.push(format!(
                "executor failed ({e}) but interpreter returned {:#x}",
                w.retval
            )),
            (Err(a), Err(b)) => diffs.push(format!("both failed: interp {a}; executor {b}")),
        }
        for fd in 0..self.program.maps.len() {
            let a = self.vm.maps().get(fd).map(|m| m.entries());
            let b = self.maps.get(fd).map(|m| m.entries());
            if a != b {
                diffs.push(format!(
                    "map {fd} ({}) entries differ:\n  interp:   {}\n  executor: {}",
                    self.program.maps[fd].name,
                    entries(a.as_deref()),
                    entries(b.as_deref())
                ));
            }
        }
        if diffs.is_empty() {
            return Ok(());
        }
        Err(format!(
            "MISMATCH on packet of {} bytes: {}\n{}\n--- packet ---\n{}\n{}",
            packet.len(),
            diffs.join("\n"),
            describe(self.program),
            hex(packet),
            microcode(self.compiled)
        ))
    }
}

/// The program as re-assemblable conformance text.
pub fn describe(p: &Program) -> String {
    format!(
        "--- program {} ({} slots, maps {:?}) ---\n{}",
        p.name,
        p.insns.len(),
        p.maps
            .iter()
            .map(|m| (&m.name, m.map_type, m.key_size, m.value_size, m.max_entries))
            .collect::<Vec<_>>(),
        disassemble(&p.insns, Syntax::Conformance)
    )
}

/// The microcode listing.
pub fn microcode(c: &Compiled) -> String {
    format!(
        "--- microcode ({} insns) ---\n{}",
        c.code.len(),
        nfp_backend::target::print_program(&c.code)
    )
}

/// Lowercase hex, no separators.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn entries(e: Option<&[(Vec<u8>, Vec<u8>)]>) -> String {
    match e {
        None => "(no map)".into(),
        Some(e) => e
            .iter()
            .map(|(k, v)| format!("{}={}", hex(k), hex(v)))
            .collect::<Vec<_>>()
            .join(" "),
    }
}
