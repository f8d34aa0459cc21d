"""`mycelium-actors contracts build|check`: YAML contracts from the command line.

Exit codes: 0 fine, 1 stale modules (`build --check`) or breaking changes
(`check`), 2 an invalid contract file (one `error:` line, nothing written).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from ..errors import ContractError
from ..wire import contracts as compiler

_path = click.Path(exists=True, path_type=Path)


def _invalid(exc: ContractError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    raise SystemExit(2)


@click.group()
def contracts() -> None:
    """Build attrs modules from YAML contracts, and compare contract versions."""


@contracts.command()
@click.argument("src", type=_path)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Where to write.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a module is stale.")
def build(src: Path, out: Path | None, check: bool) -> None:
    """Write one module per YAML file in SRC (a file or a folder), beside it or in --out."""
    try:
        report = compiler.build(src, out, check=check)
    except ContractError as exc:
        _invalid(exc)
    for target, status in report:
        click.echo(f"{status}: {target}")
    if check and any(status != "fresh" for _, status in report):
        click.echo("error: generated modules are out of date: run `contracts build`", err=True)
        raise SystemExit(1)


@contracts.command()
@click.argument("old", type=_path)
@click.argument("new", type=_path)
def check(old: Path, new: Path) -> None:
    """Print each change from OLD to NEW (files or folders) that breaks compatibility."""
    try:
        problems = compiler.breaking_changes(old, new)
    except ContractError as exc:
        _invalid(exc)
    for line in problems:
        click.echo(line)
    if problems:
        raise SystemExit(1)
    click.echo("compatible")
