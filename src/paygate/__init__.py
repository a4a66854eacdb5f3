"""PayGate for Python: a pay-per-tool-call gateway for MCP servers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("paygate-mcp")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
