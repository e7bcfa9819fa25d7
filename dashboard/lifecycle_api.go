package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// Register mounts the data-lifecycle endpoints on r (the app root):
//
//	POST   /api/v1/sites/:site/erase      {"user_id": "…"} or {"visitor_id": "…"}
//	DELETE /api/v1/sites/:site/data
//	GET    /api/v1/sites/:site/deletions
//
// All of them need the admin role in the site's org; another tenant's site
// is not found. Mount them after auth.API.Register: its /api/v1 middleware
// authenticates the caller (without it every request is answered 401).
// POST and DELETE wait up to ?wait= (default DefaultDeletionWait, at most
// MaxDeletionWait) for ClickHouse to finish and answer 200 with
// "status": "done", or 202 with "status": "pending"; GET …/deletions shows
// how far pending ones are.
func (l *Lifecycle) Register(r fiber.Router) {
	r.Post("/api/v1/sites/:site/erase", l.eraseHandler)
	r.Delete("/api/v1/sites/:site/data", l.deleteDataHandler)
	r.Get("/api/v1/sites/:site/deletions", l.deletionsHandler)
}

// eraseRequest names the person to erase. VisitorID is a decimal string or
// a JSON number (ids above 2^53 lose precision in JavaScript numbers; send
// them as strings).
type eraseRequest struct {
	UserID    *string         `json:"user_id"`
	VisitorID json.RawMessage `json:"visitor_id"`
}

// subject validates the request.
func (r eraseRequest) subject() (Subject, error) {
	hasVisitor := len(r.VisitorID) > 0 && !bytes.Equal(r.VisitorID, []byte("null"))
	switch {
	case r.UserID != nil && hasVisitor:
		return Subject{}, errors.New("give user_id or visitor_id, not both")
	case r.UserID != nil:
		if *r.UserID == "" || len(*r.UserID) > maxUserIDLength {
			return Subject{}, fmt.Errorf("user_id must be the non-empty id your site passed to identify (at most %d bytes)", maxUserIDLength)
		}
		return Subject{UserID: *r.UserID}, nil
	case hasVisitor:
		raw := bytes.Trim(r.VisitorID, `"`)
		id, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil || id == 0 {
			return Subject{}, fmt.Errorf("visitor_id must be a positive whole number (as a string or a number), got %s", r.VisitorID)
		}
		return Subject{VisitorID: id}, nil
	}
	return Subject{}, errors.New(`name the person to erase: {"user_id": "…"} or {"visitor_id": "…"}`)
}

func (l *Lifecycle) eraseHandler(c *fiber.Ctx) error {
	site, err := l.adminSite(c)
	if err != nil {
		return l.fail(c, err)
	}
	var req eraseRequest
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return l.fail(c, invalidDeletion("request body must be a JSON object: %v", err))
	}
	who, err := req.subject()
	if err != nil {
		return l.fail(c, invalidDeletion("%v", err))
	}
	wait, err := deletionWait(c)
	if err != nil {
		return l.fail(c, err)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), deletionTimeout)
	defer cancel()
	d, err := l.Erase(ctx, site, who)
	if err != nil {
		return l.fail(c, err)
	}
	return l.answer(c, site, d, wait)
}

func (l *Lifecycle) deleteDataHandler(c *fiber.Ctx) error {
	site, err := l.adminSite(c)
	if err != nil {
		return l.fail(c, err)
	}
	wait, err := deletionWait(c)
	if err != nil {
		return l.fail(c, err)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), deletionTimeout)
	defer cancel()
	d, err := l.DeleteSiteData(ctx, site)
	if err != nil {
		return l.fail(c, err)
	}
	return l.answer(c, site, d, wait)
}

func (l *Lifecycle) deletionsHandler(c *fiber.Ctx) error {
	site, err := l.adminSite(c)
	if err != nil {
		return l.fail(c, err)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), deletionTimeout)
	defer cancel()
	all, err := l.SiteMutations(ctx, site)
	if err != nil {
		return l.fail(c, err)
	}
	pending := []Mutation{}
	for _, m := range all {
		if !m.Done {
			pending = append(pending, m)
		}
	}
	return c.JSON(fiber.Map{"pending": pending})
}

// answer waits for d and answers 200 when it is done, 202 otherwise.
func (l *Lifecycle) answer(c *fiber.Ctx, site auth.Site, d Deletion, wait time.Duration) error {
	d, err := l.Wait(c.UserContext(), site, d, wait)
	if err != nil {
		return l.fail(c, err)
	}
	if d.Mutations == nil {
		d.Mutations = []Mutation{}
	}
	status, word := fiber.StatusOK, "done"
	if !d.Done() {
		status, word = fiber.StatusAccepted, "pending"
	}
	return c.Status(status).JSON(struct {
		Status string `json:"status"`
		Deletion
	}{word, d})
}

// adminSite resolves :site for a caller with the admin role in its org:
// 401 without a caller, 404 for a site the caller cannot see, 403 below admin.
func (l *Lifecycle) adminSite(c *fiber.Ctx) (auth.Site, error) {
	p := auth.Caller(c)
	if p == nil {
		return auth.Site{}, fmt.Errorf("authentication required: %w", auth.ErrUnauthorized)
	}
	id, err := uuid.Parse(c.Params("site"))
	if err != nil {
		return auth.Site{}, fmt.Errorf("site %q: %w", c.Params("site"), auth.ErrNotFound)
	}
	site, err := l.sites.VisibleSite(p, id)
	if err != nil {
		return auth.Site{}, err
	}
	if err := l.sites.Authorize(p, site.OrgID, auth.RoleAdmin); err != nil {
		return auth.Site{}, err
	}
	return site, nil
}

// deletionWait reads ?wait=, a Go duration from 0 to MaxDeletionWait.
func deletionWait(c *fiber.Ctx) (time.Duration, error) {
	v := c.Query("wait")
	if v == "" {
		return DefaultDeletionWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxDeletionWait {
		return 0, invalidDeletion("wait must be a duration from 0s to %s, such as 5s", MaxDeletionWait)
	}
	return d, nil
}

func invalidDeletion(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{auth.ErrInvalid}, args...)...)
}

// fail answers err as {"error": …} with the status its kind calls for;
// unexpected errors are logged and shown as "internal error".
func (l *Lifecycle) fail(c *fiber.Ctx, err error) error {
	status := fiber.StatusInternalServerError
	switch {
	case errors.Is(err, auth.ErrInvalid):
		status = fiber.StatusBadRequest
	case errors.Is(err, auth.ErrUnauthorized):
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="pulse"`)
		status = fiber.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		status = fiber.StatusForbidden
	case errors.Is(err, auth.ErrNotFound):
		status = fiber.StatusNotFound
	}
	msg := err.Error()
	if status == fiber.StatusInternalServerError {
		l.log.Error("lifecycle: request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
		msg = "internal error"
	}
	return c.Status(status).JSON(fiber.Map{"error": msg})
}
