"""PayGate plugins (docs/plugins.md): subclass `Plugin`, define the hooks you need as `async def`.

from paygate.plugins import Plugin, CallInfo

class Surcharge(Plugin):
    name = "surcharge"
    version = "1.0.0"

    async def transform_price(self, call: CallInfo, price: int) -> int | None:
        return price + 2 if call.tool == "search" else None
"""

from paygate.plugins.base import (
    HOOKS,
    CallInfo,
    Deny,
    GateDecision,
    Plugin,
    PluginRequest,
    PluginResponse,
    ToolReply,
)

__all__ = ["HOOKS", "CallInfo", "Deny", "GateDecision", "Plugin", "PluginRequest", "PluginResponse", "ToolReply"]
