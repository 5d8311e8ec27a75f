-- POST a rotating set of request bodies; count answers by status; print one JSON line at the end.
--
--   wrk -t1 -c32 -d10s -s bench/lua/post.lua http://127.0.0.1:8000/predict/digits -- MANIFEST
--
-- MANIFEST has one line per body: `path-to-body-file<TAB>Header: value<TAB>...` (bench/harness.py
-- writes it). Every request is built once in init(); request() only hands the next one out.

local requests, count, next_index = {}, 0, 0
local threads = {}
statuses = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local manifest = args[1]
   if manifest == nil then
      error("usage: wrk ... -s post.lua URL -- MANIFEST")
   end
   for line in io.lines(manifest) do
      if line ~= "" then
         local fields = {}
         for f in string.gmatch(line, "[^\t]+") do
            table.insert(fields, f)
         end
         local file = assert(io.open(fields[1], "rb"))
         local body = file:read("*a")
         file:close()
         local headers = {}
         for k = 2, #fields do
            local name, value = string.match(fields[k], "^([^:]+):%s*(.*)$")
            headers[name] = value
         end
         count = count + 1
         requests[count] = wrk.format("POST", nil, headers, body)
      end
   end
   if count == 0 then
      error("no bodies in " .. manifest)
   end
   -- threads start at different bodies
   next_index = math.random(count) - 1
end

function request()
   next_index = next_index % count + 1
   return requests[next_index]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _)
   local totals = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for code, n in pairs(counts) do
         totals[code] = (totals[code] or 0) + n
      end
   end
   local parts = {}
   for code, n in pairs(totals) do
      table.insert(parts, string.format('"%d":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
         .. '"mean_us":%.1f,"statuses":{%s},'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
      table.concat(parts, ","), e.connect, e.read, e.write, e.timeout))
end
