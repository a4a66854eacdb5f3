-- wrk script: POST one MCP tools/call per request and count the answers.
--
-- Exact accounting despite wrk abandoning in-flight requests when its
-- duration ends: requests carry key A (arguments tagged "bench-A") until
-- SWITCH_AFTER seconds, then key B ("bench-B"). Every key-A request is
-- answered long before wrk stops, so credits spent on A must equal the
-- successful A answers exactly; B absorbs the abandoned tail (spent(B) may
-- exceed its successes by at most the number of connections). The work per
-- request is identical for both keys, so throughput and latency are not skewed.
--
-- Environment: BENCH_KEY_A, BENCH_KEY_B, BENCH_SWITCH_AFTER (seconds).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function build(key, tag)
  local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
    .. tag .. '"}}}'
  return wrk.format("POST", "/mcp", {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["X-API-Key"] = key,
  }, body)
end

function init(args)
  req_a = build(os.getenv("BENCH_KEY_A") or "none", "bench-A")
  req_b = build(os.getenv("BENCH_KEY_B") or "none", "bench-B")
  switch_at = now() + tonumber(os.getenv("BENCH_SWITCH_AFTER") or "1e9")
  sent_a, sent_b, ok_a, ok_b, bad = 0, 0, 0, 0, 0
  bad_sample = ""
end

function request()
  if now() < switch_at then
    sent_a = sent_a + 1
    return req_a
  end
  sent_b = sent_b + 1
  return req_b
end

function response(status, headers, body)
  local good = status == 200 and body:find('"result"', 1, true) and not body:find('"error"', 1, true)
  if good and body:find("bench-A", 1, true) then
    ok_a = ok_a + 1
  elseif good and body:find("bench-B", 1, true) then
    ok_b = ok_b + 1
  else
    bad = bad + 1
    if bad_sample == "" then bad_sample = status .. " " .. body:sub(1, 200) end
  end
end

function done(summary, latency, requests)
  local t = { sent_a = 0, sent_b = 0, ok_a = 0, ok_b = 0, bad = 0 }
  local sample = ""
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do t[name] = t[name] + thread:get(name) end
    local s = thread:get("bad_sample")
    if s ~= "" then sample = s end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"sent_a":%d,"sent_b":%d,"ok_a":%d,"ok_b":%d,"bad":%d,'
      .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,"bad_sample":"%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, t.sent_a, t.sent_b, t.ok_a, t.ok_b, t.bad,
    e.connect, e.read, e.write, e.status, e.timeout, (sample:gsub('[%c"\\]', "?"))))
end
