"""How the demo serves a crowd: queue size, concurrency and the per-request time limit, each a Space variable.

    settings = ServingSettings.from_env()           # OMNITALKER_QUEUE_SIZE=8 OMNITALKER_MAX_REQUEST_SECONDS=120 ...
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    deadline = RequestDeadline(settings.max_request_seconds)
    pipe(..., callback_on_step_end=deadline)        # raises RequestTooLong once the request is past its limit

Gradio's queue does the admission: a request beyond ``queue_size`` waiting ones gets gradio's "queue is full"
answer at once (HTTP 503; gradio_client raises ``QueueError``), and a waiting page shows its place in the queue.
The time limit is ours: gradio limits only streaming inputs. Input sizes already bound a request's work
(``omnitalker.pipeline.limits``); the deadline is the backstop for a slow or overloaded machine, checked after every
sampling step and before the video is written, so a stopped request writes no file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from omnitalker.pipeline.limits import parse_env

QUEUE_SIZE = 16  # waiting requests beyond this are turned away with gradio's "queue full"
CONCURRENCY = 1  # one generation at a time: a CPU (or one GPU) is saturated by one request
MAX_REQUEST_SECONDS = 300.0  # a request running longer is stopped (the longest text takes ~60 s on 2 CPU cores)
ENVIRONMENT = {  # setting -> (Space variable, type)
    "queue_size": ("OMNITALKER_QUEUE_SIZE", int),
    "concurrency": ("OMNITALKER_CONCURRENCY", int),
    "max_request_seconds": ("OMNITALKER_MAX_REQUEST_SECONDS", float),
}
TOO_LONG = ("This request ran past the demo's time limit of {limit:g} s and was stopped. Try a shorter text or "
            "fewer sampling steps (Advanced settings); whoever runs the demo can raise the limit with "
            "OMNITALKER_MAX_REQUEST_SECONDS.")


class RequestTooLong(Exception):
    """A request passed its time limit; the message says what to do (shown on the page as it is)."""


@dataclass(frozen=True)
class ServingSettings:
    queue_size: int = QUEUE_SIZE
    concurrency: int = CONCURRENCY
    max_request_seconds: float | None = MAX_REQUEST_SECONDS  # None: no limit

    def __post_init__(self):
        for name in ("queue_size", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)} "
                                 f"(Space variable {ENVIRONMENT[name][0]})")
        if self.max_request_seconds is not None and not self.max_request_seconds > 0:
            raise ValueError(f"max_request_seconds must be positive or None, got {self.max_request_seconds} "
                             f"(Space variable {ENVIRONMENT['max_request_seconds'][0]}; 'none' switches it off)")

    @classmethod
    def from_env(cls, environ: dict | None = None) -> ServingSettings:
        """The defaults above, each overridden by its Space variable when set ("none" switches the time limit off;
        parsed like the input limits' variables, ``omnitalker.pipeline.limits.parse_env``)."""
        environ = os.environ if environ is None else environ
        values = {name: parse_env(variable, environ[variable], kind, allow_none=name == "max_request_seconds")
                  for name, (variable, kind) in ENVIRONMENT.items() if variable in environ}
        return cls(**values)


class RequestDeadline:
    """A request's time limit, started at construction. Use it as the pipeline's ``callback_on_step_end`` (it
    changes no tensor) and call ``check()`` between stages; both raise ``RequestTooLong`` once time is up."""

    def __init__(self, limit_seconds: float | None, clock=time.monotonic):
        self.limit_seconds, self._clock = limit_seconds, clock
        self._end = None if limit_seconds is None else clock() + limit_seconds

    def check(self) -> None:
        if self._end is not None and self._clock() > self._end:
            raise RequestTooLong(TOO_LONG.format(limit=self.limit_seconds))

    def __call__(self, pipeline, step, timestep, callback_kwargs: dict) -> dict:
        self.check()
        return {}
