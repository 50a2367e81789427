mov %r3, %r1
add %r3, %r2
mov %r0, 2
mov %r4, %r1
add %r4, 34
jgt %r4, %r3, out
ldxh %r5, [%r1+12]
jne %r5, 0x0008, out
ldxb %r5, [%r1+23]
jne %r5, 17, out
ldxb %r5, [%r1+14]
and %r5, 0xf
lsh %r5, 2
jlt %r5, 20, out
mov %r4, %r1
add %r4, %r5
add %r4, 14
mov %r6, %r4
add %r6, 8
jgt %r6, %r3, out
ldxh %r5, [%r4+2]
be16 %r5
jne %r5, 7777, out
mov %r0, 1
out:
exit
