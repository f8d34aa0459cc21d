"""JSON logs in a program that does not use the CLI: configure structlog once,
at startup (the library never does), and every lifecycle event is one JSON
object per line on stderr.

python -m examples.docs.json_logs 2> events.jsonl
"""

from __future__ import annotations

import asyncio
import logging
import sys

import structlog

from mycelium_actors import ActorSystem, Child, Supervisor

from .events import Billing, Charge


def configure_json_logs(level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,  # a traceback as text, never locals
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


async def main() -> None:
    async with ActorSystem("billing") as system:
        await system.start(Supervisor("root", children=[Child(Billing, name="billing")]))
        billing = system.lookup("/root/billing")
        assert billing is not None
        await billing.tell(Charge(-5))  # one actor.crashed event, then actor.restarted
        await billing.ask(Charge(1))


if __name__ == "__main__":
    configure_json_logs()
    asyncio.run(main())
