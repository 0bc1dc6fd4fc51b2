"""One background event loop for every sync SDK object: sync calls submit the async core's coroutines to it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class _Portal:
    """A daemon thread with an event loop; sync calls submit coroutines to it and wait."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="cove-sdk", daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def call(cls, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, cls.loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the caller stopped waiting (Ctrl-C): the coroutine must not run on unawaited
            raise


def call(coroutine: Coroutine[Any, Any, T]) -> T:
    return _Portal.call(coroutine)


def iterate(iterator: AsyncIterator[T]) -> Iterator[T]:
    """An async iterator of the core, as a blocking one: each item is awaited on the background loop."""

    async def step() -> tuple[T] | None:
        try:
            return (await anext(iterator),)
        except StopAsyncIteration:
            return None

    while (item := call(step())) is not None:
        yield item[0]
