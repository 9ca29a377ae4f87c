-- wrk script for bench/api.py: each connection sends the next line of a plan file, round and round.
--
-- The plan (wrk ... -s rotate.lua <url> -- PLAN) holds one request a line: "<path>\t<bearer token>" (the
-- token may be empty). Each thread starts at its own offset so that threads do not ask for the same case at
-- the same moment. A response outside 2xx is counted (wrk itself counts only >= 400), and done() prints one
-- line of JSON the bench reads: latency percentiles in microseconds, requests, duration, every error kind.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  plan = {}
  for line in io.lines(args[1]) do
    local path, token = line:match("^([^\t]*)\t?(.*)$")
    local headers = {}
    if token ~= nil and token ~= "" then
      headers["Authorization"] = "Bearer " .. token
    end
    plan[#plan + 1] = wrk.format("GET", path, headers)
  end
  if #plan == 0 then
    error("empty plan file " .. args[1])
  end
  nxt = (id * 7919) % #plan
  non2xx = 0
end

function request()
  nxt = nxt % #plan + 1
  return plan[nxt]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"p50": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f, "requests": %d, "duration_us": %d, ' ..
    '"non2xx": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.status, e.timeout))
end
