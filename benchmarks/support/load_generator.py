"""The serving benchmark's load generator and its measurements: open loop at a fixed rate (no coordinated
omission) and closed loop at a number of connections, over aiohttp on uvloop in this process, with the client's
and the server's CPU time; and how the figures are summarised (p50/p99, with failures as infinite latencies).
Requests (the health checks too) carry the ``headers`` given, e.g. an inference key for HAProxy's key check.
See ``benchmarks/serving_latency.py``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import psutil
import uvloop

TIMEOUT_S = 5.0


def quantiles(samples_s: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    values = np.asarray(samples_s) * 1000
    # "higher": no interpolation, which would turn two infinite (timed-out) samples into NaN.
    return float(np.percentile(values, 50, method="higher")), float(np.percentile(values, 99, method="higher"))


def fmt(value: float, digits: int = 2) -> str:
    if value != value:
        return "-"
    return f">{TIMEOUT_S:g}s" if value == float("inf") else f"{value:.{digits}f}"


@dataclass
class Load:
    label: str
    level: float
    """Requests/s (open loop) or connections (closed loop)."""
    sent: int
    ok: int
    seconds: float
    latencies_s: list[float]
    client_cpu: float
    """Share of one core the load generator used."""
    server_cpu_ms: float = float("nan")
    """Server CPU time per request (the process and its children), in ms."""
    send_lag_p99_ms: float = float("nan")
    """Open loop: p99 of how late requests went out against their schedule (the load generator's own delay)."""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def quantiles(self) -> tuple[float, float]:
        """p50 and p99 in ms; a failed or timed-out request counts as an infinite latency."""
        if not self.sent:
            return float("nan"), float("nan")
        return quantiles(self.latencies_s + [float("inf")] * (self.sent - self.ok))


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _session(connections: int, headers: Mapping[str, str]) -> aiohttp.ClientSession:
    # A request unanswered after TIMEOUT_S counts as failed (and as an infinite latency in the quantiles).
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        headers=dict(headers),
    )


async def _open_loop(
    url: str, bodies: list[bytes], rate: float, seconds: float, headers: Mapping[str, str]
) -> tuple[int, list[float], float, list[float]]:
    """Requests on a fixed schedule, each in its own task whatever the earlier ones are waiting for, so a slow
    reply never delays the next request (no coordinated omission). The event loop's timers tick in whole
    milliseconds, so a latency counts from when the request went out; how late that was against its schedule is
    returned too (it tells whether the load generator kept up)."""
    latencies: list[float] = []
    lags: list[float] = []

    async def one(session: aiohttp.ClientSession, body: bytes, due: float) -> None:
        sent = time.perf_counter()
        lags.append(sent - due)
        if await _post(session, url, body):
            latencies.append(time.perf_counter() - sent)

    async with _session(256, headers) as session:
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, bodies[i % len(bodies)], due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return len(latencies), latencies, elapsed, lags


async def _closed_loop(
    url: str, bodies: list[bytes], connections: int, seconds: float, headers: Mapping[str, str]
) -> tuple[int, list[float], float, list[float]]:
    """``connections`` clients, each sending its next request as soon as the previous one is answered."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while time.perf_counter() < end:
            sent = time.perf_counter()
            if await _post(session, url, bodies[i % len(bodies)]):
                latencies.append(time.perf_counter() - sent)
            i += connections

    async with _session(connections, headers) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session, k) for k in range(connections)))
        elapsed = time.perf_counter() - start
    return len(latencies), latencies, elapsed, []


def _server_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def settle(
    url: str, progress: Callable[[str], None], timeout_s: float = 180.0, headers: Mapping[str, str] | None = None
) -> None:
    """Wait until the server answers its health check promptly: its queue is empty."""
    base = url.split("/v1/")[0].removesuffix("/invocations")
    health = f"{base}/ping" if url.endswith("/invocations") else f"{base}/v2/health/ready"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        began = time.monotonic()
        request = urllib.request.Request(health, headers=dict(headers or {}))
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as response:
            if response.status == 200 and time.monotonic() - began < 0.2:
                return
        time.sleep(0.5)
    progress(f"{base} still busy after {timeout_s:g}s of waiting; measuring anyway")


def measure(
    label: str,
    url: str,
    bodies: list[bytes],
    mode: str,
    level: float,
    seconds: float,
    pid: int | None,
    progress: Callable[[str], None],
    headers: Mapping[str, str] | None = None,
) -> Load:
    """One measurement after a short warm-up at the same level, once the server has drained what an earlier
    overload left queued (requests a client gave up on are still served), so each measurement stands alone."""
    sent_headers = dict(headers or {})
    settle(url, progress, headers=sent_headers)
    run: Callable[[float], Any]
    if mode == "open":

        def run(s: float) -> Any:
            return _open_loop(url, bodies, level, s, sent_headers)
    else:

        def run(s: float) -> Any:
            return _closed_loop(url, bodies, int(level), s, sent_headers)

    uvloop.run(run(1.0))
    cpu0, server0, wall0 = time.process_time(), _server_cpu_s(pid), time.monotonic()
    ok, latencies, elapsed, lags = uvloop.run(run(seconds))
    cpu, server = time.process_time() - cpu0, _server_cpu_s(pid) - server0
    wall = time.monotonic() - wall0
    sent = int(level * seconds) if mode == "open" else ok
    server_cpu_ms = server * 1000 / max(ok, 1) if pid else float("nan")
    lag_p99 = quantiles(lags)[1] if lags else float("nan")
    result = Load(label, level, sent, ok, elapsed, latencies, cpu / wall, server_cpu_ms, lag_p99)
    p50, p99 = result.quantiles()
    progress(f"{label} {mode} {level:g}: {result.rate:.0f}/s ok {ok}/{sent}, p50 {fmt(p50)} ms, p99 {fmt(p99)} ms")
    return result
