package auth

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

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
	sources, err := a.s.UsageSources(ctx, id, time.Now())
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(fiber.Map{"org_id": id, "quota": a.s.QuotaOf(id), "days": nonNil(days), "sources": sources})
}
