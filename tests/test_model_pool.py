"""The pool of in-process models: one shared copy per spec, least recently used released first."""

from __future__ import annotations

import threading

from runtime.model_pool import ModelPool

GB = 2**30


class FakeModel:
    def __init__(self, name: str, gigabytes: float):
        self.name, self.size = name, int(gigabytes * GB)

    def memory_bytes(self) -> int:
        return self.size


def loader(pool_loads: list, name: str, gigabytes: float):
    def load():
        pool_loads.append(name)
        return FakeModel(name, gigabytes)
    return load


def test_one_shared_copy_per_spec():
    loads = []
    pool = ModelPool(budget_bytes=40 * GB)
    coder = pool.get("hf:coder-32b", loader(loads, "coder-32b", 18))
    assert pool.get("hf:coder-32b", loader(loads, "coder-32b", 18)) is coder  # a second role, same weights
    assert loads == ["coder-32b"]
    assert pool.memory_report()["hf:coder-32b"]["mb"] == 18 * 1024


def test_least_recently_used_is_released_first():
    loads = []
    pool = ModelPool(budget_bytes=40 * GB)
    pool.get("hf:a", loader(loads, "a", 18))
    pool.get("hf:b", loader(loads, "b", 9))
    pool.get("hf:a", loader(loads, "a", 18))       # a is used again: b is now the least recent
    pool.get("hf:c", loader(loads, "c", 18), expected_bytes=18 * GB)
    assert pool.specs() == ["hf:a", "hf:c"] and pool.used_bytes() == 36 * GB
    pool.get("hf:b", loader(loads, "b", 9))         # b again: a (least recent) must go
    assert pool.specs() == ["hf:c", "hf:b"]
    assert loads == ["a", "b", "c", "b"]


def test_size_known_only_after_loading_still_evicts():
    pool = ModelPool(budget_bytes=20 * GB)
    pool.get("hf:a", lambda: FakeModel("a", 12))
    pool.get("hf:b", lambda: FakeModel("b", 12))    # no expected size: eviction happens after the load
    assert pool.specs() == ["hf:b"] and pool.used_bytes() <= 20 * GB


def test_another_quantisation_replaces_the_loaded_copy_and_release_frees():
    loads = []
    pool = ModelPool()
    pool.get("hf:a", loader(loads, "a4", 5), variant="4bit")
    pool.get("hf:a", loader(loads, "a8", 9), variant="8bit")
    assert loads == ["a4", "a8"] and pool.memory_report()["hf:a"]["variant"] == "8bit"
    assert pool.release("hf:a") and not pool.release("hf:a")
    assert pool.used_bytes() == 0 and pool.specs() == []


def test_parallel_first_uses_load_once():
    loads, barrier = [], threading.Barrier(4)
    pool = ModelPool()

    def use():
        barrier.wait()
        pool.get("hf:a", loader(loads, "a", 1))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["a"]
