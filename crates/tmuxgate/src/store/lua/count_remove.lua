-- Takes one from this instance's count, deleting it at zero. KEYS[1] counts; ARGV field.
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
