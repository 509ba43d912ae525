-- wrk script shared by every scenario of bench/run. The request comes from the environment (static, built
-- once by wrk; with BENCH_SEND_SECS, one Lua call per request returns it):
--   BENCH_METHOD, BENCH_BODY (or BENCH_BODY_BLOB), BENCH_AUTH (an Authorization header value),
--   BENCH_CONTENT_TYPE.
-- BENCH_SEND_SECS, when set, stops sending new requests that many seconds after each thread starts and lets
-- the requests in flight finish before wrk's -d ends. Without it, wrk would cut off up to one request per
-- connection that the server has already answered (and audited) but wrk never counts, and the audit check
-- ("audit events = responses") could not be exact.
-- BENCH_AUTH_FILE, with BENCH_SEND_SECS: one Authorization value per line; each request carries one of them
-- picked at random (the many-clients scenario), each request prebuilt once per thread.
-- BENCH_BODY_FILE, with BENCH_SEND_SECS and BENCH_THREADS (wrk's -t): one request body per line, each sent
-- once (the private_key_jwt scenario: every assertion has its own jti). Thread i of n takes lines i, i+n, ...
-- in order; a thread that has sent all of its share stops sending and is counted in "exhausted".
-- done() prints one JSON line prefixed with "BENCH_RESULT " for bench/run.

local method = os.getenv("BENCH_METHOD")
if method and method ~= "" then wrk.method = method end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then wrk.body = body end
-- BENCH_BODY_BLOB: the body from a file instead (one too large for an environment variable).
local blob_file = os.getenv("BENCH_BODY_BLOB")
if blob_file and blob_file ~= "" then
  local file = assert(io.open(blob_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
local content_type = os.getenv("BENCH_CONTENT_TYPE")
if content_type and content_type ~= "" then wrk.headers["Content-Type"] = content_type end

local send_secs = tonumber(os.getenv("BENCH_SEND_SECS") or "")
if send_secs then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
  end
  local stop_at, req
  local reqs = {}
  local next_body, bodies = 1, nil
  sent = 0 -- global: done() reads it from each thread
  exhausted = 0 -- global, likewise: 1 when this thread ran out of bodies

  function init(args)
    stop_at = now() + send_secs
    req = wrk.format()
    local auth_file = os.getenv("BENCH_AUTH_FILE")
    if auth_file and auth_file ~= "" then
      -- Each thread its own sequence: a table's address differs between the threads' Lua states.
      math.randomseed(tonumber(tostring({}):match("0x(%x+)") or "1", 16) % 2147483647)
      for line in io.lines(auth_file) do
        local headers = {}
        for k, v in pairs(wrk.headers) do headers[k] = v end
        headers["Authorization"] = line
        reqs[#reqs + 1] = wrk.format(nil, nil, headers)
      end
    end
    local body_file = os.getenv("BENCH_BODY_FILE")
    if body_file and body_file ~= "" then
      -- thread_index: set by setup(), which wrk calls before this thread's init().
      local count, mine, n = tonumber(os.getenv("BENCH_THREADS")), thread_index, 0
      bodies = {}
      for line in io.lines(body_file) do
        if n % count == mine - 1 then bodies[#bodies + 1] = wrk.format(nil, nil, nil, line) end
        n = n + 1
      end
    end
  end

  -- Called for every request: the request built once by wrk.format while sending, then an empty one, which
  -- wrk writes as nothing, so each connection goes quiet after its last response. (A delay() hook would cost
  -- wrk two more epoll_ctl calls and a timer per request.)
  function request()
    if now() < stop_at then
      if bodies then
        local body = bodies[next_body]
        if not body then
          exhausted = 1
          return ""
        end
        -- wrk's check of the first thread's request before the run sends nothing: that body stays unsent.
        next_body = next_body + 1
        sent = sent + 1
        return body
      end
      sent = sent + 1
      if #reqs > 0 then return reqs[math.random(#reqs)] end
      return req
    end
    return ""
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
  -- wrk calls the first thread's request() once before the run, to check the request it returns: that call
  -- sends nothing, so that thread's count starts one lower.
  if send_secs and #threads == 1 then thread:set("sent", -1) end
end

function done(summary, latency, requests)
  local e = summary.errors
  -- Requests sent but never answered within the run (only known when sending stops early).
  local total_sent, exhausted_threads = summary.requests, 0
  if send_secs then
    total_sent = 0
    for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      exhausted_threads = exhausted_threads + thread:get("exhausted")
    end
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"sent":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"exhausted":%d}\n',
    summary.requests, total_sent, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, exhausted_threads))
end
