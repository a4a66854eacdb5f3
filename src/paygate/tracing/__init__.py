"""Request tracing (docs/tracing.md): a span per sampled tools/call, kept for GET /admin/tracing and,
when configured, exported to an OpenTelemetry collector over OTLP/HTTP."""
