package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/google/uuid"
)

// invitePrefix starts every invite token.
const invitePrefix = "inv_"

// NewUser describes a user to create.
type NewUser struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"-"`
	Operator bool   `json:"operator"`
}

// CreateUser creates a user with an argon2id password hash. Two concurrent
// creates of one email (on any nodes) yield one user; the others fail with ErrExists.
func (s *Store) CreateUser(ctx context.Context, in NewUser) (User, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return User{}, err
	}
	name, err := checkName("name", in.Name, false)
	if err != nil {
		return User{}, err
	}
	if _, err := s.UserByEmail(email); err == nil {
		return User{}, fmt.Errorf("auth: create user %s: %w", email, ErrExists)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	return claim(ctx, s, usersTable(), "user", "email", email,
		func(u User) uint32 { return u.generation },
		func(id uuid.UUID, gen uint32) User {
			return User{ID: id, Email: email, Name: name, Operator: in.Operator, generation: gen,
				passwordHash: hash, CreatedAt: time.Now().UTC().Truncate(time.Second)}
		})
}

// User returns a live user.
func (s *Store) User(id uuid.UUID) (User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := liveRow(s.t.users, id)
	if !ok {
		return User{}, notFound("user", id)
	}
	return u, nil
}

// UserByEmail returns the live user with this email.
func (s *Store) UserByEmail(email string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.idx.usersByEmail[e]
	if !ok {
		return User{}, notFound("user", e)
	}
	return u, nil
}

// Users lists every live user by email (for operators).
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []User
	for _, u := range s.idx.usersByEmail {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out
}

func (s *Store) updateUser(ctx context.Context, id uuid.UUID, f func(*User)) (User, error) {
	u, err := s.User(id)
	if err != nil {
		return User{}, err
	}
	f(&u)
	return u, write(ctx, s, usersTable(), versioned[User]{row: u, version: s.updateVersion()})
}

// SetOperator grants or withdraws the operator flag.
func (s *Store) SetOperator(ctx context.Context, id uuid.UUID, operator bool) (User, error) {
	return s.updateUser(ctx, id, func(u *User) { u.Operator = operator })
}

// RenameUser changes a user's display name.
func (s *Store) RenameUser(ctx context.Context, id uuid.UUID, name string) (User, error) {
	name, err := checkName("name", name, false)
	if err != nil {
		return User{}, err
	}
	return s.updateUser(ctx, id, func(u *User) { u.Name = name })
}

// DeleteUser deletes a user and their memberships; their sessions stop
// working. The email can sign up again (as a new user with a new id).
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID) error {
	u, err := s.User(id)
	if err != nil {
		return err
	}
	if err := write(ctx, s, usersTable(), versioned[User]{row: u, version: s.updateVersion(), deleted: true}); err != nil {
		return err
	}
	for _, m := range s.Memberships(id) {
		if err := write(ctx, s, membersTable(), versioned[Member]{row: m, version: s.updateVersion(), deleted: true}); err != nil {
			return err
		}
	}
	return nil
}

// ChangePassword replaces a user's password after checking the old one, and
// ends every session issued before (including the caller's: issue a new one).
// Checking the old password counts against the login rate limits of the
// account and of client.
func (s *Store) ChangePassword(ctx context.Context, id uuid.UUID, oldPassword, newPassword string, client netip.Addr) error {
	u, err := s.User(id)
	if err != nil {
		return err
	}
	if retry, ok := s.logins.allow(u.Email, client, time.Now()); !ok {
		return &RateLimitError{RetryAfter: retry}
	}
	ok, err := s.hasher.Verify(ctx, oldPassword, u.passwordHash)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("auth: change password: %w", ErrBadCredentials)
	}
	s.logins.succeeded(u.Email, client, time.Now())
	return s.SetPassword(ctx, id, newPassword)
}

// SetPassword replaces a user's password without the old one (operator
// reset, invite acceptance) and ends every session issued before.
func (s *Store) SetPassword(ctx context.Context, id uuid.UUID, password string) error {
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	_, err = s.updateUser(ctx, id, func(u *User) {
		u.passwordHash = hash
		u.TokensValidAfter = revocationTime(u.TokensValidAfter)
	})
	return err
}

// revocationTime is the TokensValidAfter that ends every session issued so
// far, given the previous one. Token times have whole seconds, so it is the
// next whole second (a token issued in the same second, before the change,
// must not survive it), and past the previous value, because sessions issued
// after a revocation carry its time (IssueSession).
func revocationTime(prev time.Time) time.Time {
	next := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	if !prev.Before(next) {
		next = prev.Add(time.Second)
	}
	return next
}

// RevokeSessions ends every session of a user issued before now ("log out everywhere").
func (s *Store) RevokeSessions(ctx context.Context, id uuid.UUID) error {
	_, err := s.updateUser(ctx, id, func(u *User) { u.TokensValidAfter = revocationTime(u.TokensValidAfter) })
	return err
}

// Session is an issued dashboard session token.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Login checks an email and password and issues a session token. It is
// rate-limited per account and per client address (RateLimitError); a wrong
// email and a wrong password both fail with ErrBadCredentials and take the
// same time.
func (s *Store) Login(ctx context.Context, email, password string, client netip.Addr) (User, Session, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, Session{}, fmt.Errorf("auth: login: %w", ErrBadCredentials)
	}
	if retry, ok := s.logins.allow(e, client, time.Now()); !ok {
		return User{}, Session{}, &RateLimitError{RetryAfter: retry}
	}
	u, err := s.UserByEmail(e)
	hash := u.passwordHash
	if err != nil {
		hash = s.dummyHash()
	}
	ok, verr := s.hasher.Verify(ctx, password, hash)
	if verr != nil && err == nil {
		return User{}, Session{}, fmt.Errorf("auth: login: %w", verr)
	}
	if err != nil || !ok {
		return User{}, Session{}, fmt.Errorf("auth: login: %w", ErrBadCredentials)
	}
	s.logins.succeeded(e, client, time.Now())
	sess, err := s.IssueSession(u)
	return u, sess, err
}

// dummyHash is a hash that verifies nothing, to spend the same time on an
// unknown email as on a known one.
func (s *Store) dummyHash() string {
	p := s.cfg.Password
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		p.MemoryKiB, p.Time, p.Threads)
}

// IssueSession issues a dashboard session token for u.
func (s *Store) IssueSession(u User) (Session, error) {
	// Within the second after a revocation, a new session is dated at its end
	// (well inside the verification leeway) so that it is not revoked itself.
	now := time.Now()
	if current, err := s.User(u.ID); err == nil && current.TokensValidAfter.After(now) {
		now = current.TokensValidAfter
	}
	claims := SessionClaims{s.tok.registered(AudienceSession, u.ID.String(), now, s.cfg.SessionLifetime)}
	tok, err := s.tok.sign(claims)
	return Session{Token: tok, ExpiresAt: claims.ExpiresAt.Time}, err
}

// VerifySession verifies a session token and returns its live user. Tokens
// issued before the user's TokensValidAfter, logged out (Logout) or without
// an id to log out by are refused.
func (s *Store) VerifySession(raw string) (User, error) {
	var c SessionClaims
	if err := s.tok.parse(raw, AudienceSession, &c); err != nil {
		return User{}, err
	}
	id, err := subjectID(c.RegisteredClaims)
	if err != nil {
		return User{}, err
	}
	u, err := s.User(id)
	if err != nil {
		return User{}, fmt.Errorf("%w: session of an unknown user", ErrUnauthorized)
	}
	if c.IssuedAt == nil || c.IssuedAt.Before(u.TokensValidAfter) {
		return User{}, fmt.Errorf("%w: session was ended", ErrUnauthorized)
	}
	if c.ID == "" {
		return User{}, fmt.Errorf("%w: session has no id", ErrUnauthorized)
	}
	if s.sessionRevoked(c.ID) {
		return User{}, fmt.Errorf("%w: session was logged out", ErrUnauthorized)
	}
	return u, nil
}

// Signup creates a user and an org they own, when Config.AllowSignup is on.
func (s *Store) Signup(ctx context.Context, in NewUser, orgName string) (User, Org, error) {
	if !s.cfg.AllowSignup {
		return User{}, Org{}, fmt.Errorf("auth: signup: %w", ErrSignupDisabled)
	}
	if _, err := checkName("org name", orgName, true); err != nil {
		return User{}, Org{}, err
	}
	in.Operator = false
	u, err := s.CreateUser(ctx, in)
	if err != nil {
		return User{}, Org{}, err
	}
	o, err := s.CreateOrg(ctx, orgName, u.ID)
	return u, o, err
}

// CreateInvite invites email into org with role and returns the invite and
// its single-use token (shown once; only its SHA-256 is stored).
func (s *Store) CreateInvite(ctx context.Context, org uuid.UUID, email string, role Role, by uuid.UUID) (Invite, string, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return Invite{}, "", err
	}
	if !role.Valid() {
		return Invite{}, "", invalid("role %q is not owner, admin or viewer", role)
	}
	if _, err := s.Org(org); err != nil {
		return Invite{}, "", err
	}
	token := invitePrefix + randomString(32)
	now := time.Now().UTC().Truncate(time.Second)
	in := Invite{ID: uuid.New(), OrgID: org, Email: e, Role: role, CreatedBy: by, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.InviteLifetime), tokenHash: hashSecret(token)}
	return in, token, write(ctx, s, invitesTable(), versioned[Invite]{row: in, version: createVersion(time.Now())})
}

// Invites lists org's open invites.
func (s *Store) Invites(org uuid.UUID) []Invite {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Invite
	for _, in := range s.idx.invitesByHash {
		if in.OrgID == org {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { // oldest first, ties (the same second) by id
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// RevokeInvite withdraws an open invite.
func (s *Store) RevokeInvite(ctx context.Context, id uuid.UUID) error {
	s.mu.RLock()
	in, ok := liveRow(s.t.invites, id)
	s.mu.RUnlock()
	if !ok {
		return notFound("invite", id)
	}
	return write(ctx, s, invitesTable(), versioned[Invite]{row: in, version: s.updateVersion(), deleted: true})
}

// AcceptInvite redeems an invite token: it creates the invited user with
// password (or, when the email already has an account, checks that password
// against it), adds the membership and marks the invite used. The token
// then no longer works on this node at once and on every node after the
// next refresh; redeeming it twice in that window adds the same membership.
//
// Checking an existing account's password counts against the login rate
// limits of the account and of client.
func (s *Store) AcceptInvite(ctx context.Context, token, name, password string, client netip.Addr) (User, Member, error) {
	if len(token) > MaxTokenLength {
		return User{}, Member{}, fmt.Errorf("auth: accept invite: %w", ErrNotFound)
	}
	s.mu.RLock()
	in, ok := s.idx.invitesByHash[hashSecret(token)]
	s.mu.RUnlock()
	if !ok || time.Now().After(in.ExpiresAt) {
		return User{}, Member{}, fmt.Errorf("auth: accept invite: %w", ErrNotFound)
	}
	u, err := s.UserByEmail(in.Email)
	switch {
	case err == nil:
		if retry, ok := s.logins.allow(u.Email, client, time.Now()); !ok {
			return User{}, Member{}, &RateLimitError{RetryAfter: retry}
		}
		ok, err := s.hasher.Verify(ctx, password, u.passwordHash)
		if err != nil {
			return User{}, Member{}, err
		}
		if !ok {
			return User{}, Member{}, fmt.Errorf("auth: accept invite: %w", ErrBadCredentials)
		}
		s.logins.succeeded(u.Email, client, time.Now())
	case errors.Is(err, ErrNotFound):
		if u, err = s.CreateUser(ctx, NewUser{Email: in.Email, Name: name, Password: password}); err != nil {
			return User{}, Member{}, err
		}
	default:
		return User{}, Member{}, err
	}
	if err := write(ctx, s, invitesTable(), versioned[Invite]{row: in, version: s.updateVersion(), deleted: true}); err != nil {
		return User{}, Member{}, err
	}
	if m, ok := s.membership(in.OrgID, u.ID); ok && m.Role.AtLeast(in.Role) {
		return u, m, nil
	}
	m, err := s.AddMember(ctx, in.OrgID, u.ID, in.Role)
	return u, m, err
}

// hashSecret is the stored form of API key secrets and invite tokens.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
