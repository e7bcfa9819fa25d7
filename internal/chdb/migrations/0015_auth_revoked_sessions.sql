-- Dashboard session tokens ended by logout, by token id (the JWT's jti),
-- with the token's own expiry: every node refuses a listed token, and reads
-- only the rows whose token has not expired yet, so old rows cost nothing
-- but disk (a few dozen bytes per logout).
CREATE TABLE IF NOT EXISTS auth_revoked_sessions (
    token_id   String,
    user_id    UUID,
    expires_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY token_id;
