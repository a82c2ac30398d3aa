"""Requests that arrive while the model server is busy are scored together, in one feature lookup, one
``prepare`` and one ``predict``. A single-row request spends most of its time in per-call overhead (a Redis
round trip, pandas building frames, the model's input checks), which a batch of rows pays once: under load the
server's throughput grows with the queue instead of the queue growing. An idle server scores a request at once.

Scoring stays on the event loop's thread, as KServe runs a synchronous ``predict``: a second thread would only
contend for the GIL with the HTTP parsing. Each request still gets exactly its own outcome: a batch that fails
(an unknown entity in one request, a model that raises) is scored again request by request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: At most this many requests in one batch, so one batch cannot hold the event loop for long.
MAX_BATCH = 64
#: Turns of the event loop given to requests already read from the sockets to reach the queue before a batch is
#: taken; it stops early once two turns in a row brought nothing. An idle loop turns in microseconds.
MAX_GATHER_TURNS = 8


class RequestBatcher(Generic[Item, Result]):
    """Queues items and scores them with ``score_batch`` (items -> one result or exception per item)."""

    def __init__(self, score_batch: Callable[[list[Item]], list[Result | Exception]]) -> None:
        self.score_batch = score_batch
        self.queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self.draining: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        if self.draining is None:
            self.draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.queue:
                await self._gather()
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                try:
                    outcomes = self.score_batch([item for item, _ in batch])
                except Exception as error:  # score_batch gives each item its outcome; this is a bug there
                    outcomes = [error] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.cancelled():  # the client went away
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self.draining = None

    async def _gather(self) -> None:
        quiet, seen = 0, len(self.queue)
        for _ in range(MAX_GATHER_TURNS):
            if len(self.queue) >= MAX_BATCH:
                return
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self.queue) == seen else 0
            if quiet == 2:
                return
            seen = len(self.queue)
