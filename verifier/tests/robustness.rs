//! No input makes the verifier panic: random instruction slots (valid opcodes with random
//! registers, offsets and immediates, plus some garbage) always give a verdict.

use proptest::prelude::*;
use verifier::{VerifyOptions, verify_raw};
use vm_core::{MapDef, MapType, ProgType, RawInsn};

/// Opcodes of every instruction class, so that most slots decode.
const OPCODES: &[u8] = &[
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd4, 0xdc, 0x04, 0x0c, 0x14, 0x1c, 0x24,
    0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84, 0x94, 0x9c, 0xa4, 0xac,
    0xb4, 0xbc, 0xc4, 0xcc, 0x61, 0x69, 0x71, 0x79, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b,
    0xc3, 0xdb, 0x18, 0x00, 0x20, 0x28, 0x30, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d,
    0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd, 0x16, 0x1e,
    0x26, 0xa6, 0x85, 0x95, 0x95, 0x95, 0x8d, 0xff,
];

fn slot() -> impl Strategy<Value = RawInsn> {
    (
        prop::sample::select(OPCODES),
        0u8..12,
        0u8..12,
        prop_oneof![Just(0i16), -16i16..16, -600i16..600, any::<i16>()],
        prop_oneof![Just(0i32), -16i32..16, -600i32..600, any::<i32>()],
    )
        .prop_map(|(code, dst, src, off, imm)| RawInsn::new(code, dst, src, off, imm))
}

fn maps() -> Vec<MapDef> {
    vec![MapDef {
        name: "m".to_string(),
        map_type: MapType::Array,
        key_size: 4,
        value_size: 16,
        max_entries: 2,
        flags: 0,
        initial_value: None,
    }]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn any_slots_get_a_verdict(
        body in prop::collection::vec(slot(), 1..40),
        t in prop::sample::select(vec![ProgType::Xdp, ProgType::SchedCls, ProgType::SocketFilter]),
        level in 0u32..3,
    ) {
        let mut raw = body;
        raw.push(RawInsn::new(0x95, 0, 0, 0, 0));
        let opts = VerifyOptions { log_level: level, ..VerifyOptions::default() };
        let _ = verify_raw(&raw, t, &maps(), &opts, None);
        let unpriv = VerifyOptions { privileged: false, ..opts };
        let _ = verify_raw(&raw, t, &maps(), &unpriv, None);
    }
}
