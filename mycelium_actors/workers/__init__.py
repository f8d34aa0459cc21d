"""Worker processes: executors that run an actor outside this process.

`Subprocess` (subprocess.py) is the parent's side; child.py is the worker's.
"""

from .subprocess import Subprocess

__all__ = ["Subprocess"]
