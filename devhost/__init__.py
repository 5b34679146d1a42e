"""devhost: an offline Azure Functions host that drives the real Durable Functions SDK.

It loads ``function_app.py`` (v2 programming model), serves its HTTP routes, fires its blob and
timer triggers, and runs its orchestrations through the Durable extension's out-of-process JSON
protocol with state in SQLite. See ``python -m devhost start --help``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
