-- wrk script: POST a small record body (the bench module's creates).
request = function()
  -- nil headers: wrk then sends the -H ones (Authorization, Content-Type)
  return wrk.format("POST", nil, nil, '{"body":"bench"}')
end
