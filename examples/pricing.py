"""The pricing actor of `examples/process_pool.py` and its messages: a module of
its own, so that a worker process can import `examples.pricing:Pricer`."""

from __future__ import annotations

import os
import random

import attrs

from mycelium_actors import Actor, handler, message


@message(id=4201)
@attrs.frozen
class Price:
    """The price of a European call, by `paths` Monte Carlo paths (seeded)."""

    spot: float
    strike: float
    paths: int
    seed: int


@message(id=4202)
@attrs.frozen
class WhoAmI:
    """Answered with the worker's process id."""


class Pricer(Actor):
    """Prices options; runs in a worker process of its own."""

    @handler
    def price(self, msg: Price) -> float:
        rng = random.Random(msg.seed)
        drift, vol = -0.02, 0.2  # one year, r = 0: drift = -vol**2 / 2
        total = 0.0
        for _ in range(msg.paths):
            end = msg.spot * 2.718281828459045 ** (drift + vol * rng.gauss(0.0, 1.0))
            total += max(end - msg.strike, 0.0)
        return total / msg.paths

    @handler
    def who(self, msg: WhoAmI) -> int:
        return os.getpid()
