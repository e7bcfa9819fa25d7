package auth

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

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
