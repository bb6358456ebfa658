"""A small text/event-stream reader over an httpx streaming response, for the feed tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    """One SSE frame: its fields (``event``, ``id``, ``data``, ``retry``) and comments."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def event(self) -> str | None:
        """The event name, if any."""
        return self.fields.get("event")

    def json(self) -> Any:
        """The data as JSON."""
        return json.loads(self.fields["data"])


class SseReader:
    """Reads frames from a streaming response (the client's read timeout bounds each wait)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines: Iterator[str] = response.iter_lines()

    def frame(self) -> Frame:
        """The next complete frame."""
        frame = Frame()
        for line in self._lines:
            if line == "":
                if frame.fields or frame.comments:
                    return frame
                continue
            if line.startswith(":"):
                frame.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            frame.fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    def until(self, done: Callable[[Frame], bool], limit_s: float = 10.0) -> list[Frame]:
        """Frames up to and including the first for which ``done`` is true."""
        deadline = time.monotonic() + limit_s
        frames = []
        while time.monotonic() < deadline:
            frames.append(self.frame())
            if done(frames[-1]):
                return frames
        raise AssertionError(f"no matching frame within {limit_s} s: {frames}")


def events_of(frames: list[Frame]) -> list[dict[str, Any]]:
    """The feed events among frames (those with an id), decoded."""
    return [f.json() for f in frames if "id" in f.fields]
