-- wrk script for bench/loadgen.py (non-stream cases): POSTs the body in $BENCH_BODY with the
-- Authorization header in $BENCH_AUTH, checks every answer (200 and a "choices" field), counts
-- what each thread sent, and prints one JSON line at the end.
-- https://github.com/wg/wrk/blob/master/SCRIPTING

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local prepared

function init(args)
  prepared = wrk.format()
  sent = 0
  bad = 0
  sample = ""
end

function request()
  sent = sent + 1
  return prepared
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"choices"', 1, true) then
    bad = bad + 1
    if sample == "" then
      sample = ("HTTP " .. status .. ": " .. string.sub(body or "", 1, 200)):gsub('[^%w .,:;_%-]', " ")
    end
  end
end

function done(summary, latency, requests)
  local total_sent, total_bad, first_sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_bad = total_bad + thread:get("bad")
    if first_sample == "" then first_sample = thread:get("sample") end
  end
  -- wrk's main() calls request() once on the first thread's script before the run, to count
  -- pipelined requests (script_verify_request in https://github.com/wg/wrk/blob/master/src/wrk.c):
  -- that one was never sent.
  total_sent = total_sent - 1
  local e = summary.errors
  io.write(string.format(
    '{"sent": %d, "bad": %d, "sample": "%s", "completed": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d}\n',
    total_sent, total_bad, first_sample, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
