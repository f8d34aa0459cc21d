"""Worker pools and worker processes: more than one actor (or core) behind one ref.

`pool.py` is `Pool`, a router that supervises interchangeable workers;
`Subprocess` (subprocess.py) runs an actor in a process of its own (the
parent's side; child.py is the worker's).
"""

from .subprocess import Subprocess

__all__ = ["Subprocess"]
