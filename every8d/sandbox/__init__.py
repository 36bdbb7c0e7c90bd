"""A local EVERY8D HTTP API 2.1 server for the console, end-to-end tests and benchmarks.

`Sandbox` is the whole public surface (see its docstring and the sandbox API brief); `run_forever` is what
`every8d-bot sandbox` runs.
"""

from every8d.sandbox.engine import SandboxBatch, SandboxRecord
from every8d.sandbox.server import Sandbox, SandboxCall, run_forever

__all__ = ["Sandbox", "SandboxBatch", "SandboxCall", "SandboxRecord", "run_forever"]
