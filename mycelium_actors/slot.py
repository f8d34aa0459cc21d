"""Slots (logical actors) and their incarnations (instances), with the mailbox loop.

A `Slot` holds the path, the ref and the mailbox; each start creates a new
incarnation: an instance of the actor class plus one task that runs
`on_start`, serves the mailbox, then `on_stop`. When an incarnation ends on its
own (crash, `context.stop()`), its *owner* decides what follows: a supervisor
may restart it; without one the slot stops for good. When someone stops it
(`stop_incarnation`), that caller is in charge and the owner is not asked.

Stop signals travel on the mailbox's system lane, so a full mailbox never
blocks a stop or a restart. Every wait here is bounded: after the `shutdown`
time the task is cancelled, and after `kill_grace` more it is abandoned.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol, cast

from .actor import Actor, Unhandled, constructing
from .context import ActorContext
from .errors import ActorStopped, Ignore, MyceliumError, UnhandledMessage
from .mailbox import STOP_DRAIN, STOP_NOW, STOP_SELF, Mailbox, Signal
from .messages import Terminated
from .ref import LocalActorRef, Watcher, serving
from .replies import Outbox, outbox_of, settle

if TYPE_CHECKING:
    from .executor import Executor, Runner
    from .system import ActorSystem


class Exit:
    """Why an incarnation ended: normal, shutdown, crash, killed or gave_up."""

    __slots__ = ("escalate", "exc", "in_start", "kind")

    def __init__(
        self,
        kind: str,
        exc: BaseException | None = None,
        in_start: bool = False,
        escalate: bool = False,
    ):
        self.kind = kind
        self.exc = exc
        self.in_start = in_start
        self.escalate = escalate  # the owner should give up at once (a directive)

    @property
    def abnormal(self) -> bool:
        return self.kind in ("crash", "killed", "gave_up")

    def __repr__(self) -> str:
        return f"Exit({self.kind}{', ' + repr(self.exc) if self.exc else ''})"


NORMAL = Exit("normal")
SHUTDOWN = Exit("shutdown")
KILLED = Exit("killed")


class Owner(Protocol):
    """What a slot may ask of its owner (a supervisor); all of it, declared here."""

    def child_exited(self, slot: Slot, exit: Exit) -> None:
        """An incarnation of `slot` ended on its own: decide what follows."""

    def start_timeout(self, slot: Slot) -> float | None:
        """How long `slot`'s `on_start` may take (None: no limit)."""

    def directive_for(self, slot: Slot, exc: BaseException) -> str | None:
        """ "resume", "stop" or "escalate" for a handler exception, or None: a crash."""

    async def terminate(self, slot: Slot) -> None:
        """Stop `slot` for good (an outside `ref.stop()` or `terminate_child`)."""

    async def restart_stopped(self, slot: Slot) -> None:
        """Start again a child that was stopped for good (`restart_child`)."""


_BASE_HOOKS = frozenset((Actor.on_start, Actor.on_stop, Actor.on_failure))


def is_crash(exc: BaseException) -> bool:
    """Whether an exception escaping user code is a crash (supervision.md section 0).

    KeyboardInterrupt and SystemExit end the program. A CancelledError is a
    kill only when somebody cancelled the actor's task (the framework after a
    shutdown time, or an outside cancel); one raised by user code is a crash.
    """
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return False
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        return task is None or task.cancelling() == 0
    return True


def _for_asker(exc: BaseException) -> BaseException:
    """What the asker of a crashed message receives: the exception itself, except a
    stray CancelledError, which would cancel the asker's own task."""
    if isinstance(exc, asyncio.CancelledError):
        error = MyceliumError("the handler raised CancelledError")
        error.__cause__ = exc
        return error
    return exc


async def wait_done(system: ActorSystem, fut: asyncio.Future[Any], timeout: float | None) -> bool:
    """Wait until `fut` is done or `timeout` (system clock) passes; True if done."""
    if fut.done():
        return True
    if timeout is None:
        await asyncio.wait((fut,))
        return True
    waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def finish(value: bool) -> None:
        if not waiter.done():
            waiter.set_result(value)

    def on_done(_: Any) -> None:
        finish(True)

    fut.add_done_callback(on_done)
    timer = system.clock.call_later(timeout, finish, False)
    try:
        return await waiter
    finally:
        timer.cancel()
        fut.remove_done_callback(on_done)


class Slot:
    """A logical actor: stable path, ref and mailbox across incarnations."""

    # Slots keep an idle actor small; backoff_n, dynamic, spec and started_at are
    # a supervisor's bookkeeping for its children (SupervisorSlot has a __dict__).
    __slots__ = (
        "_done",
        "_driven",
        "_final",
        "_starting",
        "actor_class",
        "args",
        "asking",
        "backoff_n",
        "children",
        "context",
        "dynamic",
        "executor",
        "generation",
        "handling",
        "instance",
        "kwargs",
        "mailbox",
        "name",
        "owner",
        "parent",
        "path",
        "ref",
        "restarts",
        "runner",
        "shutdown",
        "spec",
        "started_at",
        "status",
        "system",
        "task",
        "watchers",
    )

    def __init__(
        self,
        system: ActorSystem,
        path: str,
        actor_class: type[Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        parent: Slot | None,
        executor: Executor,
        shutdown: float | None,
        mailbox_capacity: int | None,
        mailbox_overflow: str | None,
    ) -> None:
        self.system = system
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.actor_class = actor_class
        self.args = args
        self.kwargs = kwargs
        self.parent = parent
        self.owner: Owner | None = None
        self.executor = executor
        self.runner: Runner | None = None
        self.shutdown = shutdown
        self.mailbox = Mailbox(
            path,
            actor_class.mailbox_capacity if mailbox_capacity is None else mailbox_capacity,
            actor_class.mailbox_overflow if mailbox_overflow is None else mailbox_overflow,
            self._dead_letter,
        )
        self.ref: LocalActorRef[Any] = system.make_ref(self)
        self.status = "starting"
        self.restarts = 0
        self.instance: Actor | None = None
        self.context: ActorContext | None = None
        self.task: asyncio.Task[Any] | None = None
        self.children: list[Slot] = []
        self.watchers: list[Watcher] = []
        self.handling: Any = None  # the async handler or hook running now (self-ask check)
        self.asking: Slot | None = None  # whom the running handler awaits an ask of
        self._done: asyncio.Future[Exit] | None = None
        self.generation = 0
        self._driven = False
        self._final: asyncio.Future[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self.spec: Any = None
        self.dynamic = False
        self.backoff_n = 0
        self.started_at: float | None = None

    def __repr__(self) -> str:
        return f"<Slot {self.path} {self.status}>"

    @property
    def kind(self) -> str:
        return "actor"

    def _dead_letter(self, message: Any, reason: str) -> None:
        self.system.dead_letter(self.path, message, reason)

    async def attach(self) -> None:
        """Get a runner from the executor and bind the mailbox to its loop."""
        runner = await self.executor.attach(self.path)
        self.runner = runner
        self.mailbox.bind(runner.loop, runner.thread_id)

    # -- starting ----------------------------------------------------------

    async def start(self) -> None:
        """Start a new incarnation and wait for its `on_start` to finish.

        Raises whatever the constructor or `on_start` raised; the failed
        incarnation is over by then (its `on_failure` ran, `on_stop` did not).
        """
        if self.runner is None:
            await self.attach()
        assert self.runner is not None
        self.generation += 1
        self._driven = False
        if self.status != "restarting":
            self.status = "starting"
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._starting = started
        done = self.runner.submit(self._run())
        self._done = done
        done.add_done_callback(self._incarnation_done)
        limit = self.owner.start_timeout(self) if self.owner is not None else None
        timer = None
        if limit is not None:
            timer = self.system.clock.call_later(limit, self._start_timed_out, started, limit)
        try:
            await started  # cancelling our wait cancels `started`, which _run tolerates
        except asyncio.CancelledError:
            self.cancel_task()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _start_timed_out(self, started: asyncio.Future[None], limit: float) -> None:
        if not started.done():
            started.set_exception(
                TimeoutError(f"{self.path}: on_start did not finish within {limit}s")
            )
            self.cancel_task()

    def _incarnation_done(self, fut: asyncio.Future[Exit]) -> None:
        if fut is not self._done or self._driven:
            return  # a stopper is in charge, or the incarnation was abandoned
        exit = _exit_of(fut)
        if exit.in_start:
            return  # the starter got the exception and decides
        self.incarnation_ended(exit)

    def incarnation_ended(self, exit: Exit) -> None:
        """An incarnation ended on its own: the owner decides, else stop for good."""
        if self.owner is not None:
            self.owner.child_exited(self, exit)
        else:
            self.finalize(exit)

    def _start_finished(self, exc: BaseException | None) -> None:
        """Tell the starter how `on_start` ended (once per incarnation)."""
        started, self._starting = self._starting, None
        if started is not None:
            settle(started, exc=exc)

    async def _run(self) -> Exit:
        self.task = asyncio.current_task()
        ctx = ActorContext(self)
        self.context = ctx
        token = constructing.set(ctx)
        try:
            try:
                instance = self.actor_class(*self.args, **self.kwargs)
                instance.bind_context(ctx)
                self.instance = instance
            finally:
                constructing.reset(token)
            del token
            return await self._live(instance, ctx)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_crash(exc):
                return await self._killed()
            if not is_crash(exc):
                raise  # KeyboardInterrupt, SystemExit: the program ends
            self.system.log_crash(self.path, exc, during="init")  # the constructor raised
            self._start_finished(exc)
            return Exit("crash", exc, in_start=True)
        finally:
            ctx.cancel_all()
            self.task = None
            self.handling = None

    async def _killed(self) -> Exit:
        exit = Exit("killed", in_start=self._starting is not None)
        self._start_finished(ActorStopped(f"{self.path} was killed while starting"))
        try:
            await self.stop_children()
        except (Exception, asyncio.CancelledError) as exc:  # a second cancel
            self.system.log_crash(self.path, exc, during="kill")
        self.system.log_event("actor.stopped", self.path, reason="killed")
        return exit

    async def _hook(self, hook: Any, *args: Any) -> BaseException | None:
        """Run a lifecycle hook as the actor; the crash it raised, if any.

        A hook the class does not override (`Actor`'s own no-op) is not run at
        all: most actors have none, and spawning should not pay for them."""
        if getattr(hook, "__func__", None) in _BASE_HOOKS:
            return None
        marker = self.handling = object()  # asks to self from here would wait for themselves
        token = serving.set((self, marker))
        try:
            await hook(*args)
        except BaseException as exc:
            if not is_crash(exc):
                raise
            return exc
        finally:
            self.handling = None
            serving.reset(token)  # an idle actor's context keeps no entry for it
        return None

    async def _live(self, instance: Actor, ctx: ActorContext) -> Exit:
        exc = await self._hook(instance.on_start)
        if isinstance(exc, Ignore):  # declined to start: no crash, no on_failure
            await self.stop_children()
            self.system.log_event("actor.ignored", self.path)
            self._start_finished(exc)
            return Exit("normal", in_start=True)
        if exc is not None:
            self.system.log_crash(self.path, exc, during="on_start")
            await self._call_hook(instance.on_failure, exc)
            await self.stop_children()
            self._start_finished(exc)
            return Exit("crash", exc, in_start=True)
        if self.status == "restarting":
            self.restarts += 1  # before any message, so tree() never lags behind
        self.status = "running"
        self.system.log_event("actor.started", self.path)
        self._start_finished(None)
        exit = await self._serve(instance)
        if exit.kind == "crash":
            assert exit.exc is not None
            self.system.log_crash(self.path, exit.exc, during="handler")
            await self._call_hook(instance.on_failure, exit.exc)
        await self.stop_children()
        exc = await self._hook(instance.on_stop)
        if exc is not None:
            self.system.log_crash(self.path, exc, during="on_stop")
            if exit.kind == "normal":
                exit = Exit("crash", exc)  # a failed voluntary stop is a crash, as in OTP
        self.system.log_event("actor.stopped", self.path, reason=exit.kind)
        return exit

    async def _call_hook(self, hook: Any, exc: BaseException) -> None:
        hook_exc = await self._hook(hook, exc)
        if hook_exc is not None:
            self.system.log_crash(self.path, hook_exc, during="on_failure")

    async def _serve(self, instance: Actor) -> Exit:
        """The mailbox loop: the hot path. No task, log or isinstance per message."""
        mb = self.mailbox
        queue = mb.queue
        cls = type(instance)
        dispatch = cls._dispatch
        miss = cls.dispatch_miss
        loop = asyncio.get_running_loop()
        set_serving = serving.set
        # The last foreign asker's loop and its outbox (set together before use).
        last_asker: asyncio.AbstractEventLoop | None = None
        outbox = cast(Outbox, None)
        draining = False
        while True:
            if mb.system:
                signal = mb.next_signal()
                if signal is STOP_NOW:
                    return SHUTDOWN
                if signal is STOP_SELF:
                    return NORMAL
                if signal is STOP_DRAIN:
                    draining = True
                continue
            if not queue:
                if draining:
                    return SHUTDOWN
                # Hold nothing while idle: the last message and reply may be large.
                message = reply = result = item = None
                waiter = mb.park()
                if waiter is not None:
                    await waiter
                continue
            item = mb.take()  # read each time: it changes while senders wait for room
            message, reply = item
            mtype = type(message)
            fn, is_async = dispatch.get(mtype) or miss(mtype)
            try:
                if is_async:
                    self.handling = item
                    set_serving((self, item))
                    try:
                        result = await fn(instance, message)
                    finally:
                        self.handling = None
                else:
                    result = fn(instance, message)
            except Unhandled:
                self._unhandled(message, reply)
                continue
            except BaseException as exc:
                if not is_crash(exc):
                    if reply is not None and isinstance(exc, asyncio.CancelledError):
                        # killed mid-message: the asker must not hang
                        settle(reply, exc=ActorStopped(f"{self.path} was killed while handling it"))
                    raise
                if reply is not None:
                    settle(reply, exc=_for_asker(exc))
                exit = self._failed(exc)
                if exit is not None:
                    return exit
                continue
            if reply is not None:
                asker = reply.get_loop()
                if asker is loop:
                    if not reply.done():
                        reply.set_result(result)
                else:  # another loop is another thread: one wake-up per burst of replies
                    if asker is not last_asker:
                        last_asker, outbox = asker, outbox_of(asker)
                    outbox.post(reply, result, None)

    def _failed(self, exc: BaseException) -> Exit | None:
        """A handler raised: the owner's directive, or a crash. None: go on (resume)."""
        owner = self.owner
        directive = owner.directive_for(self, exc) if owner is not None else None
        if directive is None:
            return Exit("crash", exc)
        if directive == "resume":  # keep the instance and its state
            self.system.log_event("actor.resumed", self.path, level="warning", error=repr(exc))
            return None
        if directive == "stop":
            self.system.log_crash(self.path, exc, during="handler")
            return NORMAL
        return Exit("crash", exc, escalate=True)

    def _unhandled(self, message: Any, reply: asyncio.Future[Any] | None) -> None:
        if reply is not None:
            settle(
                reply,
                exc=UnhandledMessage(
                    f"{self.path} ({self.actor_class.__qualname__}) has no handler for "
                    f"{type(message).__qualname__}"
                ),
            )
        else:
            self._dead_letter(message, "unhandled")

    # -- stopping ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    def cancel_task(self) -> None:
        """Cancel the running incarnation, on whichever loop it runs."""
        task = self.task
        if task is not None:
            loop = task.get_loop()
            if loop is asyncio.get_running_loop():
                task.cancel()
            else:
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:
                    pass  # its loop is closed: nothing left to cancel
            return
        done = self._done
        if done is not None and not done.done():
            done.cancel()

    async def stop_incarnation(self, signal: Signal, timeout: float | None) -> Exit:
        """End the running incarnation: signal it, then cancel, then abandon.

        `timeout` is the slot's shutdown time (None: wait; 0: cancel at once).
        Returns the exit; the owner is not told (the caller is in charge).
        """
        done = self._done
        self._driven = True
        if done is None or done.done():
            return _exit_of(done) if done is not None else SHUTDOWN
        if timeout != 0:
            self.mailbox.put_system(signal)
            await asyncio.sleep(0)  # an idle actor ends within one loop turn: skip the timer
            if done.done() or await wait_done(self.system, done, timeout):
                return _exit_of(done)
        self.cancel_task()
        if await wait_done(self.system, done, self.system.kill_grace):
            return KILLED
        self.system.log_event(
            "actor.abandoned", self.path, level="error", reason="ignored cancellation"
        )
        self.task = None
        return KILLED

    async def stop_for_good(self, drain: bool = True) -> None:
        """Stop gracefully and never restart: drain queued messages, run `on_stop`."""
        if self._final is not None:
            await asyncio.shield(self._final)
            return
        self._final = asyncio.get_running_loop().create_future()
        try:
            self.mailbox.close()
            exit = await self.stop_incarnation(STOP_DRAIN if drain else STOP_NOW, self.shutdown)
            self.finalize(exit)
        finally:
            self._final.set_result(None)

    async def abort_start(self, exc: BaseException) -> None:
        """A start failed or was cancelled: let the incarnation finish its cleanup
        (bounded by the shutdown time), then stop the slot for good."""
        await self.stop_incarnation(STOP_NOW, self.shutdown)
        self.finalize(Exit("crash", exc if isinstance(exc, Exception) else None))

    def finalize(self, exit: Exit) -> None:
        """The slot is stopped for good: fail what is queued, tell the watchers."""
        if self.status == "stopped":
            return
        self.status = "stopped"
        self._driven = True
        self.mailbox.finish()
        watchers, self.watchers = self.watchers, []
        for watcher in watchers:
            watcher.deliver(Terminated(self.ref, exit.kind))
        self.system.slot_stopped(self)

    def add_watcher(self, watcher: Watcher) -> None:
        """Tell `watcher` `Terminated` once when this slot stops for good (at once if it has)."""
        if self.status == "stopped":
            watcher.deliver(Terminated(self.ref, "stopped"))
        elif watcher not in self.watchers:
            self.watchers.append(watcher)

    def revive(self) -> None:
        """Make a slot that stopped for good startable again (same ref, same mailbox)."""
        self.status = "starting"
        self.mailbox.reopen()
        self._final = None

    def deliver(self, message: Any) -> None:
        """Best-effort tell from the framework (timers, death notices)."""
        try:
            self.mailbox.put_nowait((message, None))
        except Exception:
            self._dead_letter(message, "mailbox_full")

    async def stop_children(self) -> None:
        """Stop this incarnation's spawned children, newest first."""
        for child in reversed(list(self.children)):
            await self.system.on_system_loop(child.stop_for_good())


def _exit_of(fut: asyncio.Future[Any]) -> Exit:
    if fut.cancelled():
        return KILLED
    exc = fut.exception()
    if exc is not None:
        return Exit("crash", exc)
    result: Exit = fut.result()
    return result
