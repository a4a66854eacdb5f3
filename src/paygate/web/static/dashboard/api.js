// The dashboard's only way to the gateway: the documented HTTP API, with the admin key in X-Admin-Key.
// The key lives in sessionStorage (this tab only, gone when it closes) and never in a cookie or a URL,
// so no other site's page can make the browser send it.

const STORE = "paygate.adminKey";

export const session = {
  key: () => sessionStorage.getItem(STORE),
  set: (key) => sessionStorage.setItem(STORE, key),
  clear: () => sessionStorage.removeItem(STORE),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function headers(extra = {}) {
  return { "X-Admin-Key": session.key() || "", ...extra };
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(), cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const message = data && typeof data === "object" && data.error ? data.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}

// Who is this key? GET /admin/dashboard needs the viewer role (401: not an admin key). Then may it change
// things: no endpoint says an admin key's role, so ask for a change that cannot happen — POST /topup with
// an empty body. The role check comes before the body is read: a viewer gets 403, anyone else a 400 for
// the missing fields. Nothing changes either way.
export async function signInCheck() {
  await api("/admin/dashboard");
  try {
    await api("/topup", { method: "POST", body: {} });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return { canChange: false };
    if (err instanceof ApiError && err.status === 400) return { canChange: true };
    throw err;
  }
  return { canChange: true };
}
