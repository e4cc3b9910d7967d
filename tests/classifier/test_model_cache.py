"""The loaded-model cache: single-flight loads, the LRU bound, eviction under load."""

from __future__ import annotations

import gc
import random
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from classifier.model_cache import ModelCache
from webservice import errors


class CountingLoader:
    """Makes a fresh object per load, slowly enough that concurrent callers overlap."""

    def __init__(self, delay: float = 0.0, fail: set[str] | None = None) -> None:
        self.delay = delay
        self.fail = fail or set()
        self.calls: list[str] = []
        self.made: list[weakref.ref] = []
        self._lock = threading.Lock()

    def __call__(self, name: str):
        with self._lock:
            self.calls.append(name)
        time.sleep(self.delay)
        if name in self.fail:
            raise errors.ModelUnavailable(f"no weights for {name}", model=name)
        model = FakeModel(name)
        self.made.append(weakref.ref(model))
        return model


class FakeModel:
    def __init__(self, name: str) -> None:
        self.name = name


def test_concurrent_first_requests_load_a_model_once():
    loader = CountingLoader(delay=0.3)
    cache = ModelCache(loader, max_loaded=2)
    start = threading.Barrier(16)

    def first_request(_):
        start.wait()
        return cache.get("resnet18")

    with ThreadPoolExecutor(16) as pool:
        models = list(pool.map(first_request, range(16)))

    assert loader.calls == ["resnet18"]
    assert all(model is models[0] for model in models)
    stats = cache.stats()
    assert (stats.loads, stats.hits, stats.loaded) == (1, 15, ("resnet18",))


def test_different_models_load_in_parallel_and_hits_do_not_wait_for_loads():
    release = threading.Event()
    slow_started = threading.Event()

    def loader(name):
        if name == "slow":
            slow_started.set()
            assert release.wait(10)
        return FakeModel(name)

    cache = ModelCache(loader, max_loaded=3)
    cache.put("ready", FakeModel("ready"))
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(cache.get, "slow")
        assert slow_started.wait(10)
        # While "slow" is still loading, other models are served and loaded.
        assert cache.get("ready").name == "ready"
        assert pool.submit(cache.get, "other").result(timeout=10).name == "other"
        release.set()
        assert slow.result(timeout=10).name == "slow"


def test_the_bound_holds_and_the_least_recently_used_model_goes():
    loader = CountingLoader()
    cache = ModelCache(loader, max_loaded=2)
    cache.get("a")
    cache.get("b")
    cache.get("a")  # now b is the least recently used
    cache.get("c")

    stats = cache.stats()
    assert stats.loaded == ("a", "c")
    assert stats.evictions == 1
    cache.get("b")  # evicted, so it loads again
    assert loader.calls == ["a", "b", "c", "b"]
    assert cache.stats().loaded == ("c", "b")


def test_the_bound_holds_under_concurrent_load_and_evicted_models_are_freed():
    loader = CountingLoader(delay=0.01)
    cache = ModelCache(loader, max_loaded=2)
    names = ["m0", "m1", "m2", "m3"]
    seen_sizes = []

    def request(n):
        rng = random.Random(n)
        for _ in range(25):
            model = cache.get(rng.choice(names))
            assert isinstance(model, FakeModel)
            seen_sizes.append(len(cache.stats().loaded))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, range(8)))

    assert max(seen_sizes) <= 2
    assert cache.stats().evictions > 0
    gc.collect()
    alive = [ref() for ref in loader.made if ref() is not None]
    # Once no request holds them, evicted models are gone: only the cached ones live.
    assert sorted(m.name for m in alive) == sorted(cache.stats().loaded)


def test_a_failed_load_reaches_every_waiter_and_is_not_cached():
    loader = CountingLoader(delay=0.2, fail={"broken"})
    cache = ModelCache(loader, max_loaded=2)
    start = threading.Barrier(4)

    def request(_):
        start.wait()
        with pytest.raises(errors.ModelUnavailable, match="no weights for broken"):
            cache.get("broken")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(request, range(4)))

    assert loader.calls == ["broken"]  # one load for the four callers
    assert cache.stats().failed_loads == 1
    assert cache.stats().loaded == ()
    loader.fail.clear()  # the weights have appeared: the next request loads them
    assert cache.get("broken").name == "broken"


def test_eviction_under_load_never_breaks_a_request_using_the_model():
    """Real torch modules, one slot, three models: every switch evicts one some thread is using."""

    def load(name: str) -> nn.Module:
        module = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
        # Its own generator: the global RNG is shared by the loading threads.
        generator = torch.Generator().manual_seed(int(name[-1]))
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        return module

    names = ["net0", "net1", "net2"]
    expected = {}
    batch = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for name in names:
            expected[name] = load(name)(batch)

    cache = ModelCache(load, max_loaded=1)
    failures = []

    def request(n):
        rng = random.Random(n)
        for _ in range(40):
            name = rng.choice(names)
            module = cache.get(name)
            time.sleep(rng.random() / 500)  # others switch models meanwhile
            with torch.inference_mode():
                output = module(batch)
            if not torch.allclose(output, expected[name], atol=1e-5):
                failures.append(name)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(request, range(6)))

    assert failures == []
    assert cache.stats().evictions > 10
    assert len(cache.stats().loaded) == 1


def test_max_loaded_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        ModelCache(CountingLoader(), max_loaded=0)
