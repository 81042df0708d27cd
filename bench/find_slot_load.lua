-- wrk script for bench/http_find_slot_load.py: every request a distinct POST /v1/find-slot body.
--
-- Environment (read by every wrk thread):
--   FIND_SLOT_BODIES  a file of request bodies, one JSON document a line
--   FIND_SLOT_TOKEN   the bearer token
--   FIND_SLOT_OFFSET  the line to start at (so a later run never repeats a body an earlier one sent:
--                     the server caches answers, and a repeated body would measure the cache)
--   FIND_SLOT_THREADS wrk's -t; thread k starts k/threads of the way into the remaining lines
-- done() prints one line "WRK_JSON {...}" with counts by status, socket errors and latency percentiles.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   bodies = {}
   for line in io.lines(os.getenv("FIND_SLOT_BODIES")) do
      bodies[#bodies + 1] = line
   end
   local offset = tonumber(os.getenv("FIND_SLOT_OFFSET") or "0")
   local nthreads = tonumber(os.getenv("FIND_SLOT_THREADS") or "1")
   local share = math.floor((#bodies - offset) / nthreads)
   next_body = offset + id * share
   headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. os.getenv("FIND_SLOT_TOKEN"),
   }
   statuses = {}
   cached = 0
   sent = 0
end

function request()
   next_body = next_body + 1
   sent = sent + 1
   return wrk.format("POST", "/v1/find-slot", headers, bodies[(next_body - 1) % #bodies + 1])
end

function response(status, hdrs, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
   if body and string.find(body, '"cached":true', 1, true) then
      cached = cached + 1
   end
end

function done(summary, latency, requests)
   local by_status = {}
   local hits, sent_total = 0, 0
   for _, thread in ipairs(threads) do
      for code, n in pairs(thread:get("statuses")) do
         by_status[code] = (by_status[code] or 0) + n
      end
      hits = hits + thread:get("cached")
      sent_total = sent_total + thread:get("sent")
   end
   local parts = {}
   for code, n in pairs(by_status) do
      parts[#parts + 1] = string.format('"%s": %d', code, n)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "statuses": {%s}, "cached": %d, '
         .. '"sent": %d, "socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"non_2xx": %d, "latency_us": {"p50": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes, table.concat(parts, ", "), hits, sent_total,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean
   ))
end
