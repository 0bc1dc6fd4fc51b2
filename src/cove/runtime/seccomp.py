"""The seccomp filter every sandbox runs under: the kernel's attack surface that a coding agent never needs.

Without it, a sandbox's user could make a user namespace of its own (``unshare -Ur``) and be "root" there, with
mounts and the rest of the kernel code that only root used to reach — the way in of many privilege-escalation
bugs. bwrap installs the filter (``--seccomp``) just before it starts the supervisor, so it covers every process
of the sandbox, and no process in it can lift it (``no_new_privs`` is set, and filters only ever add up).

Refused with EPERM: new namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag), the kernel
keyring, ``bpf``, ``perf_event_open``, ``userfaultfd``, loading kernel code (modules, kexec), mounting in any
form, ``reboot``, swap, ``acct``, quotas, file handles (``open_by_handle_at``), ``iopl``/``ioperm`` and a few
obsolete calls. Answered ENOSYS, so that libraries take their fallback: ``clone3`` (whose flags a filter cannot
read; glibc then uses ``clone``), ``io_uring`` (libuv then uses threads), and the 32-bit and x32 system call
ABIs, whose numbers differ and would slip past the list. ``ptrace`` stays: debuggers work on the sandbox's own
processes, which share one uid.

A classic BPF program, built here rather than with libseccomp, which is not installed for every Python. The
numbers are x86_64's; on another architecture :func:`program` returns None and sandboxes run without a filter
(the server says so in its log).
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import struct

__all__ = ["program", "program_fd"]

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_CLONE = 56
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
# CLONE_NEWTIME: a clone that makes any namespace.
_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

_REFUSED = {  # x86_64 system call numbers
    "uselib": 134,
    "ustat": 136,
    "sysfs": 139,
    "pivot_root": 155,
    "_sysctl": 156,
    "acct": 163,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "iopl": 172,
    "ioperm": 173,
    "create_module": 174,
    "init_module": 175,
    "delete_module": 176,
    "get_kernel_syms": 177,
    "query_module": 178,
    "quotactl": 179,
    "nfsservctl": 180,
    "lookup_dcookie": 212,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "quotactl_fd": 443,
}
_UNAVAILABLE = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "clone3": 435}

# Classic BPF, as struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}.
_LOAD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_ERRNO = 0x00050000  # SECCOMP_RET_ERRNO | errno
# Offsets in struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6]}.
_NR, _ARCH, _ARG0_LOW = 0, 4, 16


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _search(rules: list[tuple[int, list[bytes]]]) -> list[bytes]:
    """With the system call number loaded: a binary search over ``rules`` (sorted by number), ending in the
    matching rule's instructions or in allow. Every system call of every sandboxed process runs this, so it
    costs about six comparisons, not one per refused call."""
    if len(rules) <= 3:
        ops: list[bytes] = []
        for number, then in rules:
            ops += [_op(_JEQ, number, jf=len(then)), *then]
        return [*ops, _op(_RET, _ALLOW)]
    middle = len(rules) // 2
    low, high = _search(rules[:middle]), _search(rules[middle:])
    return [_op(_JGE, rules[middle][0], jf=len(high)), *high, *low]


@functools.cache
def program() -> bytes | None:
    """The compiled filter (what ``bwrap --seccomp`` reads), or None off x86_64."""
    if platform.machine() != "x86_64":
        return None
    refuse, unavailable = _op(_RET, _ERRNO | errno.EPERM), _op(_RET, _ERRNO | errno.ENOSYS)
    clone = [_op(_LOAD, _ARG0_LOW), _op(_JSET, _NAMESPACE_FLAGS, jf=1), refuse, _op(_RET, _ALLOW)]  # its flags
    rules = [(number, [refuse]) for number in _REFUSED.values()]
    rules += [(number, [unavailable]) for number in _UNAVAILABLE.values()]
    rules.append((_CLONE, clone))
    ops = [
        _op(_LOAD, _ARCH),
        _op(_JEQ, _AUDIT_ARCH_X86_64, jt=1),
        unavailable,  # the 32-bit ABI
        _op(_LOAD, _NR),
        _op(_JGE, _X32_SYSCALL_BIT, jf=1),
        unavailable,  # the x32 ABI
        *_search(sorted(rules)),
    ]
    return b"".join(ops)


def program_fd() -> int | None:
    """A descriptor to hand bwrap, positioned at the start of the filter; None when there is no filter."""
    compiled = program()
    if compiled is None:
        return None
    fd = os.memfd_create("cove-seccomp", os.MFD_CLOEXEC)
    os.write(fd, compiled)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
