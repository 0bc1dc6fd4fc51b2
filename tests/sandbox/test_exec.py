"""Commands: run to completion, stream with stdin, run in the background, re-attach without loss."""

from __future__ import annotations

import asyncio
import signal

import pytest

from cove import AsyncSandbox, CommandTimeout, InvalidRequest
from cove.runtime.guest_client import Exited, GuestClient
from cove.sdk import ProcessNotFound
from tests.conftest import CoveServer


@pytest.fixture
async def sandbox(connection: dict[str, str]) -> AsyncSandbox:
    async with await AsyncSandbox.create(env={"GREETING": "hello"}, **connection) as sandbox:
        yield sandbox  # type: ignore[misc]


async def test_run_reports_exit_code_output_and_duration(sandbox: AsyncSandbox) -> None:
    result = await sandbox.exec.run("echo $GREETING; echo oops >&2; exit 7")
    assert (result.exit_code, result.stdout, result.stderr) == (7, "hello\n", "oops\n")
    assert 0 < result.duration < 10 and not result.timed_out


async def test_run_with_argv_env_cwd_and_stdin(sandbox: AsyncSandbox) -> None:
    await sandbox.files.mkdir("/workspace/sub")
    result = await sandbox.exec.run(
        ["sh", "-c", "pwd; echo $X; cat"], env={"X": "42"}, cwd="/workspace/sub", stdin="from stdin"
    )
    assert result.stdout == "/workspace/sub\n42\nfrom stdin"


async def test_timeout_kills_the_command(sandbox: AsyncSandbox) -> None:
    with pytest.raises(CommandTimeout):
        await sandbox.exec.run("sleep 30", timeout=0.5)
    result = await sandbox.exec.run("sleep 30; echo never", timeout=0.5, check_timeout=False)
    assert result.timed_out and result.exit_code == 137 and "never" not in result.stdout


async def test_unknown_command_and_empty_command(sandbox: AsyncSandbox) -> None:
    assert (await sandbox.exec.run("definitely-not-a-command")).exit_code == 127
    with pytest.raises(InvalidRequest):
        await sandbox.exec.run("   ")
    with pytest.raises(InvalidRequest):
        await sandbox.exec.run(["no-such-binary-anywhere"])


async def test_streaming_delivers_chunks_as_they_come_and_takes_stdin(sandbox: AsyncSandbox) -> None:
    process = await sandbox.exec.start(
        [
            "python3",
            "-u",
            "-c",
            "import sys\nfor line in sys.stdin:\n print(line.upper(), end='', flush=True)",
        ]
    )
    seen: list[bytes] = []
    chunks = process.__aiter__()
    for word in ("alpha\n", "beta\n"):
        await process.send_stdin(word)
        chunk = await asyncio.wait_for(anext(chunks), 10)
        seen.append(chunk.data)
        assert chunk.stream == "stdout"
    assert seen == [b"ALPHA\n", b"BETA\n"]
    await process.close_stdin()
    result = await asyncio.wait_for(process.wait(), 10)
    assert result.exit_code == 0 and result.stdout == "ALPHA\nBETA\n" and result.stdout_data == b"ALPHA\nBETA\n"


async def test_streaming_callbacks_receive_both_streams(sandbox: AsyncSandbox) -> None:
    out: list[bytes] = []
    err: list[bytes] = []
    process = await sandbox.exec.start("echo one; echo two >&2; echo three", on_stdout=out.append, on_stderr=err.append)
    await process.close_stdin()
    result = await process.wait()
    assert b"".join(out) == b"one\nthree\n" and b"".join(err) == b"two\n"
    assert result.exit_code == 0


async def test_background_processes_can_be_listed_and_killed(sandbox: AsyncSandbox) -> None:
    info = await sandbox.exec.background("sleep 300", tag="sleeper")
    listed = {p.id: p for p in await sandbox.exec.list()}
    assert listed[info.id].running and listed[info.id].tag == "sleeper"
    killed = await sandbox.exec.kill(info.id)
    handle = await sandbox.exec.attach(info.id)
    result = await asyncio.wait_for(handle.wait(), 10)
    assert result.process.signal == 9 and not result.process.running
    assert killed.id == info.id
    with pytest.raises(ProcessNotFound):
        await sandbox.exec.kill("p999999")


async def test_reattach_replays_from_a_byte_offset_without_gap_or_duplicate(sandbox: AsyncSandbox) -> None:
    script = "for i in $(seq 1 400); do echo line-$i; sleep 0.005; done"
    first = await sandbox.exec.start(script)
    await first.close_stdin()
    received = bytearray()
    async for chunk in first:
        received += chunk.data
        if received.count(b"\n") >= 20:
            break
    offset = first.offsets[0]
    assert offset == len(received)
    await first.close()  # drop the connection while the process keeps writing

    second = await sandbox.exec.attach(first.process_id, stdout_offset=offset)
    async for chunk in second:
        received += chunk.data
    result = await second.wait()
    assert result.exit_code == 0
    assert received.decode().splitlines() == [f"line-{i}" for i in range(1, 401)]

    # From offset 0 the whole output is replayed, even after the process has ended.
    replay = await sandbox.exec.attach(first.process_id)
    whole = b"".join([chunk.data async for chunk in replay])
    assert whole == bytes(received)


async def test_posix_shared_memory_works(sandbox: AsyncSandbox) -> None:
    """Python's multiprocessing (its locks are POSIX semaphores in /dev/shm), as test runners use it."""
    pool = "import multiprocessing as m\nwith m.Pool(2) as pool:\n    print(sum(pool.map(abs, [-1, -2, 3])))"
    result = await sandbox.exec.run(["python3", "-c", pool], timeout=60)
    assert (result.exit_code, result.stdout) == (0, "6\n")
    shm = (await sandbox.exec.run("stat -c %a /dev/shm; ls -A /dev/shm | wc -l")).stdout.split()
    assert shm == ["1777", "0"]  # the sandbox's own, empty: nothing of the host's


async def test_a_finished_process_stream_takes_late_input_until_its_client_closes(
    server: CoveServer, sandbox: AsyncSandbox
) -> None:
    """stdin or a signal the client sent before the exit reached it must not break the stream: a socket whose
    write failed loses what it had received and not yet read (the output, the exit frame)."""
    root = server.home / "sandboxes" / sandbox.id
    guest = GuestClient(root / "guest.sock", (root / "run").stat().st_uid)
    async with guest.process("exec", command=["echo", "done"], stdin=True) as stream:
        items = [item async for item in stream]
        assert isinstance(items[-1], Exited) and items[-1].info["exit_code"] == 0
        await stream.send_stdin(b"late input\n")
        await stream.close_stdin()
        await stream.signal(signal.SIGTERM)
