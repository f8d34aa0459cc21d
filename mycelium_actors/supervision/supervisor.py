"""Supervisors with OTP semantics, built on slots and the system lane.

A supervisor is a slot whose incarnation runs no user handlers: it starts its
children in order, then serves *events* from its system lane one at a time
(child exits, finished start attempts, backoff timers, API requests). Every
decision about its children happens inside its own task, so there is no race
between two restarts.

Restarts run as *plans*: an ordered list of slots to start one after another.
Each start runs as its own task and reports back as an event, so the
supervisor keeps answering `start_child`, `terminate_child` and shutdown while
a child is in a slow or failing restart loop. Stopping siblings for a group
restart happens inline (as OTP does), each under its `shutdown` time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ..errors import ActorStopped, Ignore, MyceliumError, SupervisorGaveUp
from ..kernel.actor import Actor
from ..kernel.mailbox import STOP_DRAIN, STOP_NOW
from ..kernel.replies import settle
from ..kernel.slot import NORMAL, SHUTDOWN, Exit, Slot
from ..kernel.system import ActorSystem
from .spec import Child, Spec, Supervisor, set_root_starter


class StartFailed(MyceliumError):
    """A child failed while its tree (or `start_child`) was starting it."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{path} failed to start: {type(cause).__name__}: {cause}")
        self.path = path


class _SupervisorActor(Actor):
    """The instance behind a supervisor's ref: it handles no user messages."""


class _Plan:
    """Slots to start in order; `group` is what a one_for_all retry starts again."""

    __slots__ = ("group", "started", "task", "timer", "todo")

    def __init__(self, slots: list[Slot]) -> None:
        self.todo = list(slots)
        self.group = list(slots)
        self.started: list[Slot] = []
        self.task: asyncio.Task[None] | None = None
        self.timer: Any = None


class _Exited:
    __slots__ = ("exit", "generation", "slot")

    def __init__(self, slot: Slot, exit: Exit) -> None:
        self.slot, self.exit, self.generation = slot, exit, slot.generation


class _Started:
    __slots__ = ("exc", "plan", "slot")

    def __init__(self, plan: _Plan, slot: Slot, exc: BaseException | None) -> None:
        self.plan, self.slot, self.exc = plan, slot, exc


class _Go:
    """A plan's backoff delay is over."""

    __slots__ = ("plan",)

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan


class _Request:
    __slots__ = ("args", "kind", "reply")

    def __init__(self, kind: str, args: tuple[Any, ...], reply: asyncio.Future[Any]) -> None:
        self.kind, self.args, self.reply = kind, args, reply


def _spec_of(slot: Slot) -> Spec:
    spec: Spec = slot.spec
    return spec


def _new_slot(system: ActorSystem, parent: Slot | None, spec: Spec) -> Slot:
    """Create and register the (unstarted) slot for `spec`, below `parent` or at the top."""
    if isinstance(spec, Supervisor):
        slot = system.new_slot(
            parent,
            _SupervisorActor,
            (),
            {},
            name=spec.name,
            shutdown=spec.shutdown,
            slot_class=SupervisorSlot,
        )
    elif isinstance(spec, Child):
        slot = system.new_slot(
            parent,
            spec.actor_class,
            spec.args,
            spec.kwargs,
            name=spec.name,
            executor=spec.executor,
            shutdown=spec.shutdown,
            mailbox_capacity=spec.mailbox_capacity,
            mailbox_overflow=spec.mailbox_overflow,
        )
    else:  # a spec from a higher layer (a worker pool) makes its own slot
        slot = spec.new_slot(system, parent)
    slot.spec = spec
    return slot


def make_child_slot(system: ActorSystem, parent: SupervisorSlot, spec: Spec) -> Slot:
    """Create and register the slot for `spec` below `parent` (not started)."""
    slot = _new_slot(system, parent, spec)
    slot.owner = parent
    return slot


async def start_root(system: ActorSystem, spec: Spec) -> Any:
    slot = _new_slot(system, None, spec)
    try:
        await slot.start()
    except BaseException as exc:
        await slot.abort_start(exc)
        if isinstance(exc, StartFailed):
            raise StartFailed(exc.path, exc.__cause__ or exc) from exc.__cause__
        if isinstance(exc, Exception):
            raise StartFailed(slot.path, exc) from exc
        raise
    return slot.ref


set_root_starter(start_root)


class SupervisorSlot(Slot):
    """The slot of a supervisor: its incarnation supervises instead of serving handlers."""

    @property
    def kind(self) -> str:
        return "supervisor"

    serves_handlers = False  # its incarnation supervises: `_live` below, never inline

    @property
    def sup(self) -> Supervisor:
        spec: Supervisor = self.spec
        return spec

    # -- the owner interface (called by children and the system) -----------

    def child_exited(self, slot: Slot, exit: Exit) -> None:
        self.mailbox.put_system(_Exited(slot, exit))

    def start_timeout(self, slot: Slot) -> float | None:
        spec = _spec_of(slot)
        return spec.start_timeout if isinstance(spec, Child) else None

    def directive_for(self, slot: Slot, exc: BaseException) -> str | None:
        spec = _spec_of(slot)
        return spec.directive_for(exc) if isinstance(spec, Child) else None

    async def terminate(self, slot: Slot) -> None:
        await self._request("terminate", slot)

    async def restart_stopped(self, slot: Slot) -> None:
        await self._request("restart", slot)

    async def start_child(self, spec: Spec) -> Any:
        if not isinstance(spec, Spec):
            raise TypeError(f"start_child takes a Child, Supervisor or Pool spec, not {spec!r}")
        return await self._request("start_child", spec)

    async def _request(self, kind: str, *args: Any) -> Any:
        if self.status != "running" or self.mailbox.closed:
            if kind == "terminate":  # nobody supervises any more: stop it directly
                await args[0].stop_for_good()
                return None
            raise ActorStopped(f"supervisor {self.path} is {self.status}")
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.mailbox.put_system(_Request(kind, args, reply))
        return await reply

    def incarnation_ended(self, exit: Exit) -> None:
        if self.owner is None and exit.kind == "gave_up":
            assert isinstance(exit.exc, SupervisorGaveUp)
            self.finalize(exit)
            self.system.root_gave_up(exit.exc)
        elif self.owner is None and exit.kind == "shutdown":  # auto_shutdown: work done
            self.finalize(exit)
            self.system.root_finished()
        else:
            super().incarnation_ended(exit)

    # -- one incarnation -----------------------------------------------------

    async def _live(self, instance: Actor, ctx: Any) -> Exit:
        self._plans: list[_Plan] = []
        self._history: deque[float] = deque()
        try:
            await self._start_children()
        except Exception as exc:
            self._start_finished(exc)
            return Exit("crash", exc, in_start=True)
        if self.status == "restarting":
            self.restarts += 1
        self.status = "running"
        self.system.log_event("actor.started", self.path, kind=self.kind)
        self._start_finished(None)
        exit = await self._serve(instance)
        self.system.log_event("actor.stopped", self.path, reason=exit.kind, kind=self.kind)
        return exit

    async def _start_children(self) -> None:
        """Start the static children in order; on failure stop them in reverse and raise."""
        for child in list(self.children):
            if child.dynamic:
                self.system.unregister(child)  # added at run time: not recreated
        existing = {child.name: child for child in self.children}
        started: list[Slot] = []
        for spec in self.sup.children:
            slot = existing.get(spec.name)
            try:
                if slot is None:
                    slot = make_child_slot(self.system, self, spec)
                else:
                    slot.revive()
                if not await self._start_or_ignore(slot):
                    continue
            except Exception as exc:
                for done in reversed(started):
                    await done.stop_for_good()
                if slot is not None:
                    slot.finalize(Exit("crash", exc))
                if isinstance(exc, StartFailed):
                    raise StartFailed(exc.path, exc.__cause__ or exc) from exc.__cause__
                raise StartFailed(slot.path if slot else self.path, exc) from exc
            slot.started_at = self.system.clock.now()
            started.append(slot)

    async def _serve(self, instance: Actor) -> Exit:
        mb = self.mailbox
        while True:
            while mb.system:
                event = mb.next_signal()
                if event is STOP_DRAIN or event is STOP_NOW:
                    await self._stop_all()
                    return SHUTDOWN
                exit = await self._handle(event)
                if exit is not None:
                    return exit
            while mb.queue:
                self.unhandled(*mb.take())
            waiter = mb.park()
            if waiter is not None:
                await waiter

    async def _handle(self, event: Any) -> Exit | None:
        if isinstance(event, _Exited):
            return await self._on_exit(event)
        if isinstance(event, _Started):
            return await self._on_started(event)
        if isinstance(event, _Go):
            if event.plan in self._plans:
                self._advance(event.plan)
            return None
        if isinstance(event, _Request):
            await self._on_request(event)
        return None

    # -- child exits -----------------------------------------------------------

    async def _on_exit(self, event: _Exited) -> Exit | None:
        slot = event.slot
        if slot not in self.children or event.generation != slot.generation:
            return None  # stale: that incarnation was already dealt with
        if slot.status != "running":
            return None
        exit = event.exit
        if exit.escalate:
            assert exit.exc is not None
            return await self._give_up(
                f"{slot.path} escalated {type(exit.exc).__name__}: {exit.exc}"
            )
        spec = _spec_of(slot)
        restart = spec.restart
        if restart == "temporary" or (restart == "transient" and not exit.abnormal):
            self._drop_or_keep(slot, exit)
            if spec.significant and self._auto_shutdown_due():
                self.system.log_event("supervisor.auto_shutdown", self.path, significant=slot.path)
                await self._stop_all()
                return SHUTDOWN
            return None
        return await self._restart(slot)

    def _auto_shutdown_due(self) -> bool:
        """A significant child just ended by itself and is not restarted (OTP's rule)."""
        if self.sup.auto_shutdown == "any_significant":
            return True
        return not any(  # all_significant: no significant child is left running
            _spec_of(child).significant and child.status != "stopped" for child in self.children
        )

    def _forgets(self, slot: Slot) -> bool:
        """Whether a child stopped for good leaves the tree: a temporary one always,
        and under a dynamic supervisor any (it is never restarted by name)."""
        return _spec_of(slot).restart == "temporary" or self.sup.strategy == "dynamic"

    def _drop_or_keep(self, slot: Slot, exit: Exit) -> None:
        """A child that ended and will not be restarted: stopped for good."""
        slot.finalize(exit)
        if self._forgets(slot):
            self.system.unregister(slot)

    def _allow_restart(self) -> bool:
        """Record a restart; False when it goes over the intensity (sliding window)."""
        now = self.system.clock.now()
        history = self._history
        within = self.sup.within
        while history and now - history[0] > within:
            history.popleft()
        history.append(now)
        return len(history) <= self.sup.max_restarts

    async def _restart(self, failed: Slot) -> Exit | None:
        if not self._allow_restart():
            return await self._give_up()
        delay = self._backoff_delay(failed)
        if delay is None:
            return await self._give_up(self._backoff_exhausted(failed))
        strategy = self.sup.strategy
        if strategy in ("one_for_one", "dynamic"):
            group = [failed]
        else:
            index = self.children.index(failed)
            group = list(self.children) if strategy == "one_for_all" else self.children[index:]
        for slot in reversed(group):
            if slot is not failed:
                await self._stop_for_restart(slot)
        for slot in group:
            spec = _spec_of(slot)
            if isinstance(spec, Child) and spec.on_restart_mailbox == "drop":
                slot.mailbox.drop_queued("restart")
        failed.status = "restarting"
        plan = _Plan([s for s in group if s in self.children and s.status != "stopped"])
        self._launch(plan, delay)
        return None

    async def _stop_for_restart(self, slot: Slot) -> None:
        """Stop a sibling so its group can restart; temporary ones are dropped."""
        if slot.status == "stopped":
            return
        self._withdraw(slot)
        exit = await slot.stop_incarnation(STOP_NOW, slot.shutdown)
        if _spec_of(slot).restart == "temporary":
            self._drop_or_keep(slot, exit)
        else:
            slot.status = "restarting"

    def _backoff_delay(self, slot: Slot) -> float | None:
        """The delay before restarting `slot`; None once Backoff.max_restarts is spent."""
        backoff = self.sup.backoff
        if backoff is None:
            return 0.0
        started_at = slot.started_at
        now = self.system.clock.now()
        if started_at is not None and now - started_at >= backoff.reset_seconds:
            slot.backoff_n = 0
        slot.started_at = None  # set again on a good start
        if backoff.max_restarts is not None and slot.backoff_n >= backoff.max_restarts:
            return None
        delay = backoff.delay(slot.backoff_n)
        slot.backoff_n += 1
        return delay

    # -- plans: ordered starts -------------------------------------------------

    def _launch(self, plan: _Plan, delay: float) -> None:
        self._plans.append(plan)
        if delay > 0:
            plan.timer = self.system.clock.call_later(delay, self.mailbox.put_system, _Go(plan))
        else:
            self._advance(plan)

    def _withdraw(self, slot: Slot) -> None:
        """Take `slot` out of every plan, abandoning its start if one is in flight."""
        for plan in list(self._plans):
            if slot not in plan.todo:
                continue
            in_flight = plan.todo[0] is slot and plan.task is not None
            plan.todo.remove(slot)
            if in_flight:
                assert plan.task is not None
                plan.task.cancel()
                plan.task = None
                self._advance(plan)

    def _advance(self, plan: _Plan) -> None:
        plan.timer = None
        while plan.todo and (plan.todo[0] not in self.children or plan.todo[0].status == "stopped"):
            plan.todo.pop(0)
        if not plan.todo:
            self._plans.remove(plan)
            return
        slot = plan.todo[0]
        slot.status = "restarting"
        # No on_start to wait for: start it here, no task, and report it on our
        # own system lane, which `_serve` reads next (no loop turn either).
        exc: Exception | None = None
        try:
            started = slot.start_inline()
        except Exception as error:
            started, exc = True, error
        if started:
            self.mailbox.put_system(_Started(plan, slot, exc))
            return
        plan.task = asyncio.get_running_loop().create_task(self._attempt(plan, slot))

    async def _attempt(self, plan: _Plan, slot: Slot) -> None:
        exc: BaseException | None = None
        try:
            await slot.start()
        except asyncio.CancelledError:
            return  # the plan was abandoned (shutdown or give-up)
        except Exception as error:
            exc = error
        self.mailbox.put_system(_Started(plan, slot, exc))

    async def _on_started(self, event: _Started) -> Exit | None:
        plan, slot = event.plan, event.slot
        if plan not in self._plans:
            return None
        plan.task = None
        if isinstance(event.exc, Ignore):  # the restart declined: kept stopped, plan goes on
            await self._ignored(slot)
            if plan.todo and plan.todo[0] is slot:
                plan.todo.pop(0)
            self._advance(plan)
            return None
        if event.exc is None:
            slot.started_at = self.system.clock.now()
            self.system.log_event("actor.restarted", slot.path, restarts=slot.restarts)
            if plan.todo and plan.todo[0] is slot:
                plan.todo.pop(0)
            plan.started.append(slot)
            self._advance(plan)
            return None
        slot.status = "restarting"
        if not self._allow_restart():
            return await self._give_up()
        delay = self._backoff_delay(slot)
        if delay is None:
            return await self._give_up(self._backoff_exhausted(slot))
        self._plans.remove(plan)
        if self.sup.strategy == "one_for_all":
            for done in reversed(plan.started):
                await self._stop_for_restart(done)
            retry = _Plan([s for s in plan.group if s in self.children])
        else:
            retry = _Plan(plan.todo)  # rest_for_one / one_for_one: from the failed child on
        self._launch(retry, delay)
        return None

    def _backoff_exhausted(self, slot: Slot) -> str:
        assert self.sup.backoff is not None
        return f"{slot.path} failed after {self.sup.backoff.max_restarts} restarts in a row"

    def _cancel_plans(self) -> None:
        for plan in self._plans:
            if plan.timer is not None:
                plan.timer.cancel()
            if plan.task is not None:
                plan.task.cancel()
        self._plans.clear()

    # -- requests from outside -------------------------------------------------

    async def _on_request(self, request: _Request) -> None:
        try:
            result = await getattr(self, f"_do_{request.kind}")(*request.args)
        except Exception as exc:
            settle(request.reply, exc=exc)
        else:
            settle(request.reply, result)

    async def _do_terminate(self, slot: Slot) -> None:
        if slot not in self.children:
            raise MyceliumError(f"{slot.path} is not a child of {self.path}")
        self._withdraw(slot)
        await slot.stop_for_good()
        if self._forgets(slot):
            self.system.unregister(slot)

    async def _do_restart(self, slot: Slot) -> None:
        if slot not in self.children:
            raise MyceliumError(f"{slot.path} is not a child of {self.path}")
        if self.sup.strategy == "dynamic":
            raise MyceliumError(f"{self.path} is dynamic: start a new child instead")
        if slot.status != "stopped":
            raise MyceliumError(f"{slot.path} is {slot.status}; only a stopped child restarts")
        slot.revive()
        if await self._start_or_ignore(slot):  # declining again leaves it stopped
            slot.started_at = self.system.clock.now()

    async def _do_start_child(self, spec: Spec) -> Any:
        if any(child.name == spec.name for child in self.children):
            raise MyceliumError(f"{self.path}/{spec.name} is already started")
        limit = self.sup.max_children
        if limit is not None and sum(c.status != "stopped" for c in self.children) >= limit:
            raise MyceliumError(f"{self.path} already has max_children={limit} children")
        slot = make_child_slot(self.system, self, spec)
        slot.dynamic = True
        try:
            if not await self._start_or_ignore(slot):
                return None
        except BaseException as exc:
            await slot.abort_start(exc)
            self.system.unregister(slot)
            raise
        slot.started_at = self.system.clock.now()
        return slot.ref

    async def _start_or_ignore(self, slot: Slot) -> bool:
        """Start `slot`; False if its `on_start` raised `Ignore` (handled here)."""
        try:
            await slot.start()
        except Ignore:
            await self._ignored(slot)
            return False
        return True

    async def _ignored(self, slot: Slot) -> None:
        """`on_start` raised `Ignore`: not started, not failed. A child `_forgets`
        drops is gone; any other stays listed as stopped, for `restart_child`."""
        await slot.stop_incarnation(STOP_NOW, slot.shutdown)
        slot.finalize(NORMAL)
        if self._forgets(slot):
            self.system.unregister(slot)

    # -- ending ------------------------------------------------------------------

    def stops_children_together(self) -> bool:
        """Whether a shutdown stops the children all at once rather than newest
        first: a dynamic supervisor's have no order among them, as in OTP."""
        return self.sup.strategy == "dynamic"

    async def _stop_all(self, drain: bool = True) -> None:
        """Stop every child for good, newest first (shutdown of this supervisor).

        A graceful shutdown drains queued messages; a give-up does not, so the
        asks still queued in the subtree fail with ActorStopped at once.
        """
        self._cancel_plans()
        children = list(reversed(list(self.children)))
        if self.stops_children_together():
            await asyncio.gather(*(self._stop_child(slot, drain) for slot in children))
        else:
            for slot in children:
                await self._stop_child(slot, drain)
        self._fail_requests()

    async def _stop_child(self, slot: Slot, drain: bool) -> None:
        if drain:
            self.system.log_stopping(slot)
        try:
            await slot.stop_for_good(drain=drain)
        except Exception as exc:
            self.system.log_crash(slot.path, exc, during="shutdown")
        if _spec_of(slot).restart == "temporary":
            self.system.unregister(slot)

    async def _give_up(self, reason: str | None = None) -> Exit:
        sup = self.sup
        error = SupervisorGaveUp(self.path, sup.max_restarts, sup.within, reason)
        self.system.log_event("supervisor.gave_up", self.path, level="error", reason=str(error))
        await self._stop_all(drain=False)
        return Exit("gave_up", error)

    def _fail_requests(self) -> None:
        for event in self.mailbox.remove_signals(lambda event: isinstance(event, _Request)):
            settle(event.reply, exc=ActorStopped(f"supervisor {self.path} stopped"))
