#!/usr/bin/env bash
# Golden simulator outputs, for host-speed work on nic-sim / nfp-backend's executor: a change
# that only makes the simulator faster must leave every file byte-identical.
#
#   scripts/sim-golden.sh OFFLOAD OUTDIR      # e.g. target/release/offload /tmp/golden-before
#   diff -r /tmp/golden-before /tmp/golden-after
#
# Runs `offload demo --json` and 60 `offload sim --json --out` runs: the demo's NIC and 5
# offloadable corpus programs x 3 NIC shapes x 2 traffic specs x 1 and 2 host threads (the
# host-speed field is removed). Run it also with NFP_REPLAY=0 and NFP_NATIVE=0 set: the
# outputs must not change either.
set -u
OFF=$1
OUT=$2
mkdir -p "$OUT"
C="$(cd "$(dirname "$0")/.." && pwd)/../shared/corpus"
strip() { sed -E 's/"host_packets_per_sec":[-0-9.e+]+,?//g'; }
"$OFF" demo --json 2>&1 | strip >"$OUT/demo.json"
progs=(
    "$C/ebpf-samples/prototype-kernel/xdp_vlan01_kern.o xdp_prognum0"
    "$C/ebpf-samples/prototype-kernel/xdp_vlan01_kern.o xdp_prognum1"
    "$C/ebpf-samples/prototype-kernel/xdp_vlan01_kern.o xdp_prognum2"
    "$C/ebpf-samples/prototype-kernel/xdp_vlan01_kern.o xdp_prognum3"
    "$C/ebpf-samples/prototype-kernel/xdp_tcpdump_kern.o -"
)
nics=(
    agilio-cx
    "custom:islands=2,mes=3,threads=8,mhz=800,rate=100g,queue=4"
    "custom:islands=1,mes=1,threads=4,mhz=600,rate=10g,queue=2"
)
traffic=(
    "packets=20000,flows=500,size=64,seed=3"
    "packets=20000,flows=50,zipf=1.1,proto=udp:60,tcp:40,dport=7770-7780,runts=0.01,seed=9"
)
i=0
for p in "${progs[@]}"; do
    read -r obj sec <<<"$p"
    i=$((i + 1))
    secarg=()
    [ "$sec" != "-" ] && secarg=(--section "$sec")
    for nic in "${nics[@]}"; do
        for tr in "${traffic[@]}"; do
            for h in 1 2; do
                tag="p$i-$(echo "$nic$tr$h" | md5sum | cut -c1-8)"
                "$OFF" sim "$obj" "${secarg[@]}" --nic "$nic" --traffic "$tr" --host-threads "$h" \
                    --json --out "$OUT/$tag.pcap" 2>&1 | strip >"$OUT/$tag.json"
            done
        done
    done
done
echo "$(ls "$OUT" | wc -l) files in $OUT"
