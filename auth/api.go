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

// --- sessions

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type sessionAnswer struct {
	User      User      `json:"user"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *API) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	u, sess, err := a.s.Login(ctx, req.Email, req.Password, ClientAddr(c))
	if err != nil {
		return a.fail(c, err)
	}
	a.s.SetSessionCookie(c, sess)
	return c.JSON(sessionAnswer{User: u, Token: sess.Token, ExpiresAt: sess.ExpiresAt})
}

// logout clears the session cookie; with ?everywhere=true it also ends every
// session of the user on every device.
func (a *API) logout(c *fiber.Ctx) error {
	p := Caller(c)
	if c.QueryBool("everywhere") && p != nil && p.User != nil {
		ctx, cancel := opCtx(c)
		defer cancel()
		if err := a.s.RevokeSessions(ctx, p.User.ID); err != nil {
			return a.fail(c, err)
		}
	}
	a.s.ClearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

type signupRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
	Org      string `json:"org"`
}

func (a *API) signup(c *fiber.Ctx) error {
	var req signupRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	u, org, err := a.s.Signup(ctx, NewUser{Email: req.Email, Name: req.Name, Password: req.Password}, req.Org)
	if err != nil {
		return a.fail(c, err)
	}
	sess, err := a.s.IssueSession(u)
	if err != nil {
		return a.fail(c, err)
	}
	a.s.SetSessionCookie(c, sess)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"user": u, "org": org, "token": sess.Token, "expires_at": sess.ExpiresAt})
}

type acceptRequest struct {
	Token    string `json:"token"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (a *API) acceptInvite(c *fiber.Ctx) error {
	var req acceptRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	u, m, err := a.s.AcceptInvite(ctx, req.Token, req.Name, req.Password, ClientAddr(c))
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(fiber.Map{"user": u, "member": m})
}

func (a *API) me(c *fiber.Ctx) error {
	p := Caller(c)
	switch {
	case p.User != nil:
		u, err := a.s.User(p.User.ID)
		if err != nil {
			return a.fail(c, err)
		}
		return c.JSON(fiber.Map{"user": u, "memberships": nonNil(a.s.Memberships(u.ID))})
	case p.APIKey != nil:
		return c.JSON(fiber.Map{"api_key": p.APIKey})
	default:
		return c.JSON(fiber.Map{"share_link": p.ShareLink})
	}
}

type passwordRequest struct {
	Old string `json:"old_password"`
	New string `json:"new_password"`
}

func (a *API) changePassword(c *fiber.Ctx) error {
	p := Caller(c)
	if p.User == nil {
		return a.fail(c, invalidCaller("only a user can change a password"))
	}
	var req passwordRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.ChangePassword(ctx, p.User.ID, req.Old, req.New, ClientAddr(c)); err != nil {
		return a.fail(c, err)
	}
	a.s.ClearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

func invalidCaller(msg string) error { return errors.Join(ErrForbidden, errors.New(msg)) }

// --- orgs

func (a *API) listOrgs(c *fiber.Ctx) error {
	p := Caller(c)
	var out []Org
	for _, o := range a.s.Orgs() {
		if role, ok := a.s.RoleIn(p, o.ID); ok && role.AtLeast(RoleViewer) {
			out = append(out, o)
		}
	}
	return c.JSON(nonNil(out))
}

type orgRequest struct {
	Name string `json:"name"`
}

func (a *API) createOrg(c *fiber.Ctx) error {
	p := Caller(c)
	if p.User == nil {
		return a.fail(c, invalidCaller("only a user can create an org"))
	}
	var req orgRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	org, err := a.s.CreateOrg(ctx, req.Name, p.User.ID)
	if err != nil {
		return a.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(org)
}

func (a *API) getOrg(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	org, err := a.s.Org(id)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(org)
}

func (a *API) renameOrg(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	var req orgRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	org, err := a.s.RenameOrg(ctx, id, req.Name)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(org)
}

func (a *API) deleteOrg(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.DeleteOrg(ctx, id); err != nil {
		return a.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// setQuota is for operators of the hosted service only.
func (a *API) setQuota(c *fiber.Ctx) error {
	if !Caller(c).Operator() {
		return a.fail(c, invalidCaller("only an operator can set quotas"))
	}
	id, err := idParam(c, "org")
	if err != nil {
		return a.fail(c, err)
	}
	var q Quota
	if err := body(c, &q); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	org, err := a.s.SetQuota(ctx, id, q)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(org)
}

func (a *API) usage(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	to := time.Now().UTC()
	from := to.AddDate(0, 0, -defaultUsageDays)
	for name, t := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.Query(name); v != "" {
			d, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return a.fail(c, invalid("%s must be a date like 2026-11-24", name))
			}
			*t = d
		}
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	days, err := a.s.Usage(ctx, id, from, to)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(fiber.Map{"org_id": id, "quota": a.s.QuotaOf(id), "days": nonNil(days)})
}

// --- sites

// siteView is a site as the API shows it: admins also see the identity secret.
type siteView struct {
	Site
	IdentitySecret string `json:"identity_secret,omitempty"`
}

func (a *API) view(p *Principal, site Site) siteView {
	v := siteView{Site: site}
	if a.s.Authorize(p, site.OrgID, RoleAdmin) == nil {
		v.IdentitySecret = site.IdentitySecret
	}
	return v
}

func (a *API) listSites(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	p := Caller(c)
	sites := a.s.VisibleSites(p, id)
	out := make([]siteView, len(sites))
	for i, st := range sites {
		out[i] = a.view(p, st)
	}
	return c.JSON(out)
}

func (a *API) createSite(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	var in SiteInput
	if err := body(c, &in); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	site, err := a.s.CreateSite(ctx, id, in)
	if err != nil {
		return a.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(a.view(Caller(c), site))
}

// site resolves the :site parameter for a caller who needs role need in its
// org; another tenant's site is not found.
func (a *API) site(c *fiber.Ctx, need Role) (Site, error) {
	id, err := idParam(c, "site")
	if err != nil {
		return Site{}, err
	}
	p := Caller(c)
	site, err := a.s.VisibleSite(p, id)
	if err != nil {
		return Site{}, err
	}
	if p.ShareLink != nil && need == RoleViewer {
		return site, nil
	}
	if err := a.s.Authorize(p, site.OrgID, need); err != nil {
		return Site{}, err
	}
	return site, nil
}

func (a *API) getSite(c *fiber.Ctx) error {
	site, err := a.site(c, RoleViewer)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(a.view(Caller(c), site))
}

func (a *API) updateSite(c *fiber.Ctx) error {
	site, err := a.site(c, RoleAdmin)
	if err != nil {
		return a.fail(c, err)
	}
	var up SiteUpdate
	if err := body(c, &up); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	site, err = a.s.UpdateSite(ctx, site.ID, up)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(a.view(Caller(c), site))
}

func (a *API) deleteSite(c *fiber.Ctx) error {
	site, err := a.site(c, RoleAdmin)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.DeleteSite(ctx, site.ID); err != nil {
		return a.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) rotateIdentitySecret(c *fiber.Ctx) error {
	site, err := a.site(c, RoleAdmin)
	if err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	site, err = a.s.RotateIdentitySecret(ctx, site.ID)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(a.view(Caller(c), site))
}

// --- share links

func (a *API) listShareLinks(c *fiber.Ctx) error {
	site, err := a.site(c, RoleAdmin)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(nonNil(a.s.ShareLinks(site.ID)))
}

type shareRequest struct {
	Name string `json:"name"`
	// ExpiresIn is a Go duration such as "720h"; empty: DefaultShareLinkLifetime.
	ExpiresIn string `json:"expires_in"`
}

func (a *API) createShareLink(c *fiber.Ctx) error {
	site, err := a.site(c, RoleAdmin)
	if err != nil {
		return a.fail(c, err)
	}
	var req shareRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	var lifetime time.Duration
	if req.ExpiresIn != "" {
		if lifetime, err = time.ParseDuration(req.ExpiresIn); err != nil || lifetime <= 0 {
			return a.fail(c, invalid("expires_in must be a positive duration such as 720h"))
		}
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	link, token, err := a.s.CreateShareLink(ctx, site.ID, req.Name, lifetime, actor(Caller(c)))
	if err != nil {
		return a.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"share_link": link, "token": token})
}

func (a *API) revokeShareLink(c *fiber.Ctx) error {
	site, err := a.site(c, RoleAdmin)
	if err != nil {
		return a.fail(c, err)
	}
	id, err := idParam(c, "id")
	if err != nil {
		return a.fail(c, err)
	}
	link, err := a.s.ShareLink(id)
	if err != nil || link.SiteID != site.ID {
		return a.fail(c, notFound("share link", id))
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.RevokeShareLink(ctx, id); err != nil {
		return a.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// --- members and invites

func (a *API) listMembers(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	return c.JSON(nonNil(a.s.Members(id)))
}

type memberRequest struct {
	Role Role `json:"role"`
}

// setMember changes a member's role; people join through invites, so a user
// who is not a member is not found. Making or changing an owner takes an owner.
func (a *API) setMember(c *fiber.Ctx) error {
	org, _ := idParam(c, "org")
	user, err := idParam(c, "user")
	if err != nil {
		return a.fail(c, err)
	}
	var req memberRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	if _, ok := a.s.membership(org, user); !ok {
		return a.fail(c, notFound("member", user))
	}
	if err := a.ownerChange(c, org, user, req.Role); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	m, err := a.s.AddMember(ctx, org, user, req.Role)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(m)
}

func (a *API) removeMember(c *fiber.Ctx) error {
	org, _ := idParam(c, "org")
	user, err := idParam(c, "user")
	if err != nil {
		return a.fail(c, err)
	}
	if _, ok := a.s.membership(org, user); !ok {
		return a.fail(c, notFound("member", user))
	}
	if err := a.ownerChange(c, org, user, ""); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.RemoveMember(ctx, org, user); err != nil {
		return a.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// ownerChange requires the owner role when the change touches an owner.
func (a *API) ownerChange(c *fiber.Ctx, org, user uuid.UUID, newRole Role) error {
	current, _ := a.s.membership(org, user)
	if newRole == RoleOwner || current.Role == RoleOwner {
		return a.s.Authorize(Caller(c), org, RoleOwner)
	}
	return nil
}

func (a *API) listInvites(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	return c.JSON(nonNil(a.s.Invites(id)))
}

type inviteRequest struct {
	Email string `json:"email"`
	Role  Role   `json:"role"`
}

func (a *API) createInvite(c *fiber.Ctx) error {
	org, _ := idParam(c, "org")
	var req inviteRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	if req.Role == RoleOwner {
		if err := a.s.Authorize(Caller(c), org, RoleOwner); err != nil {
			return a.fail(c, err)
		}
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	inv, token, err := a.s.CreateInvite(ctx, org, req.Email, req.Role, actor(Caller(c)))
	if err != nil {
		return a.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"invite": inv, "token": token})
}

func (a *API) revokeInvite(c *fiber.Ctx) error {
	org, _ := idParam(c, "org")
	id, err := idParam(c, "id")
	if err != nil {
		return a.fail(c, err)
	}
	found := false
	for _, inv := range a.s.Invites(org) {
		found = found || inv.ID == id
	}
	if !found {
		return a.fail(c, notFound("invite", id))
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.RevokeInvite(ctx, id); err != nil {
		return a.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// --- API keys

func (a *API) listKeys(c *fiber.Ctx) error {
	id, _ := idParam(c, "org")
	return c.JSON(nonNil(a.s.APIKeys(id)))
}

type keyRequest struct {
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
}

func (a *API) createKey(c *fiber.Ctx) error {
	org, _ := idParam(c, "org")
	var req keyRequest
	if err := body(c, &req); err != nil {
		return a.fail(c, err)
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	key, secret, err := a.s.CreateAPIKey(ctx, org, req.Name, req.Scopes, actor(Caller(c)))
	if err != nil {
		return a.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"api_key": key, "secret": secret})
}

func (a *API) revokeKey(c *fiber.Ctx) error {
	org, _ := idParam(c, "org")
	id, err := idParam(c, "id")
	if err != nil {
		return a.fail(c, err)
	}
	key, err := a.s.APIKey(id)
	if err != nil || key.OrgID != org {
		return a.fail(c, notFound("api key", id))
	}
	ctx, cancel := opCtx(c)
	defer cancel()
	if err := a.s.RevokeAPIKey(ctx, id); err != nil {
		return a.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
