-- Drives wrk with pre-generated signed pushes: one per line, "path?query<TAB>body".
-- Arguments after "--": corpus file, first line to use, number of wrk threads, and the most
-- lines one thread loads (a run cannot send more than that many anyway: loading the rest of
-- a large corpus would only cost time).
-- Thread k takes lines first+k, first+k+T, ... so no two threads send the same request;
-- a thread that runs out of lines starts again from its first one, and done() says so.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path, first, nthreads = args[1], tonumber(args[2]), tonumber(args[3])
   local limit = tonumber(args[4])
   local headers = { ["Content-Type"] = "text/xml" }
   reqs = {}
   local n = 0
   for line in io.lines(path) do
      if n >= first and (n - first) % nthreads == id then
         local tab = line:find("\t", 1, true)
         -- formatted once here, so request() is a table lookup (wrk's SCRIPTING advice)
         reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
      end
      n = n + 1
      if #reqs >= limit then
         break
      end
   end
   count = #reqs
   sent = 0
   if count == 0 then
      error("no requests at or after line " .. first .. " of " .. path)
   end
end

function request()
   sent = sent + 1
   return reqs[(sent - 1) % count + 1]
end

function done(summary, latency, requests)
   local max_sent, recycled = 0, 0
   for _, thread in ipairs(threads) do
      local s, c = thread:get("sent"), thread:get("count")
      if s > max_sent then max_sent = s end
      if s > c then recycled = recycled + (s - c) end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"mean_us":%.1f,"errors_connect":%d,"errors_read":%d,'
         .. '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,'
         .. '"max_sent_per_thread":%d,"recycled":%d,"threads":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write,
      e.status, e.timeout, max_sent, recycled, #threads))
end
