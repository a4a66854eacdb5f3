// Preload (node --require) for npm MCP servers that call listen(PORT), which binds every interface:
// pins such a listen to 127.0.0.1. Used by tests/support.py and conformance/run.py.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const portOnly = typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]));
  if (portOnly && (args.length === 1 || typeof args[1] === "function")) args.splice(1, 0, "127.0.0.1");
  return listen.apply(this, args);
};
