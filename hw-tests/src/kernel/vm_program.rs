//! Loading a vm-core [`Program`] into the kernel: create its maps, point its `lddw`s at the
//! real map descriptors, load it.
//!
//! Inside a [`Program`] a map reference (`lddw` with `BPF_PSEUDO_MAP_FD` or
//! `BPF_PSEUDO_MAP_VALUE`) carries an index into `Program::maps` in its fd field; the kernel
//! wants a live descriptor there. The patch is done on the typed instructions, so no opcode
//! arithmetic happens here.

use tracing::debug_span;
use vm_core::isa::{Insn, LdImm64};
use vm_core::{MapDef, MapType, Program};

use super::map::{MapError, MapFd, MapSpec};
use super::prog::{LoadError, LoadOptions, LoadedProgram, load_program};
use crate::engine::MapSnapshot;

/// A vm-core program loaded into the kernel, with the maps it owns.
#[derive(Debug)]
pub struct LoadedVmProgram {
    /// The accepted program.
    pub prog: LoadedProgram,
    /// One kernel map per entry of `Program::maps`, same order.
    pub maps: Vec<MapFd>,
    /// The declarations they were created from (for resets and snapshots).
    pub defs: Vec<MapDef>,
    /// Which maps were frozen (never written again from user space).
    pub frozen: Vec<bool>,
}

/// Why a vm-core program could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VmLoadError {
    /// Creating or initialising one of the program's maps failed.
    #[error("map #{index} ({name}): {source}")]
    Map {
        /// Index into `Program::maps`.
        index: usize,
        /// Map name.
        name: String,
        /// What failed.
        source: MapError,
    },
    /// An `lddw` names a map index the program does not declare.
    #[error("insn {pc}: lddw refers to map #{index}, but the program declares {count} maps")]
    BadMapIndex {
        /// Slot of the `lddw`.
        pc: usize,
        /// The index found in its fd field.
        index: i32,
        /// Number of declared maps.
        count: usize,
    },
    /// A global-data map whose initial value does not fit its value size or has no u32 key.
    #[error(
        "map #{index} ({name}): initial value of {len} bytes does not fit a {value_size}-byte value with a 4-byte key (key size {key_size})"
    )]
    InitialValue {
        /// Index into `Program::maps`.
        index: usize,
        /// Map name.
        name: String,
        /// Length of `initial_value`.
        len: usize,
        /// Declared value size.
        value_size: u32,
        /// Declared key size.
        key_size: u32,
    },
    /// The kernel refused the program (boxed: it carries the whole log).
    #[error(transparent)]
    Load(Box<LoadError>),
}

impl From<LoadError> for VmLoadError {
    fn from(e: LoadError) -> Self {
        VmLoadError::Load(Box::new(e))
    }
}

/// Whether a map holds read-only global data (`.rodata*`, or `BPF_F_RDONLY_PROG` set).
fn is_rodata(def: &MapDef) -> bool {
    def.name.starts_with(".rodata") || def.flags & aya_obj::generated::BPF_F_RDONLY_PROG != 0
}

/// Writes the declared initial state: zeroes everywhere (arrays), no keys (hashes), then the
/// global-data initial value as element 0.
fn initialize(index: usize, map: &MapFd, def: &MapDef) -> Result<(), VmLoadError> {
    let wrap = |source| VmLoadError::Map {
        index,
        name: def.name.clone(),
        source,
    };
    let spec = map.spec();
    if matches!(
        def.map_type,
        MapType::Hash | MapType::LruHash | MapType::PercpuHash | MapType::LruPercpuHash
    ) {
        for k in map.keys().map_err(wrap)? {
            map.delete(&k).map_err(wrap)?;
        }
    } else if spec.is_array() && spec.key_size == 4 {
        let zero = vec![0u8; spec.lookup_size()];
        for i in 0..spec.max_entries {
            map.update(&i.to_le_bytes(), &zero, 0).map_err(wrap)?;
        }
    }
    if let Some(init) = &def.initial_value {
        if def.key_size != 4 || init.len() > def.value_size as usize || spec.is_per_cpu() {
            return Err(VmLoadError::InitialValue {
                index,
                name: def.name.clone(),
                len: init.len(),
                value_size: def.value_size,
                key_size: def.key_size,
            });
        }
        let mut value = init.clone();
        value.resize(def.value_size as usize, 0);
        map.update(&0u32.to_le_bytes(), &value, 0).map_err(wrap)?;
    }
    Ok(())
}

/// The program's instructions with every map index replaced by the real descriptor.
pub fn patch_map_fds(p: &Program, fds: &[i32]) -> Result<Vec<vm_core::RawInsn>, VmLoadError> {
    let lookup = |pc: usize, index: i32| {
        usize::try_from(index)
            .ok()
            .and_then(|i| fds.get(i).copied())
            .ok_or(VmLoadError::BadMapIndex {
                pc,
                index,
                count: fds.len(),
            })
    };
    let mut insns = p.insns.clone();
    for (pc, insn) in insns.iter_mut().enumerate() {
        if let Insn::LdImm64 { value, .. } = insn {
            match value {
                LdImm64::MapFd(fd) => *fd = lookup(pc, *fd)?,
                LdImm64::MapValue { fd, .. } => *fd = lookup(pc, *fd)?,
                _ => {}
            }
        }
    }
    Ok(vm_core::isa::encode_program(&insns))
}

/// The kernel's verdict on `p` with default load options, for tests that compare verifiers:
/// `Ok` if it loads, the refusal (with its log) if the verifier refuses it.
///
/// # Panics
///
/// When the program cannot even be set up (a map the kernel cannot create, a bad map index):
/// that is a broken test program, not a verdict.
pub fn kernel_verdict(p: &Program) -> Result<(), Box<LoadError>> {
    match load_vm_program(p, &LoadOptions::default()) {
        Ok(_) => Ok(()),
        Err(VmLoadError::Load(e)) => Err(e),
        Err(e) => panic!("{}: kernel setup failed: {e}", p.name),
    }
}

/// Creates `p.maps` in the kernel, writes their initial values (freezing `.rodata` when
/// `opts.freeze_rodata`), patches the `lddw`s and loads the program as `p.prog_type`.
pub fn load_vm_program(p: &Program, opts: &LoadOptions) -> Result<LoadedVmProgram, VmLoadError> {
    let _span = debug_span!("load_vm_program", name = %p.name, maps = p.maps.len()).entered();
    let mut maps = Vec::with_capacity(p.maps.len());
    let mut frozen = Vec::with_capacity(p.maps.len());
    for (index, def) in p.maps.iter().enumerate() {
        let map = MapFd::create(&MapSpec::from_def(def)).map_err(|source| VmLoadError::Map {
            index,
            name: def.name.clone(),
            source,
        })?;
        if def.initial_value.is_some() {
            initialize(index, &map, def)?;
        }
        let freeze = opts.freeze_rodata && is_rodata(def);
        if freeze {
            map.freeze().map_err(|source| VmLoadError::Map {
                index,
                name: def.name.clone(),
                source,
            })?;
        }
        frozen.push(freeze);
        maps.push(map);
    }
    let fds: Vec<i32> = maps.iter().map(MapFd::raw).collect();
    let raw = patch_map_fds(p, &fds)?;
    let mut opts = opts.clone();
    if opts.name.is_empty() {
        opts.name = p.name.clone();
    }
    let prog = load_program(&raw, p.prog_type.kernel_number(), &opts)?;
    Ok(LoadedVmProgram {
        prog,
        maps,
        defs: p.maps.clone(),
        frozen,
    })
}

impl LoadedVmProgram {
    /// Puts every (non-frozen) hash or array map back into its declared initial state, so
    /// that each differential run starts from the same maps. Costs one syscall per array
    /// entry; other map kinds (perf event arrays, ring buffers, ...) are left alone.
    pub fn reset_maps(&self) -> Result<(), VmLoadError> {
        for (index, ((map, def), frozen)) in self
            .maps
            .iter()
            .zip(&self.defs)
            .zip(&self.frozen)
            .enumerate()
        {
            if !frozen {
                initialize(index, map, def)?;
            }
        }
        Ok(())
    }

    /// The contents of every hash or array map, sorted by key.
    pub fn snapshot_maps(&self) -> Result<Vec<MapSnapshot>, VmLoadError> {
        let mut out = Vec::new();
        for (index, (map, def)) in self.maps.iter().zip(&self.defs).enumerate() {
            let spec = map.spec();
            let readable = spec.is_array()
                || matches!(
                    def.map_type,
                    MapType::Hash | MapType::LruHash | MapType::PercpuHash | MapType::LruPercpuHash
                );
            if !readable {
                continue;
            }
            let entries = map.entries().map_err(|source| VmLoadError::Map {
                index,
                name: def.name.clone(),
                source,
            })?;
            out.push(if is_per_cpu(def.map_type) {
                MapSnapshot::per_cpu(def.name.clone(), entries, def.value_size)
            } else {
                MapSnapshot {
                    name: def.name.clone(),
                    entries,
                }
            });
        }
        Ok(out)
    }
}

fn is_per_cpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
    )
}
