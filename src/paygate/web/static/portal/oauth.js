// OAuth sign-in for the portal: the gateway's own authorization-code flow with PKCE (docs/auth.md), the
// portal being a public client (no secret) registered through dynamic registration. Only documented
// endpoints on this origin: /.well-known/oauth-authorization-server, /oauth/register, /oauth/authorize,
// /oauth/token, /oauth/revoke.
//
// What is kept where: the client's id in localStorage (public, not a credential: it lets every sign-in
// from this browser reuse one registration); the PKCE verifier and state in sessionStorage while the tab
// is away on the consent page; the tokens in sessionStorage (this tab only), never a cookie or a URL.

const CLIENT = "paygate.portalClient";
const PENDING = "paygate.oauthPending";
const JSON_HEADERS = { "Content-Type": "application/json" };

const redirectUri = () => `${location.origin}/portal`;

function b64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

async function call(path, init) {
  const response = await fetch(path, { cache: "no-store", credentials: "omit", ...init });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, data };
}

// The authorization server's metadata, or null when OAuth is off (the routes are then 404).
export async function oauthMetadata() {
  const { ok, data } = await call("/.well-known/oauth-authorization-server", {});
  return ok && data.issuer ? data : null;
}

// The portal's client id: the one registered earlier from this browser, if the gateway still knows it (a
// token request without a code answers invalid_client for an unknown client, and changes nothing), else a
// new registration.
async function clientId() {
  const cached = localStorage.getItem(CLIENT);
  if (cached) {
    const probe = await call("/oauth/token", { method: "POST", body: new URLSearchParams({ grant_type: "authorization_code", client_id: cached }) });
    if (probe.data.error !== "invalid_client") return cached;
  }
  const body = { client_name: "PayGate portal", redirect_uris: [redirectUri()], token_endpoint_auth_method: "none", grant_types: ["authorization_code", "refresh_token"] };
  const { ok, data } = await call("/oauth/register", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) });
  if (!ok) throw new Error(`The gateway refused to register the portal: ${data.error_description || data.error || "error"}`);
  localStorage.setItem(CLIENT, data.client_id);
  return data.client_id;
}

// Off to the consent page. The scope asked is tools:read when offered: a token that lists tools and reads
// the account but can call no paid tool, which is all the portal needs.
export async function startSignIn(meta) {
  const id = await clientId();
  const verifier = random(32);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = random(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, clientId: id, issuer: meta.issuer }));
  const params = { response_type: "code", client_id: id, redirect_uri: redirectUri(), state, code_challenge: challenge, code_challenge_method: "S256" };
  if ((meta.scopes_supported || []).includes("tools:read")) params.scope = "tools:read";
  location.assign(`/oauth/authorize?${new URLSearchParams(params)}`);
}

// Back from the consent page (?code=…&state=…&iss=…, or ?error=…): the tokens, or null when this load is
// not a return from it. The code leaves the address bar at once; a state or issuer that is not the one
// this tab sent is refused (a forged or replayed redirect).
export async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  history.replaceState(null, "", location.pathname);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (!pending || params.get("state") !== pending.state) throw new Error("That sign-in was not started from this tab: sign in again.");
  if (params.has("iss") && params.get("iss") !== pending.issuer) throw new Error("That sign-in came from another server: sign in again.");
  if (params.has("error")) {
    const why = params.get("error") === "access_denied" ? "Sign-in was denied." : `Sign-in failed: ${params.get("error_description") || params.get("error")}`;
    throw new Error(why);
  }
  const form = { grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(), client_id: pending.clientId, code_verifier: pending.verifier };
  const { ok, data } = await call("/oauth/token", { method: "POST", body: new URLSearchParams(form) });
  if (!ok) throw new Error(`Sign-in failed: ${data.error_description || data.error || "error"}`);
  return { access: data.access_token, refresh: data.refresh_token ?? null, clientId: pending.clientId, expiresIn: data.expires_in };
}

// Sign-out: revoking the refresh token ends the whole grant, its access tokens included.
export async function revoke(tokens) {
  const token = tokens.refresh || tokens.access;
  await call("/oauth/revoke", { method: "POST", body: new URLSearchParams({ token, client_id: tokens.clientId }) }).catch(() => null);
}
