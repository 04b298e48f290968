-- GCRA on the server's clock, in microseconds. KEYS[1] bucket; ARGV interval, tolerance,
-- cost. Returns -1 when taken, else the wait in µs. Mirrors `abuse::gcra::Quota::take`.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local increment = interval * tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allow_at = tat - tolerance
if allow_at > now then return allow_at - now end
local new_tat = tat + increment
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return -1
