"""Loaded in-process models (``hf`` specs), shared by every role and bounded by GPU memory.

A model is loaded on first use and kept, once per spec, for every role that names it. When loading a
model would take the pool past its memory budget, the least recently used models are released first.
Release drops the pool's reference and empties PyTorch's CUDA cache; memory returns once no chat model
built over the weights is still in use (callers build those per call, so nothing else keeps them).
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)

# Share of the GPUs' memory the weights may take: the rest is left for activations and the KV cache.
GPU_WEIGHTS_SHARE = 0.85


@dataclass
class _Loaded:
    model: Any
    variant: str
    size_bytes: int


def _torch_module(model: Any) -> Any | None:
    """The ``torch.nn.Module`` behind a pooled object: itself, or a LangChain pipeline's model."""
    pipeline = getattr(model, "pipeline", None)
    candidate = getattr(pipeline, "model", model)
    return candidate if hasattr(candidate, "parameters") else None


def model_size_bytes(model: Any) -> int:
    """Memory a loaded model holds: what it reports (``memory_bytes()``, transformers'
    ``get_memory_footprint()``), else parameter count x bytes per parameter, else 0."""
    if callable(getattr(model, "memory_bytes", None)):
        return int(model.memory_bytes())
    module = _torch_module(model)
    if module is None:
        return 0
    if callable(getattr(module, "get_memory_footprint", None)):
        return int(module.get_memory_footprint())
    return sum(p.numel() * p.element_size() for p in module.parameters())


def gpu_memory_budget() -> int | None:
    """Bytes the pool may fill on this machine's GPUs; None (no limit) without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    total = sum(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))
    return int(total * GPU_WEIGHTS_SHARE)


def _free_accelerator_memory() -> None:
    gc.collect()  # model graphs hold reference cycles: free them now, not at some later collection
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelPool:
    """Lazily loaded models keyed by spec, least recently used first, within ``budget_bytes`` (None: no limit)."""

    def __init__(self, budget_bytes: int | None = None):
        self.budget_bytes = budget_bytes
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        # Lanes ask from parallel graph branches: one lock, so a model is never loaded twice at once.
        self._lock = threading.RLock()

    def get(self, spec: str, load: Callable[[], Any], *, variant: str = "", expected_bytes: int = 0) -> Any:
        """The model for ``spec``, loading it with ``load()`` if it is not in the pool.

        ``variant`` names how it is loaded (e.g. the quantisation): a different variant replaces the
        loaded copy, so there is never more than one per spec. ``expected_bytes`` lets eviction happen
        before the load, when the size is known in advance; after it, the measured size is used.
        """
        with self._lock:
            loaded = self._loaded.get(spec)
            if loaded is not None and loaded.variant == variant:
                self._loaded.move_to_end(spec)
                return loaded.model
            if loaded is not None:
                self.release(spec)
            self._make_room(expected_bytes)
            model = load()
            size = model_size_bytes(model)
            self._make_room(size)
            self._loaded[spec] = _Loaded(model=model, variant=variant, size_bytes=size)
            log.info("model pool: loaded %s (%s, %.1f MB); now holding %s", spec, variant or "default",
                        size / 2**20, ", ".join(f"{s} {m['mb']} MB" for s, m in self.memory_report().items()))
            return model

    def _make_room(self, needed_bytes: int) -> None:
        """Release least recently used models until ``needed_bytes`` more fit in the budget."""
        if self.budget_bytes is None:
            return
        while self._loaded and self.used_bytes() + needed_bytes > self.budget_bytes:
            spec = next(iter(self._loaded))
            log.info("model pool: releasing %s to make room for %d MB", spec, needed_bytes // 2**20)
            self.release(spec)
        if needed_bytes > self.budget_bytes:
            log.warning("model pool: a model of %d MB exceeds the whole budget of %d MB; loading it anyway",
                        needed_bytes // 2**20, self.budget_bytes // 2**20)

    def release(self, spec: str) -> bool:
        """Drop ``spec``'s model (if loaded) and free accelerator memory; True when something was released."""
        with self._lock:
            released = self._loaded.pop(spec, None) is not None
        if released:
            _free_accelerator_memory()
        return released

    def clear(self) -> None:
        """Release every model."""
        with self._lock:
            self._loaded.clear()
        _free_accelerator_memory()

    def used_bytes(self) -> int:
        with self._lock:
            return sum(loaded.size_bytes for loaded in self._loaded.values())

    def specs(self) -> list[str]:
        """Loaded specs, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def memory_report(self) -> dict[str, dict[str, Any]]:
        """Per loaded model, least recently used first: its variant and size."""
        with self._lock:
            return {spec: {"variant": loaded.variant, "bytes": loaded.size_bytes,
                           "mb": round(loaded.size_bytes / 2**20, 1)}
                    for spec, loaded in self._loaded.items()}


@functools.cache
def shared_pool() -> ModelPool:
    """The process-wide pool, budgeted by the GPUs present."""
    return ModelPool(budget_bytes=gpu_memory_budget())
