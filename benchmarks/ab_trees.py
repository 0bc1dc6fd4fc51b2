"""``python -m benchmarks.ab_trees OLD_TREE [ROUNDS] [TURNS]``: this tree's server against another tree's, side by
side on this machine — what a change cost (issue 10's budget: at most 5% on time to interactive, exec round-trip
and turn overhead; see "What sealing the boundary and tenants cost" in RESULTS.md, which this does not rewrite).

OLD_TREE is a checkout with its own ``.venv`` (``git worktree add ../old <commit>``, then ``make`` there). Both
servers run at once; the rounds alternate between them, the order flipping each round, so that both meet the same
load. Each request round: a create from the warm pool, ``echo ready``, 20 ``exec ["true"]``, 20
``GET /v1/sandboxes/{id}``, a kill. Each turn round: one turn of the agent benchmark's prompt on each server's
session, through that tree's own SDK (a client process per tree, told when to go).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path

import httpx

from benchmarks._harness import temp_dir
from benchmarks.bench_agent import PROMPT

WARM_UP = 3
THIS_TREE = Path(__file__).resolve().parent.parent
# A turn client, run by each tree's own python: the SDK's wire may differ between the trees.
TURN_CLIENT = f"""
import asyncio, sys, time
from cove import AsyncSandbox

async def main():
    sandbox = await AsyncSandbox.create(url=sys.argv[1], api_key=sys.argv[2], network="none")
    session = await sandbox.agent.start()
    async for event in session.events():
        if event.type == "ready":
            break
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        started = time.perf_counter()
        await session.send_prompt({PROMPT!r})
        await session.done
        print(time.perf_counter() - started, flush=True)
    await session.kill()
    await sandbox.kill()

asyncio.run(main())
"""


@contextmanager
def _server(tree: Path, port: int, args: list[str]) -> Iterator[tuple[str, str]]:
    """``cove serve`` of ``tree`` on ``port`` with a home of its own: (url, admin key)."""
    with temp_dir("cove-ab-") as base:
        home = base / "home"
        env = dict(os.environ, COVE_HOME=str(home))
        command = [str(tree / ".venv/bin/cove"), "serve", "--port", str(port), *args]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not (home / "admin_key").exists() or not _healthy(url):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{tree}'s server did not start")
                time.sleep(0.1)
            yield url, (home / "admin_key").read_text().strip()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz").status_code == 200
    except httpx.HTTPError:
        return False


async def _requests(clients: dict[str, httpx.AsyncClient], rounds: int) -> dict[str, dict[str, list[float]]]:
    measures = ("TTI", "create", "first exec", "exec", "get")
    samples: dict[str, dict[str, list[float]]] = {name: {m: [] for m in measures} for name in clients}
    for round_ in range(rounds + WARM_UP):
        order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
        for name in order:
            client, taken = clients[name], samples[name]
            await client.get("/v1/pool", params={"wait": 30})
            started = time.perf_counter()
            sandbox_id = (await client.post("/v1/sandboxes", json={"network": "none"})).json()["id"]
            created = time.perf_counter()
            ready = await client.post(f"/v1/sandboxes/{sandbox_id}/exec", json={"command": "echo ready"})
            done = time.perf_counter()
            assert ready.json()["stdout"] == "ready\n", ready.text
            execs, gets = [], []
            for _ in range(20):
                before = time.perf_counter()
                await client.post(f"/v1/sandboxes/{sandbox_id}/exec", json={"command": ["true"]})
                execs.append(time.perf_counter() - before)
            for _ in range(20):
                before = time.perf_counter()
                await client.get(f"/v1/sandboxes/{sandbox_id}")
                gets.append(time.perf_counter() - before)
            await client.delete(f"/v1/sandboxes/{sandbox_id}")
            if round_ >= WARM_UP:
                taken["TTI"].append(done - started)
                taken["create"].append(created - started)
                taken["first exec"].append(done - created)
                taken["exec"].append(statistics.median(execs))
                taken["get"].append(statistics.median(gets))
    return samples


def _turns(clients: dict[str, subprocess.Popen[str]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for round_ in range(rounds + WARM_UP):
        for name in list(clients) if round_ % 2 == 0 else list(reversed(clients)):
            client = clients[name]
            assert client.stdin is not None and client.stdout is not None
            client.stdin.write("go\n")
            client.stdin.flush()
            took = float(client.stdout.readline())
            if round_ >= WARM_UP:
                samples[name].append(took)
    return samples


def _report(label: str, old: list[float], new: list[float]) -> None:
    before, now = statistics.median(old), statistics.median(new)
    paired = statistics.median(n / o - 1 for o, n in zip(old, new, strict=True))
    change = now / before - 1
    print(f"{label:12s} before {before * 1e3:7.2f} ms  now {now * 1e3:7.2f} ms  {change:+6.1%}  paired {paired:+6.1%}")


def main() -> None:
    old_tree = Path(sys.argv[1]).resolve()
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    turns = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    trees = {"before": (old_tree, []), "now": (THIS_TREE, ["--default-network", "none"])}
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(_server(tree, 18190 + index, args))
            for index, (name, (tree, args)) in enumerate(trees.items())
        }

        async def measure() -> dict[str, dict[str, list[float]]]:
            async with AsyncExitStack() as clients_stack:
                clients = {
                    name: await clients_stack.enter_async_context(
                        httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=120)
                    )
                    for name, (url, key) in servers.items()
                }
                return await _requests(clients, rounds)

        requests = asyncio.run(measure())
        for measure_name in requests["before"]:
            _report(measure_name, requests["before"][measure_name], requests["now"][measure_name])
        turn_clients = {}
        for name, (url, key) in servers.items():
            python = trees[name][0] / ".venv/bin/python"
            client = subprocess.Popen(
                [str(python), "-c", TURN_CLIENT, url, key], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            stack.callback(client.communicate, "\n", 60)  # an empty line ends it; it kills its session
            assert client.stdout is not None and client.stdout.readline().strip() == "ready"
            turn_clients[name] = client
        samples = _turns(turn_clients, turns)
        _report("agent turn", samples["before"], samples["now"])


if __name__ == "__main__":
    main()
