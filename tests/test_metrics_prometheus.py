"""`mycelium_actors.metrics.serve` (API.md 11): /metrics in the Prometheus text
format, scraped with urllib on 127.0.0.1 and parsed with prometheus-client's
own parser; the `metrics_max_paths` fold; the server stops with the system."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
from actors import Boom, Crash, Ping, Record, Worker
from prometheus_client.parser import text_string_to_metric_families

import mycelium_actors
from mycelium_actors import ActorSystem, MyceliumError

WAIT = 30.0
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def fetch(url: str | urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def scrape(host: str, port: int) -> Samples:
    """Every sample of /metrics, by (name, labels)."""
    status, text = await asyncio.to_thread(fetch, f"http://{host}:{port}/metrics")
    assert status == 200, text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def series(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


@pytest.fixture
async def small() -> AsyncIterator[ActorSystem]:
    """A system that folds per-actor series past 2 live actors."""
    async with ActorSystem("small", metrics_max_paths=2) as system:
        yield system


async def test_metrics_are_served_with_the_names_and_labels_of_the_contract(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Worker, name="w")
    for i in range(3):
        await ref.tell(Record(i))
    await ref.ask(Ping())
    with pytest.raises(Crash):
        await ref.ask(Boom())  # unsupervised: it stops for good
    other = await system.spawn(Worker, name="v")
    await other.ask(Ping())
    await other.tell(2.5)  # unhandled: a dead letter
    host, port = await mycelium_actors.metrics.serve(system, port=0)
    assert host == "127.0.0.1" and port > 0
    samples = await scrape(host, port)
    v = {"path": "/v", "actor_class": "actors:Worker"}
    assert series(samples, "mycelium_messages_handled_total", **v) == 1
    assert series(samples, "mycelium_handler_failures_total", **v) == 0
    assert series(samples, "mycelium_restarts_total", **v) == 0
    assert series(samples, "mycelium_mailbox_depth", **v) == 0
    assert series(samples, "mycelium_handler_seconds_count", **v) == 1
    assert series(samples, "mycelium_handler_seconds_bucket", **v, le="+Inf") == 1
    assert series(samples, "mycelium_handler_seconds_sum", **v) > 0
    assert series(samples, "mycelium_asks_total") == 3
    assert series(samples, "mycelium_dead_letters_total") == 1
    assert not any(labels and dict(labels).get("path") == "/w" for _, labels in samples)


async def test_past_metrics_max_paths_series_are_summed_by_class(small: ActorSystem) -> None:
    refs = [await small.spawn(Worker, name=f"w{i}") for i in range(3)]
    for n, ref in enumerate(refs, start=1):
        for _ in range(n):
            await ref.ask(Ping())
    samples = await scrape(*await mycelium_actors.metrics.serve(small))
    folded = {"path": "*", "actor_class": "actors:Worker"}
    assert series(samples, "mycelium_messages_handled_total", **folded) == 1 + 2 + 3
    assert series(samples, "mycelium_handler_seconds_count", **folded) == 6
    paths = {dict(labels).get("path") for _, labels in samples} - {None}
    assert paths == {"*"}


async def test_the_server_stops_with_the_system() -> None:
    async with ActorSystem("brief") as system:
        host, port = await mycelium_actors.metrics.serve(system)
        await scrape(host, port)
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)


async def test_only_get_metrics_is_served(system: ActorSystem) -> None:
    host, port = await mycelium_actors.metrics.serve(system)
    status, _ = await asyncio.to_thread(fetch, f"http://{host}:{port}/other")
    assert status == 404
    request = urllib.request.Request(f"http://{host}:{port}/metrics", data=b"x", method="POST")
    status, _ = await asyncio.to_thread(fetch, request)
    assert status == 405


async def test_serving_without_metrics_is_an_error() -> None:
    async with ActorSystem("off", metrics=False) as system:
        with pytest.raises(MyceliumError, match="metrics=False"):
            await mycelium_actors.metrics.serve(system)
