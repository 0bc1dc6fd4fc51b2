"""The seccomp program, run through a small classic-BPF interpreter for every system call number: each refused
call is refused, each unavailable one answers ENOSYS, clone is refused only with a namespace flag, and
everything else is allowed (the sandbox tests check that the kernel loads it and applies it)."""

from __future__ import annotations

import errno
import struct

import pytest

from cove.runtime import seccomp

X86_64, I386 = 0xC000003E, 0x40000003
ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
CLONE_NEWUSER, CLONE_THREAD_FLAGS = 0x10000000, 0x003D0F00  # what pthread_create passes


def run(nr: int, arch: int = X86_64, arg0: int = 0) -> int:
    """What the filter answers for one system call (struct seccomp_data as the kernel lays it out)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    program = seccomp.program()
    assert program is not None
    ops = [struct.unpack_from("=HBBI", program, offset) for offset in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = ops[pc]
        pc += 1
        if code == 0x20:  # load a word of seccomp_data
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:  # return
            return k
        else:
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: bool(accumulator & k)}[code]
            pc += jt if taken else jf


@pytest.mark.skipif(seccomp.program() is None, reason="the filter is x86_64's")
def test_every_system_call_gets_its_answer() -> None:
    refused, unavailable = set(seccomp._REFUSED.values()), set(seccomp._UNAVAILABLE.values())
    for nr in range(0, 512):
        expected = EPERM if nr in refused else ENOSYS if nr in unavailable else ALLOW
        assert run(nr) == expected, nr
    assert run(seccomp._CLONE, arg0=CLONE_THREAD_FLAGS) == ALLOW
    assert run(seccomp._CLONE, arg0=0x11) == ALLOW  # fork(): SIGCHLD
    assert run(seccomp._CLONE, arg0=CLONE_NEWUSER | 0x11) == EPERM
    assert run(0, arch=I386) == ENOSYS and run(0x40000000 | 1) == ENOSYS  # the 32-bit and x32 ABIs
