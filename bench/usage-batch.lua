-- wrk script: POST batches of 1,000 usage events, each with a fresh idempotency key.
local thread_id = 0
local counter = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
end

function init(args)
  run = args[1] or tostring(os.time())
end

request = function()
  counter = counter + 1
  local events = {}
  for i = 1, 1000 do
    events[i] = string.format('{"meter":"bench.events","quantity":%d,"idempotency_key":"%s-%d-%d-%d"}', i % 7, run, id, counter, i)
  end
  return wrk.format("POST", nil, nil, '{"events":[' .. table.concat(events, ",") .. ']}')
end
