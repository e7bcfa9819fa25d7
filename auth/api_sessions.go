package auth

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

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

// logout ends the session the request carries (cookie or bearer) on every
// node and clears the cookie; with ?everywhere=true it also ends every
// session of the user on every device.
func (a *API) logout(c *fiber.Ctx) error {
	p := Caller(c)
	if p != nil && p.User != nil {
		ctx, cancel := opCtx(c)
		defer cancel()
		if err := a.s.Logout(ctx, a.sessionToken(c)); err != nil {
			return a.fail(c, err)
		}
		if c.QueryBool("everywhere") {
			if err := a.s.RevokeSessions(ctx, p.User.ID); err != nil {
				return a.fail(c, err)
			}
		}
	}
	a.s.ClearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

// sessionToken is the session token a request was authenticated with: the
// bearer when there is one (Middleware prefers it), else the cookie.
func (a *API) sessionToken(c *fiber.Ctx) string {
	if tok, ok := bearerToken(c.Get(fiber.HeaderAuthorization)); ok {
		return tok
	}
	return c.Cookies(a.s.cfg.SessionCookie)
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
