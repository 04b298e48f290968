-- Removes the members of sorted set KEYS[1] whose score (an end, in ms since the epoch)
-- has passed on the server's clock, and their fields in hash KEYS[2] when it is given, in
-- one step (a member re-added meanwhile cannot be lost). Returns how many went.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if KEYS[2] then
  for i = 1, #expired, 1000 do
    redis.call('HDEL', KEYS[2], unpack(expired, i, math.min(i + 999, #expired)))
  end
end
return #expired
