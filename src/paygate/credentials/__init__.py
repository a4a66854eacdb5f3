"""Credentials other than a plain API key: scoped tokens (`pgt_`) and OAuth access tokens, each standing
for the key it bills, narrowed to some tools."""
