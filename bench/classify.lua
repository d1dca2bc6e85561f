-- wrk script: POST /classify with JSON bodies read from a file (one body per line), cycled
-- per connection-thread, and count every response whose status is not 2xx.
--
--   wrk -t1 -c64 -d8s -s bench/classify.lua http://127.0.0.1:PORT/classify -- BODIES_FILE
--
-- At the end it prints one line "BENCH_JSON {...}" with the totals run.py reads (wrk's own
-- "Non-2xx or 3xx" line would count 3xx as errors too, and its text is meant for people).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s classify.lua URL -- BODIES_FILE")
   end
   local headers = { ["Content-Type"] = "application/json" }
   requests = {}
   for line in io.lines(path) do
      if #line > 0 then
         table.insert(requests, wrk.format("POST", nil, headers, line))
      end
   end
   if #requests == 0 then
      error("no request bodies in " .. path)
   end
   -- Threads start at different offsets so they do not send the same body in lockstep.
   index = ((id or 1) * 7919) % #requests
   non2xx = 0
   responses = 0
end

function request()
   index = index % #requests + 1
   return requests[index]
end

function response(status, headers, body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local non2xx_total, responses_total = 0, 0
   for _, thread in ipairs(threads) do
      non2xx_total = non2xx_total + (thread:get("non2xx") or 0)
      responses_total = responses_total + (thread:get("responses") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"responses": %d, "non2xx": %d, ' ..
      '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
      '"status_errors": %d, ' ..
      '"latency_us": {"mean": %.1f, "stdev": %.1f, "min": %d, "max": %d, ' ..
      '"p50": %d, "p90": %d, "p99": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      responses_total, non2xx_total,
      e.connect, e.read, e.write, e.timeout,
      e.status,
      latency.mean, latency.stdev, latency.min, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
