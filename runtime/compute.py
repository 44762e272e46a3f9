"""One CPU-bound job at a time.

On a 2-core machine a training script and local model inference slow each other down badly
(measured: 34 -> 3 tokens/s), so script runs and local-model calls take this process-wide lock.
Lanes still run as parallel graph branches; they just take turns on the CPU-heavy parts.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.RLock()


@contextmanager
def exclusive_compute() -> Iterator[None]:
    """Hold the machine's single compute slot for the duration of the block."""
    with _LOCK:
        yield
