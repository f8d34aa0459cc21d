"""Supervision trees: the specs (`spec.py`) and the OTP rules (`supervisor.py`), on the kernel.

Importing the package loads `supervisor.py`, which gives the specs their way
to start (`spec.set_root_starter`): a spec never imports the rules.
"""

from . import supervisor as _supervisor  # noqa: F401
