-- wrk script for the load test: a mix of fresh task deliveries, duplicates and status reads.
-- Each line of the requests file (env LOAD_REQUESTS) is METHOD \t PATH \t TOKEN \t BODY.
-- Per 10 requests: 6 fresh deliveries (while this thread has any), 2 duplicates of a delivery
-- already sent, 2 status reads. done() prints one JSON line the Python side parses.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local fresh, sent, reads = {}, {}, {}
local n = 0
s2xx, s4xx, s5xx, succeeded, duplicate, other = 0, 0, 0, 0, 0, 0
fresh_sent, duplicates_sent, reads_sent = 0, 0, 0

local function split(line)
  local parts = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do table.insert(parts, field) end
  return parts
end

function init(args)
  local nthreads = tonumber(os.getenv("LOAD_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("LOAD_REQUESTS")) do
    local p = split(line)
    if p[1] == "GET" then
      table.insert(reads, p[2])
    elseif i % nthreads == id then
      table.insert(fresh, wrk.format("POST", p[2], {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. p[3],
        ["X-CloudTasks-TaskRetryCount"] = "0",
      }, p[4]))
    end
    if p[1] ~= "GET" then i = i + 1 end
  end
  math.randomseed(1000 + id)
end

function request()
  n = n + 1
  local r = n % 10
  if r < 6 and fresh_sent < #fresh then
    fresh_sent = fresh_sent + 1
    local req = fresh[fresh_sent]
    table.insert(sent, req)
    return req
  elseif r < 8 and #sent > 0 then
    duplicates_sent = duplicates_sent + 1
    return sent[math.random(#sent)]
  end
  reads_sent = reads_sent + 1
  return wrk.format("GET", reads[math.random(#reads)])
end

function response(status, headers, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  else s2xx = s2xx + 1 end
  local kind = body:match('"status": "([%w-]+)"')
  if kind == "succeeded" then succeeded = succeeded + 1
  elseif kind == "duplicate" then duplicate = duplicate + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {s2xx = 0, s4xx = 0, s5xx = 0, succeeded = 0, duplicate = 0, other = 0,
             fresh_sent = 0, duplicates_sent = 0, reads_sent = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_s": %.3f, "errors": {"connect": %d, "read": %d, "write": %d,'
      .. ' "status": %d, "timeout": %d}, "latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f,'
      .. ' "max": %.3f}, "answers": {"2xx": %d, "4xx": %d, "5xx": %d, "succeeded": %d,'
      .. ' "duplicate": %d, "other": %d}, "sent": {"fresh": %d, "duplicates": %d, "reads": %d}}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, t.s2xx, t.s4xx, t.s5xx, t.succeeded, t.duplicate, t.other,
    t.fresh_sent, t.duplicates_sent, t.reads_sent))
end
