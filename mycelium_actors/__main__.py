"""`python -m mycelium_actors ...` is the `mycelium-actors` command."""

from .cli import main

main()
