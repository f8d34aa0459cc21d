"""Plain-text drawings of a declared tree (a spec) and of a live one (`system.tree()`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..kernel.system import TreeNode
from ..supervision.spec import Child, Spec, Supervisor
from ..workers.pool import Pool

N = TypeVar("N")


def _draw(
    roots: Sequence[N], label: Callable[[N], str], children: Callable[[N], Sequence[N]]
) -> str:
    lines: list[str] = []

    def walk(node: N, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        lines.append(prefix + branch + label(node))
        kids = children(node)
        inner = prefix + ("" if top else ("    " if last else "│   "))
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(lines)


def _executor_label(executor: Any) -> str:
    return "" if executor is None else f"  executor={executor!r}"


def _spec_label(spec: Spec) -> str:
    if isinstance(spec, Pool):
        shutdown = "infinity" if spec.shutdown is None else f"{spec.shutdown:g}s"
        return (
            f"{spec.name}  pool of {spec.size} {spec.actor_class.__qualname__}  {spec.route}  "
            f"max_restarts={spec.max_restarts} within={spec.within:g}s  shutdown={shutdown}"
            + _executor_label(spec.executor)
        )
    if isinstance(spec, Supervisor):
        text = (
            f"{spec.name}  supervisor {spec.strategy}  "
            f"max_restarts={spec.max_restarts} within={spec.within:g}s  restart={spec.restart}"
        )
        if spec.backoff:
            text += f"  backoff={spec.backoff.min:g}..{spec.backoff.max:g}s"
        if spec.auto_shutdown != "never":
            text += f"  auto_shutdown={spec.auto_shutdown}"
        return text + _significant_label(spec)
    assert isinstance(spec, Child)
    shutdown = "infinity" if spec.shutdown is None else f"{spec.shutdown:g}s"
    return (
        f"{spec.name}  {spec.actor_class.__qualname__}  {spec.restart}  shutdown={shutdown}"
        + _executor_label(spec.executor)
        + _significant_label(spec)
    )


def _significant_label(spec: Spec) -> str:
    return "  significant" if spec.significant else ""


def render_spec(tree: Supervisor) -> str:
    """The declared tree: names, strategies, restart types, executors."""
    roots: list[Spec] = [tree]
    return _draw(roots, _spec_label, _spec_children)


def _spec_children(spec: Spec) -> Sequence[Spec]:
    return spec.children if isinstance(spec, Supervisor) else ()


def _node_label(node: TreeNode) -> str:
    text = f"{node.path}  {node.kind}  {node.status}  restarts={node.restarts}"
    if node.kind == "actor":
        text += f"  mailbox={node.mailbox}"
        if node.handled is not None:
            text += f"  handled={node.handled}"
        if node.handler_p99 is not None and node.handled:
            text += f"  p99={_seconds(node.handler_p99)}"
    if node.thread is not None:
        text += f"  thread={node.thread} cpus={node.cpus}"
        if node.cpu_seconds is not None:
            text += f" cpu={node.cpu_seconds:.2f}s"
    if node.pid is not None:  # a worker process (Subprocess)
        text += f"  pid={node.pid}"
        if node.cpu_seconds is not None:
            text += f" cpu={node.cpu_seconds:.2f}s"
        if node.rss is not None:
            text += f" rss={node.rss / 2**20:.1f}MiB"
    return text


def _seconds(value: float) -> str:
    """A handler time, short: 562us, 1.78ms, 3.16s."""
    if value < 1e-3:
        return f"{value * 1e6:.3g}us"
    if value < 1.0:
        return f"{value * 1e3:.3g}ms"
    return f"{value:.3g}s"


def render_live_tree(nodes: Sequence[TreeNode]) -> str:
    """The running tree: status, restarts, mailbox depth, pinned CPUs."""
    return _draw(list(nodes), _node_label, lambda n: n.children)


def rich_spec(tree: Supervisor) -> Any:
    """The declared tree as a `rich.tree.Tree`; ImportError when rich is not installed."""
    from rich.tree import Tree

    def grow(branch: Any, spec: Spec) -> None:
        style = "bold cyan" if isinstance(spec, Supervisor) else "green"
        node = branch.add(f"[{style}]{_spec_label(spec)}[/]")
        if isinstance(spec, Supervisor):
            for child in spec.children:
                grow(node, child)

    root = Tree(f"[bold cyan]{_spec_label(tree)}[/]")
    for child in tree.children:
        grow(root, child)
    return root
