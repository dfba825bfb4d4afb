-- POST one fixed body with the headers a scenario needs, on every request.
-- Environment: BENCH_BODY_FILE (path of the JSON body), BENCH_HEADERS (lines "name: value").
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

-- wrk counts non-2xx answers itself; this also counts them per thread and prints one line,
-- so that a run whose answers were errors cannot pass for a fast one.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body) if status ~= 200 then bad = bad + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("BENCH non200=%d requests=%d p99_us=%d\n", total, summary.requests,
                         latency:percentile(99)))
end
