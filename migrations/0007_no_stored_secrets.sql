-- Idempotency-Key replays kept the whole first response, so a token's creation left its secret in
-- idempotency_keys for 24 hours. podid now stores responses without token secrets; the responses
-- kept before are dropped (a retry with such a key creates a new token instead of replaying).
-- encode(…, 'escape') reads any bytes, so the match cannot fail on a body that is not UTF-8.
DELETE FROM idempotency_keys
WHERE body IS NOT NULL
  AND encode(body, 'escape') ~ '"podid_[A-Za-z0-9_-]{43}"';
