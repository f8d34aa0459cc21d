"""Case 41 [child_specs_map / sup_flags / significant_simple]: bad tree specs fail when
they are built, before anything starts."""

from __future__ import annotations

from typing import Any

import pytest

from mycelium_actors import Backoff, Child, Supervisor

from .workers import Worker

CHILD_ERRORS = [
    ({"name": ""}, ValueError, "name"),
    ({"name": "a/b"}, ValueError, "name"),
    ({"restart": "sometimes"}, ValueError, "restart"),
    ({"shutdown": -1}, ValueError, "shutdown"),
    ({"shutdown": True}, ValueError, "shutdown"),
    ({"mailbox_capacity": 0}, ValueError, "mailbox_capacity"),
    ({"mailbox_overflow": "spill"}, ValueError, "mailbox_overflow"),
    ({"start_timeout": 0}, ValueError, "start_timeout"),
    ({"start_timeout": "1"}, ValueError, "start_timeout"),
    ({"on_restart_mailbox": "flush"}, ValueError, "on_restart_mailbox"),
    ({"significant": True}, ValueError, "permanent"),
    ({"significant": 1, "restart": "transient"}, TypeError, "significant"),
    ({"resume_on": (ValueError, "oops")}, TypeError, "resume_on"),
    ({"stop_on": KeyboardInterrupt}, TypeError, "stop_on"),
    ({"resume_on": KeyError, "escalate_on": (KeyError,)}, ValueError, "both"),
]

SUPERVISOR_ERRORS = [
    ({"children": [Child(Worker, "a", name="a"), Child(Worker, "b", name="a")]}, "duplicate"),
    ({"strategy": "one_for_some"}, "strategy"),
    ({"max_restarts": -1}, "max_restarts"),
    ({"within": 0}, "within"),
    ({"shutdown": -0.5}, "shutdown"),
    ({"backoff": 1.0}, "backoff"),
    ({"auto_shutdown": "sometimes"}, "auto_shutdown"),
    ({"strategy": "dynamic", "children": [Child(Worker, "a", name="a")]}, "no children"),
    ({"strategy": "dynamic", "auto_shutdown": "any_significant"}, "auto_shutdown"),
    ({"max_children": 3}, "max_children"),
    ({"strategy": "dynamic", "max_children": -1}, "max_children"),
    (
        {"children": [Child(Worker, "a", name="a", restart="transient", significant=True)]},
        "auto_shutdown",
    ),
    ({"backoff": "slow"}, "backoff"),
]


@pytest.mark.parametrize(("options", "error", "names"), CHILD_ERRORS)
def test_a_bad_child_option_fails_when_the_child_is_built(
    options: dict[str, Any], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=names):
        Child(Worker, "x", **{"name": "x", **options})


@pytest.mark.parametrize(("options", "names"), SUPERVISOR_ERRORS)
def test_a_bad_supervisor_option_fails_when_the_supervisor_is_built(
    options: dict[str, Any], names: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=names):
        Supervisor("root", **{"children": [], **options})


@pytest.mark.parametrize(
    "options",
    [{"min": 0}, {"min": 2, "max": 1}, {"jitter": -1}, {"reset_after": -1}, {"max_restarts": -1}],
)
def test_a_bad_backoff_fails_when_it_is_built(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**options)


def test_good_options_build() -> None:
    child = Child(Worker, "x", name="x", start_timeout=0.5, shutdown=None, mailbox_capacity=8)
    tree = Supervisor("root", [child], strategy="rest_for_one", backoff=Backoff(min=0.1, max=1))
    assert tree.children == (child,) and child.start_timeout == 0.5
