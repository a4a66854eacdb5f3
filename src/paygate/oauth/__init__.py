"""The OAuth 2.1 authorization server (docs/auth.md): metadata (RFC 8414, RFC 9728), dynamic client
registration (RFC 7591), authorization code with PKCE S256, token and refresh grants, revocation
(RFC 7009), and the `pg_at_` access tokens /mcp accepts, each billing the API key it was granted for."""
