-- Adds one to this instance's count if the live instances' total is below the cap.
-- KEYS[1] instances, KEYS[2] this instance's counts; ARGV field, max, instance, counts
-- key prefix (`{PREFIX}:counts:`), default ttl ms. Returns 1 if added.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[3])
end
local total = 0
for _, instance in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  total = total + (tonumber(redis.call('HGET', ARGV[4] .. instance, ARGV[1])) or 0)
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[3])
redis.call('PEXPIREAT', KEYS[2], math.floor(tonumber(expiry)))
return 1
