// Package auth is Pulse's tenancy and authentication core: organizations
// (tenants), their sites, users and roles, API keys, share links and invites,
// stored as versioned rows in ClickHouse and served from memory; argon2id
// passwords with rate-limited login; Ed25519-signed JWTs with key rotation;
// Fiber middleware, Origin policies and per-tenant quotas.
//
// # Model
//
// An Org is a tenant. It has Sites (a unique domain, a public key pk_… used
// by the tracker, exact allowed origins, a time zone and an HS256 identity
// secret), Members (users with role owner, admin or viewer), API keys (sk_…,
// scopes ingest, read, admin; only a SHA-256 is stored, the secret is shown
// once), share links (read-only, one site, expiring, revocable) and invites
// (single-use, expiring). Users with the operator flag administer every org.
//
// # Storage
//
// Every table is a ReplacingMergeTree(version) with a deleted flag for
// tombstones (migration 0002_auth.sql). A Store reads all of it into memory
// and Run refreshes it every Config.RefreshInterval (DefaultRefreshInterval,
// 2 s), so a revocation reaches every node within that interval. Creates of
// users and sites are exclusive without transactions: the id derives from the
// normalized email or domain, create versions make the earliest create win,
// and a create reads its id back to learn whether it won (see Store).
//
// # Tokens
//
// Session (AudienceSession, Config.SessionLifetime, 12 h), ingest resume
// (AudienceResume, Config.ResumeLifetime, 30 min) and share link
// (AudienceShare, per link, at most a year) tokens are EdDSA JWTs with a kid
// from the KeySet file; RotateKeys adds a new current key while older keys
// keep verifying. Identity tokens (AudienceIdentify, at most 24 h) are HS256,
// signed by a site's backend with the site's identity secret and issued by
// the site's public key. Every parse pins the algorithm, issuer, audience,
// requires exp and allows Config.Leeway (30 s) of clock skew.
package auth
