-- wrk script for bench/benchmarks/webhook_http.py: POST pre-signed WhatsApp webhooks.
-- ZR_BENCH_BODIES names a file of lines "<X-Hub-Signature-256>\t<body>", each body a single
-- text message with its own wamid. Thread k of ZR_BENCH_THREADS takes lines k, k+n, k+2n, ...
-- so no two threads send the same wamid; a thread that runs out starts its share again
-- (redeliveries, which the service answers as duplicates; webhook_http.py sizes the file so it does not).
-- done() prints one line "ZR_RESULT {json}" for bench/harness/http.py.

local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local sigs, bodies, n, i = {}, {}, 0, 0

function init(args)
  local path = os.getenv("ZR_BENCH_BODIES")
  local nthreads = tonumber(os.getenv("ZR_BENCH_THREADS") or "1")
  local k = 0
  for line in io.lines(path) do
    if k % nthreads == tid then
      local tab = line:find("\t", 1, true)
      n = n + 1
      sigs[n] = line:sub(1, tab - 1)
      bodies[n] = line:sub(tab + 1)
    end
    k = k + 1
  end
  if n == 0 then
    error("no request bodies for thread " .. tid .. " in " .. tostring(path))
  end
end

function request()
  i = i % n + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'ZR_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
