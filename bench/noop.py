"""The RQ job that does nothing: the worker's own floor, to compare the pipeline's jobs with."""

from __future__ import annotations


def noop() -> None:
    """Return at once; what remains is RQ's and the worker class's cost per job."""
    return None
