"""The composition root: every component is built here, from Settings, and wired here (event
subscribers, tickers, start/stop hooks, hot-path hooks); routers receive the services they use.

`core.py` builds what every domain shares; `routers.py` builds each domain's services and routers,
in the order routes are matched. Nothing outside this package constructs a service or wires one.
"""

from paygate.compose.core import build_backend, build_core, build_pricebook, state_path
from paygate.compose.routers import build_routers

__all__ = ["build_backend", "build_core", "build_pricebook", "build_routers", "state_path"]
