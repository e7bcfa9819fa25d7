-- Tenancy and authentication metadata (package auth). Every table holds
-- versioned rows: the row with the highest `version` per sort key is the
-- current one, `deleted = 1` marks a tombstone. ReplacingMergeTree merges old
-- versions away in the background; readers never rely on merges having run.
-- See auth/store.go for how versions are assigned (first create wins, later
-- updates win over creates).

CREATE TABLE IF NOT EXISTS auth_orgs (
    id                UUID,
    name              String,
    events_per_second UInt32,
    events_per_month  UInt64,
    max_connections   UInt32,
    created_at        DateTime('UTC'),
    deleted           UInt8,
    version           UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- A site's id derives from its normalized domain and generation, so concurrent
-- creates of one domain write one row.
CREATE TABLE IF NOT EXISTS auth_sites (
    id              UUID,
    org_id          UUID,
    domain          String,
    generation      UInt32,
    public_key      String,
    allowed_origins Array(String),
    time_zone       String,
    identity_secret String,
    created_at      DateTime('UTC'),
    deleted         UInt8,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- A user's id derives from the normalized email and generation.
CREATE TABLE IF NOT EXISTS auth_users (
    id                 UUID,
    email              String,
    generation         UInt32,
    name               String,
    password_hash      String,
    operator           UInt8,
    tokens_valid_after DateTime('UTC'),
    created_at         DateTime('UTC'),
    deleted            UInt8,
    version            UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

CREATE TABLE IF NOT EXISTS auth_members (
    org_id     UUID,
    user_id    UUID,
    role       String,
    created_at DateTime('UTC'),
    deleted    UInt8,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (org_id, user_id);

-- Secret API keys: only the SHA-256 of the secret is stored. deleted = revoked.
CREATE TABLE IF NOT EXISTS auth_api_keys (
    id          UUID,
    org_id      UUID,
    name        String,
    prefix      String,
    secret_hash String,
    scopes      Array(String),
    created_by  UUID,
    created_at  DateTime('UTC'),
    deleted     UInt8,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Last use of an API key, kept apart from auth_api_keys so that recording a
-- use can never overwrite a revocation.
CREATE TABLE IF NOT EXISTS auth_api_key_usage (
    key_id       UUID,
    last_used_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(last_used_at)
ORDER BY key_id;

-- Read-only share links for one site. deleted = revoked.
CREATE TABLE IF NOT EXISTS auth_share_links (
    id         UUID,
    org_id     UUID,
    site_id    UUID,
    name       String,
    created_by UUID,
    expires_at DateTime('UTC'),
    created_at DateTime('UTC'),
    deleted    UInt8,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Member invitations: only the SHA-256 of the invite token is stored.
-- deleted = accepted or withdrawn.
CREATE TABLE IF NOT EXISTS auth_invites (
    id         UUID,
    org_id     UUID,
    email      String,
    role       String,
    token_hash String,
    created_by UUID,
    expires_at DateTime('UTC'),
    created_at DateTime('UTC'),
    deleted    UInt8,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Usage per tenant per day. Every node adds its own counts; rows merge by sum,
-- and readers always sum() so unmerged rows count correctly.
CREATE TABLE IF NOT EXISTS auth_usage_daily (
    org_id          UUID,
    day             Date,
    events          UInt64,
    rejected_events UInt64
) ENGINE = SummingMergeTree((events, rejected_events))
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, day);
