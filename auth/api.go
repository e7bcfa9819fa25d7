package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// API serves the tenancy HTTP API under /api/v1: login and sessions, orgs,
// sites, members, invites, API keys, share links, quotas and usage. Every
// handler scopes what it touches to the caller: org routes go through
// RequireRole, site routes through VisibleSite and Authorize, and a nested
// id (key, invite, member, share link) must belong to the org or site in the
// path, or the answer is 404.
type API struct {
	s   *Store
	log *slog.Logger
}

// NewAPI returns the HTTP API over s.
func NewAPI(s *Store, log *slog.Logger) *API { return &API{s: s, log: log} }

// apiTimeout bounds the ClickHouse writes of one API request.
const apiTimeout = 10 * time.Second

// defaultUsageDays is the span GET …/usage covers without from and to.
const defaultUsageDays = 30

// Register mounts the API on r (the app root).
func (a *API) Register(r fiber.Router) {
	s := a.s
	v1 := r.Group("/api/v1", s.Middleware())
	authed := RequireAuth()
	viewer := func(p string) fiber.Handler { return s.RequireRole(p, RoleViewer) }
	admin := func(p string) fiber.Handler { return s.RequireRole(p, RoleAdmin) }

	v1.Post("/login", a.login)
	v1.Post("/logout", a.logout)
	v1.Post("/signup", a.signup)
	v1.Post("/invites/accept", a.acceptInvite)
	v1.Get("/me", authed, a.me)
	v1.Post("/me/password", authed, a.changePassword)

	v1.Get("/orgs", authed, a.listOrgs)
	v1.Post("/orgs", authed, a.createOrg)
	v1.Get("/orgs/:org", viewer("org"), a.getOrg)
	v1.Patch("/orgs/:org", admin("org"), a.renameOrg)
	v1.Delete("/orgs/:org", s.RequireRole("org", RoleOwner), a.deleteOrg)
	v1.Put("/orgs/:org/quota", authed, a.setQuota)
	v1.Get("/orgs/:org/usage", viewer("org"), a.usage)
	v1.Get("/orgs/:org/sites", viewer("org"), a.listSites)
	v1.Post("/orgs/:org/sites", admin("org"), a.createSite)
	v1.Get("/orgs/:org/members", viewer("org"), a.listMembers)
	v1.Put("/orgs/:org/members/:user", admin("org"), a.setMember)
	v1.Delete("/orgs/:org/members/:user", admin("org"), a.removeMember)
	v1.Get("/orgs/:org/invites", admin("org"), a.listInvites)
	v1.Post("/orgs/:org/invites", admin("org"), a.createInvite)
	v1.Delete("/orgs/:org/invites/:id", admin("org"), a.revokeInvite)
	v1.Get("/orgs/:org/keys", admin("org"), a.listKeys)
	v1.Post("/orgs/:org/keys", admin("org"), a.createKey)
	v1.Delete("/orgs/:org/keys/:id", admin("org"), a.revokeKey)

	v1.Get("/sites/:site", authed, a.getSite)
	v1.Patch("/sites/:site", authed, a.updateSite)
	v1.Delete("/sites/:site", authed, a.deleteSite)
	v1.Post("/sites/:site/identity-secret", authed, a.rotateIdentitySecret)
	v1.Get("/sites/:site/share-links", authed, a.listShareLinks)
	v1.Post("/sites/:site/share-links", authed, a.createShareLink)
	v1.Delete("/sites/:site/share-links/:id", authed, a.revokeShareLink)
}

// fail answers err with the status its kind calls for and its message.
func (a *API) fail(c *fiber.Ctx, err error) error {
	status := fiber.StatusInternalServerError
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((rl.RetryAfter+time.Second-1)/time.Second)))
		status = fiber.StatusTooManyRequests
	case errors.Is(err, ErrNotFound):
		status = fiber.StatusNotFound
	case errors.Is(err, ErrExists), errors.Is(err, ErrLastOwner):
		status = fiber.StatusConflict
	case errors.Is(err, ErrInvalid):
		status = fiber.StatusBadRequest
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrBadCredentials):
		status = fiber.StatusUnauthorized
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrSignupDisabled):
		status = fiber.StatusForbidden
	}
	msg := err.Error()
	if status == fiber.StatusInternalServerError {
		a.log.Error("api request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
		msg = "internal error"
	}
	return c.Status(status).JSON(fiber.Map{"error": msg})
}

// body decodes the JSON request body into v, whatever the Content-Type says
// (curl -d sends a form type).
func body(c *fiber.Ctx, v any) error {
	if err := json.Unmarshal(c.Body(), v); err != nil {
		return invalid("request body must be a JSON object: %v", err)
	}
	return nil
}

func idParam(c *fiber.Ctx, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params(name))
	if err != nil {
		return uuid.Nil, notFound(name, c.Params(name))
	}
	return id, nil
}

// actor is the id recorded as creator: the user, or the API key.
func actor(p *Principal) uuid.UUID {
	switch {
	case p.User != nil:
		return p.User.ID
	case p.APIKey != nil:
		return p.APIKey.ID
	}
	return uuid.Nil
}

func opCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), apiTimeout)
}

func invalidCaller(msg string) error { return errors.Join(ErrForbidden, errors.New(msg)) }

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
