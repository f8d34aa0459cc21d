"""Slots (logical actors) and their incarnations (instances).

A `Slot` holds the path, the ref and the mailbox; each start creates a new
incarnation: an instance of the actor class, a task that runs `on_start`
(none when the class has no `on_start`: it starts inline), then a `Server`
that serves the mailbox from the loop's dispatcher (no task
while idle: see dispatcher.py), then `on_stop` (in a task only when there
is a hook or a child to wait for). When an incarnation ends on its
own (crash, `context.stop()`), its *owner* decides what follows: a supervisor
may restart it; without one the slot stops for good. When someone stops it
(`stop_incarnation`), that caller is in charge and the owner is not asked.

Stop signals travel on the mailbox's system lane, so a full mailbox never
blocks a stop or a restart. Every wait here is bounded: after the `shutdown`
time the task is cancelled, and after `kill_grace` more it is abandoned.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ActorStopped, Ignore, UnhandledMessage
from .actor import Actor, constructing
from .context import ActorContext
from .dispatcher import BUSY, DONE, EAGER, IDLE, READY, Server
from .exits import KILLED, NORMAL, SHUTDOWN, Exit, exit_of, is_crash, wait_done
from .mailbox import STOP_DRAIN, STOP_NOW, Mailbox, Signal
from .messages import Envelope, Terminated
from .ref import LocalActorRef, Watcher, serving
from .replies import settle

__all__ = ["KILLED", "NORMAL", "SHUTDOWN", "Exit", "Owner", "Slot", "is_crash"]

if TYPE_CHECKING:
    from .executor import Executor, Runner
    from .stats import HandlerStats
    from .system import ActorSystem


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


_NO_CHILDREN: list[Slot] = []  # shared, never appended to
_NO_WATCHERS: list[Watcher] = []  # shared, never appended to
_BASE_HOOKS = frozenset((Actor.on_start, Actor.on_stop, Actor.on_failure))


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
        "server",
        "shutdown",
        "spec",
        "started_at",
        "stats",
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
            system,  # the dead-letter sink, shared: no callback per mailbox
        )
        self.ref: LocalActorRef[Any] = system.make_ref(self)
        self.status = "starting"
        self.restarts = 0
        self.instance: Actor | None = None
        self.context: ActorContext | None = None
        self.task: asyncio.Task[Any] | None = None  # the task running for it now, if any
        self.server: Server | None = None  # the serving part of the current incarnation
        # Shared empty lists until the first child or watcher: most actors have none.
        self.children: list[Slot] = _NO_CHILDREN  # appended to only through `adopt`
        self.watchers: list[Watcher] = _NO_WATCHERS
        self.handling: Any = None  # the async handler or hook running now (self-ask check)
        # The asks its handlers await: (invocation, target) pairs (ask cycles).
        self.asking: list[tuple[Any, Slot]] | None = None
        self._done: asyncio.Future[Exit] | None = None
        self.generation = 0
        self._driven = False
        self._final: asyncio.Future[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self.spec: Any = None
        self.dynamic = False
        self.backoff_n = 0
        self.started_at: float | None = None
        self.stats: HandlerStats | None = None  # made at its first turn, if metrics are on

    def __repr__(self) -> str:
        return f"<Slot {self.path} {self.status}>"

    @property
    def kind(self) -> str:
        return "actor"

    #: Whether incarnations serve the actor's handlers (a supervisor's do not).
    serves_handlers = True

    def _dead_letter(self, message: Any, reason: str) -> None:
        self.system.dead_letter(self.path, message, reason)

    async def attach(self) -> None:
        """Get a runner from the executor and bind the mailbox to its loop."""
        self._bind(self.executor.attach_now(self.path) or await self.executor.attach(self.path))

    def _bind(self, runner: Runner) -> None:
        self.runner = runner
        self.mailbox.bind(runner.loop, runner.thread_id)
        self.system.watch_loop(runner.loop, runner.thread_id)

    # -- starting ----------------------------------------------------------

    async def start(self) -> None:
        """Start a new incarnation and wait for its `on_start` to finish.

        Raises whatever the constructor or `on_start` raised; the failed
        incarnation is over by then (its `on_failure` ran, `on_stop` did not).
        """
        if self.runner is None:
            runner = self.executor.attach_now(self.path)
            if runner is not None:
                self._bind(runner)  # no coroutine to run for it
            else:
                await self.attach()
        assert self.runner is not None
        if self.start_inline():
            return  # no hook to wait for: no start task either
        loop = asyncio.get_running_loop()
        done = self._new_incarnation(loop)
        started: asyncio.Future[None] = loop.create_future()
        self._starting = started
        begun = self.runner.submit(self._run())
        if isinstance(begun, asyncio.Task):
            self.task = begun  # a cancel before its first step must reach it
        begun.add_done_callback(lambda begun: _begun(done, begun))
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

    def start_inline(self) -> bool:
        """`start()` without a task or an await, when that is all it would do: the
        runner is attached on this loop and the class has no `on_start` to wait
        for. False: it did nothing (use `start()`). Raises what the constructor
        raised (the incarnation is over by then)."""
        runner = self.runner
        if (
            runner is None
            or self.actor_class.on_start is not Actor.on_start
            or not self.serves_handlers
            or runner.serves_elsewhere
        ):
            return False
        loop = asyncio.get_running_loop()
        if runner.loop is not loop:
            return False
        self._start_now(self._new_incarnation(loop), loop)
        return True

    def _new_incarnation(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Exit]:
        self.generation += 1
        self._driven = False
        if self.status != "restarting":
            self.status = "starting"
        done: asyncio.Future[Exit] = loop.create_future()
        self._done = done
        done.add_done_callback(self._incarnation_done)
        return done

    def _start_now(self, done: asyncio.Future[Exit], loop: asyncio.AbstractEventLoop) -> None:
        """Start an incarnation whose class has no `on_start`, inline: construct
        the instance and serve; a constructor's exception is raised here."""
        ctx = ActorContext(self)
        self.context = ctx
        token = constructing.set(ctx)
        try:
            instance = self.actor_class(*self.args, **self.kwargs)
            instance.bind_context(ctx)
        except BaseException as exc:
            if not is_crash(exc):
                raise  # KeyboardInterrupt, SystemExit: the program ends
            self.system.log_crash(self.path, exc, during="init")
            ctx.cancel_all()
            settle(done, Exit("crash", exc, in_start=True))
            raise
        finally:
            constructing.reset(token)
        self.instance = instance
        self._begin_serving(instance, done, loop)

    def _begin_serving(
        self, instance: Actor, done: asyncio.Future[Exit], loop: asyncio.AbstractEventLoop
    ) -> None:
        """`on_start` is over: the incarnation runs; the dispatcher serves its mailbox
        in a snapshot of the current context (what `on_start` bound, every handler sees)."""
        if self.status == "restarting":
            self.restarts += 1  # before any message, so tree() never lags behind
        self.status = "running"
        self.system.log_event("actor.started", self.path)
        self._start_finished(None)
        context = contextvars.copy_context()
        if context.get(serving) is not None:
            # Started from another actor's handler: what this one runs is not that handler's.
            context.run(serving.set, None)
        runner = self.runner
        if runner is not None and runner.serves_elsewhere:
            server = runner.relay(self, instance, done, context, loop)
        else:
            server = Server(self, instance, done, context, loop)
        self.server = server
        server.begin()

    def _start_timed_out(self, started: asyncio.Future[None], limit: float) -> None:
        if not started.done():
            started.set_exception(
                TimeoutError(f"{self.path}: on_start did not finish within {limit}s")
            )
            self.cancel_task()

    def _incarnation_done(self, fut: asyncio.Future[Exit]) -> None:
        if fut is not self._done or self._driven:
            return  # a stopper is in charge, or the incarnation was abandoned
        exit = exit_of(fut)
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

    async def _run(self) -> Exit | None:
        """The start of an incarnation: its Exit if it ended already, or None
        once its `Server` serves the mailbox (which then ends it)."""
        self.task = asyncio.current_task()
        ctx = ActorContext(self)
        self.context = ctx
        token = constructing.set(ctx)
        exit: Exit | None = None
        try:
            try:
                runner = self.runner
                if runner is not None and runner.serves_elsewhere:
                    instance = runner.stand_in(self)  # the actor itself runs elsewhere
                else:
                    instance = self.actor_class(*self.args, **self.kwargs)
                instance.bind_context(ctx)
                self.instance = instance
            finally:
                constructing.reset(token)
            del token
            exit = await self._live(instance, ctx)
            return exit
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_crash(exc):
                exit = await self._killed()
                return exit
            if not is_crash(exc):
                raise  # KeyboardInterrupt, SystemExit: the program ends
            self.system.log_crash(self.path, exc, during="init")  # the constructor raised
            self._start_finished(exc)
            exit = Exit("crash", exc, in_start=True)
            return exit
        finally:
            self.task = None
            self.handling = None
            if exit is not None or self.server is None or self.server.state is DONE:
                ctx.cancel_all()

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
        if _is_base(hook):
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

    async def _live(self, instance: Actor, ctx: ActorContext) -> Exit | None:
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
        done = self._done
        assert done is not None
        self._begin_serving(instance, done, asyncio.get_running_loop())
        return None

    async def _call_hook(self, hook: Any, exc: BaseException) -> None:
        hook_exc = await self._hook(hook, exc)
        if hook_exc is not None:
            self.system.log_crash(self.path, hook_exc, during="on_failure")

    # -- the end of an incarnation (on its loop) ------------------------------

    def serving_ended(self, server: Server, exit: Exit | None) -> None:
        """From a dispatcher turn (no task running): serving is over (None: killed).

        With no hook to run and no child to stop, the incarnation ends right
        here; otherwise its end runs as a task (eager where possible)."""
        instance = server.instance
        if not self.children and (
            exit is None
            or (
                _is_base(instance.on_stop)
                and (exit.kind != "crash" or _is_base(instance.on_failure))
            )
        ):
            if exit is None:
                exit = Exit("killed")
                self.system.log_event("actor.stopped", self.path, reason="killed")
            else:
                if exit.kind == "crash":
                    assert exit.exc is not None
                    self.system.log_crash(self.path, exit.exc, during="handler")
                self.system.log_event("actor.stopped", self.path, reason=exit.kind)
            self._ended(server, exit)
            return
        if EAGER:
            task = asyncio.Task(
                self.end(server, exit),
                loop=server.loop,
                context=server.context,
                eager_start=True,  # type: ignore[call-arg]
            )
        else:
            task = server.loop.create_task(self.end(server, exit), context=server.context)
        if not task.done():
            self.task = task
            task.add_done_callback(lambda task: self._end_gone(server, task))

    async def end(self, server: Server, exit: Exit | None) -> None:
        """The rest of an incarnation after serving (None: it was killed)."""
        self.task = asyncio.current_task(server.loop)  # (also when closed without a loop)
        try:
            if exit is None:
                final = await self._killed()
            else:
                final = await self._wind_down(server.instance, exit)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_crash(exc):
                final = await self._killed()
            elif not is_crash(exc):
                self._ended(server, Exit("crash", exc))
                raise
            else:
                final = Exit("crash", exc)
        self._ended(server, final)

    def _end_gone(self, server: Server, task: asyncio.Task[Any]) -> None:
        """An end task that was cancelled before its first step (3.11) ran nothing."""
        if task.cancelled() and not server.done.done():
            self.system.log_event("actor.stopped", self.path, reason="killed")
            self._ended(server, Exit("killed"))

    def _ended(self, server: Server, exit: Exit) -> None:
        if self.server is server and self.context is not None:
            self.context.cancel_all()
        task = self.task
        if task is not None and task is asyncio.current_task(server.loop):
            self.task = None
        self.handling = None
        done = server.done
        if (
            not done.done()
            and done.get_loop() is asyncio.get_running_loop()
            and done.remove_done_callback(self._incarnation_done)
        ):
            # On the starter's loop: what follows the end (the owner's decision, or
            # the stop for good) happens now, not from a callback one loop turn later.
            done.set_result(exit)
            self._incarnation_done(done)
        else:
            settle(done, exit)

    async def _wind_down(self, instance: Actor, exit: Exit) -> Exit:
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

    def failed(self, exc: BaseException) -> Exit | None:
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

    def unhandled(self, message: Any, reply: asyncio.Future[Any] | None) -> None:
        if isinstance(message, Envelope):
            message = message.message
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

    def idle(self) -> bool:
        """Whether its incarnation serves and waits for messages: then no handler or
        hook of it runs, so nothing of it can be the caller (no task to look up)."""
        server = self.server
        return server is not None and (server.state is IDLE or server.state is READY)

    def in_own_task(self) -> bool:
        """Whether the caller runs as this actor's current task (a hook, a handler)."""
        current = asyncio.current_task()
        if current is None:
            return False
        if self.task is current:
            return True
        # An async handler's eager task, in its first step, is not stored yet.
        server = self.server
        return self.task is None and server is not None and server.state is BUSY

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    def cancel_task(self) -> None:
        """Cancel the running incarnation, on whichever loop it runs."""
        server = self.server
        if server is not None and server.state is not DONE and not server.done.done():
            _call_on(server.loop, server.kill)
            return
        task = self.task
        if task is not None:
            _call_on(task.get_loop(), task.cancel)
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
            return exit_of(done) if done is not None else SHUTDOWN
        if timeout != 0:
            server = self.server
            if (
                type(server) is Server
                and server.loop is asyncio.get_running_loop()
                and server.end_if_idle()
            ):
                pass  # idle with nothing queued: ended here, without a signal or a turn
            else:
                self.mailbox.put_system(signal)
                await asyncio.sleep(0)  # an idle actor ends within one loop turn: no timer
            if done.done():
                return exit_of(done)
        return await self._await_end(done, timeout)

    async def _await_end(self, done: asyncio.Future[Exit], timeout: float | None) -> Exit:
        """The signal is sent: wait `timeout` for the end, then cancel, then abandon."""
        if timeout != 0:
            if done.done() or await wait_done(self.system.clock, done, timeout):
                return exit_of(done)
        self.cancel_task()
        if await wait_done(self.system.clock, done, self.system.kill_grace):
            return KILLED
        self.system.log_event(
            "actor.abandoned", self.path, level="error", reason="ignored cancellation"
        )
        self.task = None
        return KILLED

    async def stop_for_good(self, drain: bool = True) -> None:
        """Stop gracefully and never restart: drain queued messages, run `on_stop`.

        A stop, once begun, completes whatever happens to its caller: if the
        caller is cancelled, the rest of the stop runs in the background (its
        bounds start again from there), and every later stop waits for it.
        """
        final = self._final
        if final is not None:
            await asyncio.shield(final)
            return
        final = self._final = asyncio.get_running_loop().create_future()
        try:
            # An idle server learns nothing from the close: the stop below ends it
            # here, or signals it (which wakes it), or kills it.
            self.mailbox.close(wake=not (type(self.server) is Server and self.idle()))
            exit = await self.stop_incarnation(STOP_DRAIN if drain else STOP_NOW, self.shutdown)
            self.finalize(exit)
        except asyncio.CancelledError:
            self.system.run_in_background(self._finish_stop(final))
            raise
        except BaseException:
            final.set_result(None)
            raise
        final.set_result(None)

    async def _finish_stop(self, final: asyncio.Future[None]) -> None:
        """The rest of a stop whose caller was cancelled (the signal is sent)."""
        try:
            done = self._done
            if done is None or done.done():
                exit = exit_of(done) if done is not None else SHUTDOWN
            else:
                exit = await self._await_end(done, self.shutdown)
            self.finalize(exit)
        finally:
            final.set_result(None)

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
        watchers, self.watchers = self.watchers, _NO_WATCHERS
        for watcher in watchers:
            watcher.deliver(Terminated(self.ref, exit.kind))
        self.system.slot_stopped(self)

    def add_watcher(self, watcher: Watcher) -> None:
        """Tell `watcher` `Terminated` once when this slot stops for good (at once if it has)."""
        if self.status == "stopped":
            watcher.deliver(Terminated(self.ref, "stopped"))
        elif watcher not in self.watchers:
            self.watchers = [*self.watchers, watcher]

    def adopt(self, child: Slot) -> None:
        """Add a child slot (the newest goes last)."""
        if self.children is _NO_CHILDREN:
            self.children = [child]
        else:
            self.children.append(child)

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


def _is_base(hook: Any) -> bool:
    """Whether `hook` is `Actor`'s own no-op (not overridden)."""
    return getattr(hook, "__func__", None) in _BASE_HOOKS


def _begun(done: asyncio.Future[Exit], begun: asyncio.Future[Exit | None]) -> None:
    """The start task finished: its Exit is the incarnation's, unless it serves now."""
    if done.done():
        return
    if begun.cancelled():
        done.cancel()
    elif begun.exception() is not None:
        done.set_exception(begun.exception())  # type: ignore[arg-type]
    else:
        exit = begun.result()
        if exit is not None:
            done.set_result(exit)


def _call_on(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> None:
    """`fn()` now if `loop` is the running loop, else soon on `loop` (a closed
    loop has nothing left to run it for)."""
    if loop is asyncio.get_running_loop():
        fn()
        return
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:
        pass
