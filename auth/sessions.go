package auth

import (
	"context"
	"fmt"
	"time"
)

// Logout revokes one dashboard session: the token id (jti) goes into
// auth_revoked_sessions with the token's expiry, and into this node's memory,
// so the token is refused at once here and on every other node from its
// next refresh (Config.RefreshInterval). The user's other sessions go on.
// A token that does not verify is already refused and needs nothing.
func (s *Store) Logout(ctx context.Context, raw string) error {
	var c SessionClaims
	if err := s.tok.parse(raw, AudienceSession, &c); err != nil {
		return nil
	}
	user, err := subjectID(c.RegisteredClaims)
	if err != nil || c.ID == "" {
		return nil
	}
	exp := c.ExpiresAt.Time.UTC().Add(s.cfg.Leeway).Truncate(time.Second).Add(time.Second)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	batch, err := s.db.PrepareBatch(ctx, "INSERT INTO auth_revoked_sessions (token_id, user_id, expires_at)")
	if err != nil {
		return fmt.Errorf("auth: logout: %w", err)
	}
	if err := batch.Append(c.ID, user, exp); err != nil {
		batch.Abort()
		return fmt.Errorf("auth: logout: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("auth: logout: %w", err)
	}
	s.mu.Lock()
	s.revoked[c.ID] = exp
	s.mu.Unlock()
	return nil
}

// sessionRevoked reports whether the session token id was logged out.
func (s *Store) sessionRevoked(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.revoked[id]
	return ok
}

// loadRevokedSessions reads the ids of logged-out sessions that have not
// expired yet (an expired token is refused by its exp anyway).
func (s *Store) loadRevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.Query(ctx, "SELECT token_id, expires_at FROM auth_revoked_sessions WHERE expires_at > ?", now.UTC().Truncate(time.Second))
	if err != nil {
		return nil, fmt.Errorf("auth: read auth_revoked_sessions: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var exp time.Time
		if err := rows.Scan(&id, &exp); err != nil {
			return nil, fmt.Errorf("auth: read auth_revoked_sessions: %w", err)
		}
		out[id] = exp
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: read auth_revoked_sessions: %w", err)
	}
	return out, nil
}

// mergeRevoked adds fresh to the known revocations and forgets those whose
// token has expired. Caller holds s.mu.
func (s *Store) mergeRevoked(fresh map[string]time.Time, now time.Time) {
	for id, exp := range fresh {
		s.revoked[id] = exp
	}
	for id, exp := range s.revoked {
		if !exp.After(now) {
			delete(s.revoked, id)
		}
	}
}
