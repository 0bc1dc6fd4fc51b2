"""The bubblewrap driver: turns a spec into a detached, isolated sandbox with the supervisor as PID 1.

The sandbox is never a child the server must keep: it runs in its own session with its output in a file, so a
server crash leaves it running, and a restarted server finds it again by its recorded pids and socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import cove
from cove.runtime import seccomp
from cove.runtime.cgroups import Cgroups
from cove.runtime.mounts import bind, detach, is_mount_point, make_shared
from cove.runtime.spec import Limits, SandboxSpec
from cove.runtime.unix import bind_unix

SANDBOX_USER = "user"
HOME = "/home/user"
GUEST_RUN = "/run/cove"
MODEL_DIR = "/run/cove-model"
GUEST_CODE = "/opt/cove/src"
GUEST_VENV = "/opt/cove/venv"
START_TIMEOUT = 10.0
# Where a sandbox sees its storage's directories (``merged/<name>`` on the host, bound through ``slots/<name>``).
STORAGE_IN_SANDBOX = {"/workspace": "workspace", HOME: "home"}
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The disk quota's tolerance: no file may grow past ``disk_mb`` (RLIMIT_FSIZE), and the watchdog stops a sandbox
# whose files come to more than ``disk_mb`` plus this. A single write that hits the limit (the file at exactly
# ``disk_mb``, beside the sandbox's few small files of its own) then fails without costing the sandbox.
DISK_TOLERANCE_MB = 1
DEFAULT_SHM_MB = 64  # only for a spec that names none (the services always fill in the server's default)


class SandboxStartError(Exception):
    pass


@dataclass(frozen=True)
class SandboxPaths:
    """Where one sandbox's state lives on the host."""

    root: Path

    @property
    def workspace(self) -> Path:
        """Inside the overlay the storage mounts (``runtime.storage``), so checkpoints can layer it."""
        return self.root / "merged" / "workspace"

    @property
    def home(self) -> Path:
        return self.root / "merged" / "home"

    @property
    def slots(self) -> Path:
        """What bwrap binds at /workspace and /home/user: empty directories in a shared mount, onto which the
        storage's ``workspace`` and ``home`` are bound once the sandbox runs. Mount propagation carries each
        attach into the sandbox, so its files can be chosen after it started: a fork claims a warm-pool sandbox
        (started before anyone knew which checkpoint it would stand on) instead of starting cold."""
        return self.root / "slots"

    def attachments(self) -> list[tuple[Path, Path]]:
        """(the storage's directory, the slot it is bound onto)."""
        return [(self.root / "merged" / name, self.slots / name) for name in STORAGE_IN_SANDBOX.values()]

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def socket(self) -> Path:
        """The supervisor's socket: bound by the server in the sandbox's root, which the sandbox cannot see, so it
        can be neither replaced nor redirected from inside (the supervisor listens on the descriptor)."""
        return self.root / "guest.sock"

    @property
    def log(self) -> Path:
        return self.root / "supervisor.log"

    def writable(self) -> list[Path]:
        """The directories ``prepare`` makes; /workspace and /home/user come from the storage's overlay."""
        return [self.tmp, self.run]


@dataclass(frozen=True)
class Spawned:
    pid: int
    init_pid: int
    enforced: dict[str, str]


def root_links() -> list[str]:
    """/bin, /lib… as the host has them: symlinks into /usr on merged-/usr systems, directories elsewhere."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def _system_binds() -> list[str]:
    return ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", *root_links(), *_python_binds()]


def _in_venv() -> bool:
    return os.path.realpath(sys.prefix) != os.path.realpath(sys.base_prefix)


def _python_binds() -> list[str]:
    """The interpreter, the venv (the agent runner needs its packages) and Cove's own code, read-only.

    The venv and the code go to fixed places under /opt/cove: on the host they may sit anywhere, /tmp included,
    which the sandbox's private /tmp would hide. The interpreter keeps its path, which venvs refer to.
    """
    args: list[str] = []
    base = os.path.realpath(sys.base_prefix)
    if base != "/usr" and not base.startswith("/usr/"):
        args += [*_traversable_parents(base), "--ro-bind", base, base]
    if _in_venv():
        args += [*_traversable_parents(GUEST_VENV), "--ro-bind", os.path.realpath(sys.prefix), GUEST_VENV]
    return [*args, *_traversable_parents(GUEST_CODE), "--ro-bind", _code_root(), GUEST_CODE]


def runner_python() -> str:
    """The interpreter, as seen inside the sandbox, that has the venv's packages (claude-agent-sdk)."""
    return f"{GUEST_VENV}/bin/python" if _in_venv() else python_executable()


def _traversable_parents(path: str) -> list[str]:
    """bwrap makes missing mount points mode 0700 as root; the sandbox user must be able to walk through them."""
    args: list[str] = []
    for parent in reversed(Path(path).parents):
        if str(parent) not in ("/", "/usr"):
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _code_root() -> str:
    return str(Path(cove.__file__).resolve().parent.parent)


def _fsize_bytes(disk_mb: int) -> int:
    return disk_mb * 1024 * 1024


def rlimit_fallbacks(limits: Limits, enforced: dict[str, str]) -> tuple[int | None, int | None]:
    """RLIMIT_NPROC and RLIMIT_FSIZE for the supervisor, given what the cgroups already ``enforced`` (which
    this completes, with the /dev/shm size bwrap gives its tmpfs): shared by a cold spawn (command-line flags) and
    a warm-pool claim (``configure``; a pooled sandbox's /dev/shm already has the size a claim may ask for)."""
    if limits.shm_mb:
        enforced["shm_mb"] = "tmpfs-size"
    # Without a pids controller the per-sandbox uid makes RLIMIT_NPROC a per-sandbox process limit.
    nproc = limits.pids if limits.pids and "pids" not in enforced else None
    if nproc:
        enforced["pids"] = "rlimit-nproc"
    fsize = _fsize_bytes(limits.disk_mb) if limits.disk_mb else None
    if fsize:
        enforced["disk_mb"] = "rlimit-fsize+usage-watchdog"
    return nproc, fsize


def python_executable() -> str:
    return os.path.realpath(sys.executable)


class BwrapDriver:
    name = "bwrap"

    def __init__(
        self,
        cgroups: Cgroups,
        bwrap: str | None = None,
        model_dir: Path | None = None,
        resolv_conf: str | None = None,
    ) -> None:
        self.cgroups = cgroups
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        # The model proxy's socket directory, bound read-only into every sandbox so agents reach a model even
        # with no network (their connections are handed to the server: see cove.guest.model_forwarder).
        self.model_dir = model_dir
        # The /etc/resolv.conf of sandboxes with a network namespace of their own (Cove's DNS forwarder): bound
        # over the host's in every such sandbox, pooled ones too, before anyone knows their network's mode.
        self.resolv_conf = resolv_conf
        if seccomp.program() is None:
            logging.getLogger("cove.sandboxes").warning(
                "no seccomp filter for this architecture: sandboxes can make user namespaces and reach the keyring, "
                "bpf and the other system calls the filter refuses on x86_64 (see cove.runtime.seccomp)"
            )

    def prepare(self, paths: SandboxPaths, uid: int) -> None:
        """Create the sandbox's writable directories, owned by its unprivileged uid."""
        paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in paths.writable():
            directory.mkdir(exist_ok=True)
            os.chown(directory, uid, uid)
        paths.etc.mkdir(exist_ok=True)
        (paths.etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n{SANDBOX_USER}:x:{uid}:{uid}::{HOME}:/bin/bash\n"
        )
        (paths.etc / "group").write_text(f"root:x:0:\n{SANDBOX_USER}:x:{uid}:\n")
        if self.resolv_conf is not None:
            (paths.etc / "resolv.conf").write_text(self.resolv_conf)
        for _storage, slot in paths.attachments():
            slot.mkdir(parents=True, exist_ok=True)
        make_shared(paths.slots)

    @staticmethod
    def attach(paths: SandboxPaths) -> None:
        """Show the storage's files in the (running) sandbox; any earlier attach must be detached first."""
        for storage, slot in paths.attachments():
            bind(storage, slot)

    @staticmethod
    def detach(paths: SandboxPaths) -> None:
        """Take the storage's files out of the sandbox (at once: the unmount propagates too)."""
        for _storage, slot in paths.attachments():
            detach(slot)

    @staticmethod
    def release(paths: SandboxPaths) -> bool:
        """Unmount the slots of a sandbox that is gone; true when nothing is left mounted there."""
        with contextlib.suppress(OSError):
            detach(paths.slots)
        return not is_mount_point(paths.slots)

    def command(
        self,
        sandbox_id: str,
        spec: SandboxSpec,
        paths: SandboxPaths,
        uid: int,
        info_fd: int,
        listen_fd: int,
        nproc: int | None,
        seccomp_fd: int | None = None,
    ) -> list[str]:
        args = [self.bwrap, "--info-fd", str(info_fd)]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        args += _system_binds()
        args += ["--ro-bind", str(paths.etc / "passwd"), "/etc/passwd"]
        args += ["--ro-bind", str(paths.etc / "group"), "/etc/group"]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run", "--dir", "/run/user"]
        # POSIX shared memory and semaphores (Python's multiprocessing, browsers, databases) need a writable
        # /dev/shm; bwrap's /dev has only a root-owned directory there. Its pages count against the memory limit,
        # and it has a size of its own: a tmpfs without one may grow to half the host's memory.
        shm_mb = spec.limits.shm_mb or DEFAULT_SHM_MB
        args += ["--size", str(shm_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/dev/shm"]
        args += ["--perms", "0755", "--dir", "/home"]
        for inside, name in STORAGE_IN_SANDBOX.items():
            args += ["--bind", str(paths.slots / name), inside]
        args += ["--bind", str(paths.tmp), "/tmp", "--bind", str(paths.run), GUEST_RUN]
        if self.model_dir is not None:
            args += ["--ro-bind", str(self.model_dir), MODEL_DIR]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if spec.network_mode != "host":
            # A namespace of its own, empty: "egress" gets its veth once the sandbox runs (runtime.network).
            args += ["--unshare-net"]
            if self.resolv_conf is not None:
                args += ["--ro-bind", str(paths.etc / "resolv.conf"), os.path.realpath("/etc/resolv.conf")]
        args += ["--hostname", f"cove-{sandbox_id[-12:]}", "--new-session", "--as-pid-1"]
        args += ["--chdir", "/workspace", "--clearenv"]
        env = {
            "PATH": BASE_PATH,
            "HOME": HOME,
            "USER": SANDBOX_USER,
            "LOGNAME": SANDBOX_USER,
            # The user's login shell (as /etc/passwd says). Tools look for it there: Claude Code without it probes
            # for a shell on its own, which cost about 10 ms of CPU a turn.
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "COVE_SANDBOX_ID": sandbox_id,
            **spec.env,
        }
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        args += [python_executable(), "-I", "-S", "-B", "-c", self._guest_bootstrap()]
        args += ["--listen-fd", str(listen_fd), "--run-dir", GUEST_RUN, "--cwd", spec.cwd]
        if nproc:
            args += ["--nproc", str(nproc)]
        if spec.limits.disk_mb:
            args += ["--fsize", str(_fsize_bytes(spec.limits.disk_mb))]
        return args

    @staticmethod
    def _guest_bootstrap() -> str:
        # No ssl for the supervisor: asyncio imports it if it can (and runs without it when it cannot), and the
        # supervisor speaks only over a unix socket; the import was about 9 ms of every sandbox's cold start.
        # Processes it starts are new interpreters, with ssl as usual.
        return (
            f"import sys; sys.modules['ssl'] = None; sys.path.insert(0, {GUEST_CODE!r}); sys.argv[0] = 'cove-guest'; "
            "from cove.guest.supervisor import main; main()"
        )

    async def spawn(
        self, sandbox_id: str, spec: SandboxSpec, paths: SandboxPaths, uid: int, lifeline: int | None = None
    ) -> Spawned:
        """Start the sandbox. ``lifeline``: the read end of a pipe whose write end only this server holds; the
        supervisor ends itself when it reads EOF there (the server is gone) unless it was claimed first — for
        warm-pool sandboxes, which no user knows of and which must not outlive the server that made them."""
        # The CPU quota binds once the supervisor is up, as it does for a pooled sandbox's claim: at 0.01 of a core
        # its start alone would take seconds, and the sandbox would fail to start rather than be slow.
        procs, enforced = self.cgroups.create(sandbox_id, replace(spec.limits, cpus=None))
        nproc, _fsize = rlimit_fallbacks(spec.limits, enforced)
        listener = bind_unix(paths.socket)
        info_r, info_w = os.pipe()
        ready_r, ready_w = os.pipe()
        filter_fd = seccomp.program_fd()
        listen_fd = listener.fileno()
        command = self.command(sandbox_id, spec, paths, uid, info_w, listen_fd, nproc, filter_fd)
        command += ["--ready-fd", str(ready_w)]
        if lifeline is not None:
            command += ["--lifeline", str(lifeline)]
        passed = [fd for fd in (info_w, ready_w, lifeline, filter_fd, listen_fd) if fd is not None]
        # A two-line launcher joins the cgroups before bwrap forks, so nothing in the sandbox ever runs outside.
        launcher = ['for f in $COVE_CGROUP_PROCS; do echo $$ > "$f" || exit 97; done; exec "$@"']
        env = {"PATH": BASE_PATH, "COVE_CGROUP_PROCS": " ".join(str(p) for p in procs)}
        try:
            with open(paths.log, "ab") as log:
                process = subprocess.Popen(  # noqa: ASYNC220 - fork+exec returns at once; the wait is in a thread
                    ["/bin/sh", "-c", *launcher, "cove-launch", *command],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    pass_fds=passed,
                    start_new_session=True,
                )
        except BaseException:
            os.close(info_r)
            os.close(ready_r)
            raise
        finally:  # the child has its copies (or failed to start): ours go, either way
            listener.close()
            for fd in (info_w, ready_w, filter_fd):
                if fd is not None:
                    os.close(fd)
        # Reap bwrap when it ends while we live; after a restart the kernel's init reaps it instead.
        # A thread of its own, not one of the default executor's few: those are needed by every to_thread call,
        # and one parked per live sandbox starved them after a handful of sandboxes.
        threading.Thread(target=process.wait, name=f"reap-{sandbox_id}", daemon=True).start()
        try:
            info = await asyncio.wait_for(asyncio.to_thread(_read_all, info_r), START_TIMEOUT)
            init_pid = int(json.loads(info)["child-pid"])
            await asyncio.wait_for(_wait_ready(ready_r), START_TIMEOUT)
        except (TimeoutError, ValueError, KeyError) as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            log_tail = paths.log.read_text(errors="replace")[-2000:] if paths.log.exists() else ""
            raise SandboxStartError(f"sandbox failed to start: {log_tail.strip() or exc}") from exc
        finally:
            os.close(ready_r)
        if spec.limits.cpus:
            _procs, with_cpus = self.cgroups.create(sandbox_id, spec.limits)
            enforced.update(with_cpus)
        return Spawned(pid=process.pid, init_pid=init_pid, enforced=enforced)

    def kill(self, sandbox_id: str, init_pid: int | None) -> None:
        """SIGKILL to the namespace's PID 1 takes every process of the sandbox with it."""
        if init_pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(init_pid, signal.SIGKILL)
        self.cgroups.kill_all(sandbox_id)


def wait_exited(pid: int | None, timeout: float = 10.0) -> bool:
    """Block until ``pid`` has exited; True if it has. A pidfd, so the kernel wakes us: no /proc polling."""
    if not pid:
        return True
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([handle], [], [], timeout)[0])
    finally:
        os.close(handle)


def _read_all(fd: int) -> bytes:
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(4096):
            chunks.append(chunk)
            with contextlib.suppress(ValueError):
                json.loads(b"".join(chunks))
                break
    return b"".join(chunks)


async def _wait_ready(ready: int) -> None:
    """The supervisor writes one byte on this pipe once it listens; EOF first means it died on the way.

    A pipe rather than polling for a file: the wake-up is immediate (polling cost about 12 ms a start).
    """
    loop = asyncio.get_running_loop()
    signalled: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if not signalled.done():
            try:
                signalled.set_result(os.read(ready, 1))
            except BlockingIOError:
                return

    os.set_blocking(ready, False)
    loop.add_reader(ready, readable)
    try:
        if not await signalled:
            raise ValueError("the supervisor exited before it was ready")
    finally:
        loop.remove_reader(ready)
