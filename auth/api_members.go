package auth

import (
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

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
