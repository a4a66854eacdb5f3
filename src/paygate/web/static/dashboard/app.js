// The dashboard's shell: sign-in, the page menu (#overview, #keys, …), the live event connection.

import { ApiError, session, signInCheck } from "./api.js";
import { clear, el } from "./dom.js";
import { liveEvents } from "./live.js";
import * as overview from "./page-overview.js";
import * as keys from "./page-keys.js";
import * as analytics from "./page-analytics.js";
import * as webhooks from "./page-webhooks.js";
import * as system from "./page-system.js";
import * as audit from "./page-audit.js";

const PAGES = { overview, keys, analytics, webhooks, system, audit };
const $ = (id) => document.getElementById(id);

const state = { canChange: false, live: null, listeners: new Set(), liveState: "connecting", renderId: 0 };

export function notify(message, isError = false) {
  const notice = $("notice");
  notice.textContent = message;
  notice.classList.toggle("error", isError);
}

function context() {
  return {
    canChange: state.canChange,
    liveState: () => state.liveState,
    onLive(fn) {
      state.listeners.add(fn);
      return () => state.listeners.delete(fn);
    },
    notify,
    fail: (err) => {
      if (err instanceof ApiError && err.status === 401) return signOut("The admin key was refused; sign in again.");
      notify(err instanceof Error ? err.message : String(err), true);
    },
  };
}

async function show() {
  const name = (location.hash || "#overview").slice(1);
  const page = PAGES[name] ? name : "overview";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  state.listeners.clear();
  const id = ++state.renderId;
  const main = clear($("main"));
  main.append(el("h2", {}, document.querySelector(`nav a[href="#${page}"]`).textContent));
  document.title = `${main.firstChild.textContent} · PayGate dashboard`;
  const body = el("div", { class: "page", "aria-busy": "true" });
  main.append(body);
  try {
    await PAGES[page].render(body, context());
  } catch (err) {
    if (id === state.renderId) context().fail(err);
  } finally {
    body.removeAttribute("aria-busy");
  }
}

function startLive() {
  state.live = liveEvents(
    (event) => state.listeners.forEach((fn) => fn(event)),
    (s) => {
      state.liveState = s;
      const text = { live: "Live", polling: "Polling every 5 s", offline: "Offline", connecting: "Connecting" }[s];
      $("who").dataset.live = s;
      $("live-state") && ($("live-state").textContent = text);
    },
  );
}

function signedIn() {
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  const who = clear($("who"));
  who.append(
    state.canChange ? "Signed in: can make changes" : "Signed in: viewer (read only)",
    " · ",
    el("span", { id: "live-state" }, "Connecting"),
  );
  startLive();
  show();
}

function signOut(message = "") {
  session.clear();
  if (state.live) state.live.stop();
  state.live = null;
  state.listeners.clear();
  $("app").hidden = true;
  $("sign-out").hidden = true;
  clear($("main"));
  clear($("who"));
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  notify("");
  $("admin-key").focus();
}

async function signIn(key) {
  session.set(key);
  try {
    state.canChange = (await signInCheck()).canChange;
  } catch (err) {
    session.clear();
    const refused = err instanceof ApiError && (err.status === 401 || err.status === 403);
    throw new Error(refused ? "That admin key was refused." : `Could not reach the gateway: ${err.message}`);
  }
  signedIn();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("admin-key");
  $("sign-in-error").textContent = "";
  try {
    await signIn(input.value.trim());
    input.value = "";
  } catch (err) {
    $("sign-in-error").textContent = err.message;
  }
});
$("sign-out").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", () => {
  if (session.key()) show().then(() => $("main").focus());
});

if (session.key()) {
  signIn(session.key()).catch((err) => signOut(err.message));
} else {
  signOut();
}
