# Demo XDP program: drop UDP datagrams to port 7777, pass everything else,
# and count verdicts in the array map `verdicts` (index = XDP action).
# Written for this project in the bpf_conformance assembler syntax.
    ldxw %r2, [%r1+0]          # r2 = ctx->data
    ldxw %r3, [%r1+4]          # r3 = ctx->data_end
    mov %r6, 2                 # verdict = XDP_PASS
    mov %r4, %r2
    add %r4, 34                # Ethernet (14) + minimal IPv4 header (20)
    jgt %r4, %r3, count        # too short for IPv4: pass
    ldxh %r5, [%r2+12]         # EtherType, network order
    jne %r5, 0x0008, count     # not IPv4 (0x0800 read little-endian)
    ldxb %r5, [%r2+23]         # IPv4 protocol
    jne %r5, 17, count         # not UDP
    ldxb %r5, [%r2+14]         # version / IHL
    and %r5, 0xf
    lsh %r5, 2                 # header length in bytes
    jlt %r5, 20, count         # malformed IHL: pass
    mov %r4, %r2
    add %r4, %r5
    add %r4, 14                # r4 = UDP header
    mov %r7, %r4
    add %r7, 8
    jgt %r7, %r3, count        # truncated UDP header: pass
    ldxh %r5, [%r4+2]          # destination port, network order
    be16 %r5
    jne %r5, 7777, count
    mov %r6, 1                 # verdict = XDP_DROP
count:
    stxw [%r10-4], %r6         # key = verdict
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1                     # bpf_map_lookup_elem(&verdicts, &key)
    jeq %r0, 0, out
    mov %r1, 1
    lock add [%r0+0], %r1      # verdicts[key] += 1, atomically
out:
    mov %r0, %r6
    exit
