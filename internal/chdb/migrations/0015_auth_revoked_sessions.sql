-- Dashboard session tokens ended by logout, by token id (the JWT's jti),
-- with the token's own expiry: every node refuses a listed token, and reads
-- only the rows whose token has not expired yet: sorted by expiry, that read
-- skips the expired rows by the primary index, so old rows cost only disk (a
-- few dozen bytes per logout; a month's partition can be dropped once its
-- tokens have all expired).
CREATE TABLE IF NOT EXISTS auth_revoked_sessions (
    token_id   String,
    user_id    UUID,
    expires_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(expires_at)
ORDER BY (expires_at, token_id);
