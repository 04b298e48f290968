-- The live instances' total of one count. KEYS[1] instances; ARGV field, counts prefix.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = 0
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  total = total + (tonumber(redis.call('HGET', ARGV[2] .. instance, ARGV[1])) or 0)
end
return total
