-- wrk script: POST a new contact with a unique email per request.
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
  local body = string.format('{"first_name":"Bench","email":"bench-%s-%d-%d@example.com"}', run, id, counter)
  -- nil headers: wrk then sends the -H ones (Authorization, Content-Type)
  return wrk.format("POST", nil, nil, body)
end
