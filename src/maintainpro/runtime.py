"""The supervisor: owns every long-lived background task, restarts it with back-off, records why."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from maintainpro.core.db import utcnow

log = logging.getLogger(__name__)

MAX_RESTART_DELAY = 60.0


@dataclass
class TaskStatus:
    """What a supervised task last did."""

    name: str
    runs: int = 0
    failures: int = 0
    last_success: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    running: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready status."""
        return {
            "name": self.name,
            "runs": self.runs,
            "failures": self.failures,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "running": self.running,
        }


@dataclass
class _Periodic:
    name: str
    interval: float
    job: Callable[[], Any]
    status: TaskStatus = field(init=False)

    def __post_init__(self) -> None:
        self.status = TaskStatus(self.name)


class Supervisor:
    """Runs periodic jobs (blocking ones in a worker thread) and long-running coroutines.

    A job that raises is logged once per failure streak, retried with doubling delay up to a
    minute, and its recovery is logged; the supervisor itself never dies of a job's error.
    """

    def __init__(self) -> None:
        self._periodic: list[_Periodic] = []
        self._services: list[tuple[str, Callable[[], Awaitable[None]], TaskStatus]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, name: str, seconds: float, job: Callable[[], Any]) -> None:
        """Run a blocking job every so many seconds, in a worker thread."""
        self._periodic.append(_Periodic(name, seconds, job))

    def service(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Keep a long-running coroutine alive: restart it with back-off whenever it ends."""
        self._services.append((name, run, TaskStatus(name)))

    @property
    def statuses(self) -> list[TaskStatus]:
        """The status of every supervised task."""
        return [p.status for p in self._periodic] + [s for _, _, s in self._services]

    def start(self) -> None:
        """Start every task on the running event loop."""
        for periodic in self._periodic:
            self._tasks.append(
                asyncio.create_task(self._run_periodic(periodic), name=periodic.name)
            )
        for name, run, status in self._services:
            self._tasks.append(asyncio.create_task(self._run_service(name, run, status), name=name))

    async def stop(self) -> None:
        """Cancel every task and wait for them to finish."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run_periodic(self, periodic: _Periodic) -> None:
        status = periodic.status
        delay = periodic.interval
        while True:
            status.running = True
            try:
                await asyncio.to_thread(periodic.job)
            except Exception as exc:  # noqa: BLE001 - recorded, retried with back-off
                delay = self._failed(status, exc, delay, periodic.interval)
            else:
                self._succeeded(status)
                delay = periodic.interval
            finally:
                status.running = False
            await asyncio.sleep(delay)

    async def _run_service(
        self, name: str, run: Callable[[], Awaitable[None]], status: TaskStatus
    ) -> None:
        delay = 1.0
        while True:
            status.running = True
            try:
                await run()
                raise RuntimeError("service returned; restarting it")
            except asyncio.CancelledError:
                status.running = False
                raise
            except Exception as exc:  # noqa: BLE001 - recorded, restarted with back-off
                status.running = False
                delay = self._failed(status, exc, delay, 1.0)
            await asyncio.sleep(delay)

    @staticmethod
    def _failed(status: TaskStatus, exc: Exception, delay: float, base: float) -> float:
        first = status.last_error is None
        status.runs += 1
        status.failures += 1
        status.last_error = f"{type(exc).__name__}: {exc}"
        status.last_error_at = utcnow()
        if first:
            log.error("task failed", extra={"task": status.name, "error": status.last_error})
        return min(max(delay * 2, base), MAX_RESTART_DELAY)

    @staticmethod
    def _succeeded(status: TaskStatus) -> None:
        if status.last_error is not None:
            log.info("task recovered", extra={"task": status.name})
        status.runs += 1
        status.last_success = utcnow()
        status.last_error = None
