package auth

import "github.com/gofiber/fiber/v2"

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
