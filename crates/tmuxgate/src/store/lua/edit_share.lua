-- One user's share of one session, changed atomically (so two gateways changing two users'
-- shares at once both land). KEYS[1]: the sessions hash; KEYS[2]: that session's shares
-- hash. ARGV[1]: session id; ARGV[2]: user; ARGV[3]: mode, or '' to remove the share.
-- Returns 1, or 0 (and changes nothing) when the session has no record.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return 1
