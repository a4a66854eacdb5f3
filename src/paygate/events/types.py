"""Every event type the gateway publishes: the bus's vocabulary, in one table.

The gateway's bus refuses a type that is not listed here (`EventHub(known=EVENT_TYPES)`), so a typo
cannot quietly create a type that no webhook filter, `?types=` query or compliance category
expects; a test checks that every type the code publishes is listed, and docs/events.md lists them
all. The data each carries is documented there.
"""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    # tool calls (one per tools/call; see docs/events.md for their data)
    "gate.allow": "a tool call passed the gate and was answered (credits net of refund and surcharge)",
    "gate.deny": "a tool call was refused by the gate, with the reason",
    # x402 pay-per-call (docs/x402.md)
    "x402.settled": "a tool call paid with x402 was settled by the facilitator (its receipt went to the caller)",
    "x402.failed": "an x402 payment was refused or not settled (stage: parse, claim, verify, tool, settlement)",
    "x402.updated": "x402 settings were changed at runtime (POST /admin/x402)",
    # keys
    "key.created": "an API key was created",
    "token.created": "a scoped token was issued for a key",
    "token.revoked": "a scoped token was revoked before it expired",
    "key.topup": "credits were added to a key",
    "key.revoked": "a key was revoked",
    "key.rotated": "a key was rotated to a new value",
    "key.cloned": "a key was created as a copy of another",
    "key.credits_transferred": "credits moved between two keys",
    "key.suspended": "a key was suspended",
    "key.resumed": "a suspended key was resumed",
    "key.expired": "a key's expiry passed",
    "key.expiry_warning": "a key will expire within one of the scanner's thresholds",
    "key.expiry_updated": "a key's expiry was set, changed or removed",
    "key.acl_updated": "a key's allowed or denied tools changed",
    "key.ip_updated": "a key's IP allowlist changed",
    "key.geo_updated": "a key's allowed or denied countries changed",
    "key.limit_updated": "a key's spending limit changed",
    "key.quota_updated": "a key's quota changed",
    "key.tags_updated": "a key's tags changed",
    "key.alias_set": "a key's alias was set or cleared",
    "key.note_added": "a note was added to a key",
    "key.note_deleted": "a note was deleted from a key",
    "key.plan_assigned": "a key was put on a usage plan (or taken off one)",
    "key.auto_topup_configured": "a key's auto-topup was configured or turned off",
    "key.auto_topped_up": "auto-topup added credits to a key",
    "key.webhook_set": "a key's own webhook URL was set",
    "key.webhook_removed": "a key's own webhook URL was removed",
    "key.balance_low": "a key's balance fell to or below the low-balance alert its holder set (once per crossing)",
    "key.bulk": "a bulk operation on keys finished",
    "keys.exported": "keys were exported",
    "keys.imported": "keys were imported",
    # credit reservations and schedules
    "credits.reserved": "credits were put on hold for a key",
    "credits.committed": "held credits were spent (the rest released)",
    "credits.released": "held credits went back to the key",
    "schedule.created": "a key action was scheduled",
    "schedule.cancelled": "a scheduled key action was cancelled",
    "schedule.executed": "a scheduled key action ran",
    # groups, teams, plans, templates
    "group.created": "a key group was created",
    "group.updated": "a key group's policy changed",
    "group.deleted": "a key group was deleted (its keys released)",
    "group.key_assigned": "a key joined a group",
    "group.key_removed": "a key left a group",
    "team.created": "a team was created",
    "team.updated": "a team's budget, quota or details changed",
    "team.deleted": "a team was deleted (its keys released)",
    "team.key_assigned": "a key joined a team",
    "team.key_removed": "a key left a team",
    "plan.created": "a usage plan was created",
    "plan.updated": "a usage plan changed",
    "plan.deleted": "a usage plan was deleted",
    "template.created": "a key template was created",
    "template.updated": "a key template changed",
    "template.deleted": "a key template was deleted",
    # OAuth (oauth/, docs/auth.md)
    "oauth.client_registered": "an OAuth client registered itself (RFC 7591)",
    "oauth.token_issued": "an OAuth access token (and refresh token) was issued",
    "oauth.token_revoked": "OAuth tokens were revoked (by their holder, or a replayed code or refresh token)",
    # administration
    "admin.auth_failed": "a request to an admin route had no valid admin key",
    "admin.auth_throttled": "an address went over authFailureLimit: its admin requests get 429 for the minute",
    "admin.forbidden": "an admin key's role was below what the route needs",
    "admin.alerts_configured": "the alert rules were replaced",
    "admin_key.created": "an admin key was created",
    "admin_key.revoked": "an admin key was revoked",
    "task.cancelled": "a working MCP task was cancelled (by its requester, an admin, its ttl, or the gateway stopping)",
    "admin_key.bootstrap_rotated": "the bootstrap admin key was replaced (the old one is refused from then on)",
    "maintenance.enabled": "maintenance mode was turned on",
    "maintenance.disabled": "maintenance mode was turned off",
    "config.export": "the running configuration was read (GET /config)",
    "backup.exported": "a full backup was taken",
    "backup.restored": "a backup was restored",
    # alerts and webhooks
    "alert.fired": "an alert rule fired for a key",
    "webhook.test": "a test event was sent to the webhook URL",
    "webhook.pause": "webhook delivery was paused",
    "webhook.resume": "webhook delivery was resumed",
    "webhook.replayed": "dead-lettered webhook batches were queued again",
    "webhook.dead_letter_cleared": "the webhook dead-letter queue was emptied",
    "webhook.filter_created": "a webhook filter was created",
    "webhook.filter_updated": "a webhook filter changed",
    "webhook.filter_deleted": "a webhook filter was deleted",
}
