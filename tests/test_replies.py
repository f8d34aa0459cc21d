"""`replies.resume` and outboxes, on the early path (`Future._callbacks`) and without it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mycelium_actors.kernel import replies
from mycelium_actors.testing import eventually


class Stepper(asyncio.Task[None]):
    """A task whose bound method, added as a done-callback, looks like a task's step."""

    def broken_step(self, fut: asyncio.Future[Any]) -> None:
        raise ValueError("the step failed")


async def idle() -> None:
    pass


async def wait_on(fut: asyncio.Future[Any]) -> Any:
    return await fut


@pytest.fixture(params=[True, False], ids=["early_path", "ordinary_path"])
def early(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if not request.param:  # as on an interpreter whose futures fail the probe
        monkeypatch.setattr(replies, "_EARLY_TYPES", frozenset())
    return bool(request.param)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the running loop's exception handler."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)


def test_this_interpreters_futures_pass_the_probe() -> None:
    assert asyncio.Future in replies._EARLY_TYPES


async def test_resume_runs_the_waiting_task_in_the_same_pass_only_on_the_early_path(
    early: bool,
) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    got: list[Any] = []

    async def waiter() -> None:
        got.append(await wait_on(fut))

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the task now waits on `fut`
    seen: list[list[Any]] = []
    loop.call_soon(lambda: (replies.resume(fut, 7), seen.append(list(got))))
    await asyncio.wait_for(task, 5)
    assert got == [7]
    assert seen == ([[7]] if early else [[]])


async def test_a_failing_step_reaches_the_loop_handler_and_the_rest_of_the_drain_completes(
    early: bool, loop_errors: list[dict[str, Any]]
) -> None:
    loop = asyncio.get_running_loop()
    broken, waited = loop.create_future(), loop.create_future()
    stepper = Stepper(idle())
    broken.add_done_callback(stepper.broken_step)
    task = asyncio.create_task(wait_on(waited))
    await asyncio.sleep(0)  # the task now waits on `waited`
    outbox = replies.outbox_of(loop)
    outbox.post(broken, 1, None)  # both in one burst: one drain
    outbox.post(waited, 2, None)
    assert await asyncio.wait_for(task, 5) == 2
    await asyncio.wait_for(stepper, 5)
    await eventually(lambda: loop_errors)  # the ordinary path reports a pass later
    [error] = loop_errors
    assert isinstance(error["exception"], ValueError)
    assert broken.result() == 1
