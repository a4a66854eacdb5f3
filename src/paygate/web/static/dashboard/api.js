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

// Who is this key? GET /admin/whoami answers any admin key (401: not an admin key) with its role and
// whether that role may change things; the dashboard shows change buttons only then.
export async function signInCheck() {
  const me = await api("/admin/whoami");
  return { canChange: Boolean(me.canChange), role: String(me.role) };
}
