package web

import (
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// person is a member of an org with the name and email the members list of the auth API
// leaves out.
type person struct {
	auth.Member
	Email string `json:"email"`
	Name  string `json:"name"`
}

// RegisterPeople adds GET /api/v1/orgs/{org}/people to r: the org's members with their
// names and emails, for the organization settings page. Admins only, like invites and keys.
// It is read-only and relies on the auth API's middleware (registered before it on the
// /api/v1 prefix) to authenticate the caller.
func RegisterPeople(r fiber.Router, s *auth.Store) {
	r.Get("/api/v1/orgs/:org/people", s.RequireRole("org", auth.RoleAdmin), func(c *fiber.Ctx) error {
		org, _ := uuid.Parse(c.Params("org")) // RequireRole has checked it
		members := s.Members(org)
		out := make([]person, 0, len(members))
		for _, m := range members {
			p := person{Member: m}
			if u, err := s.User(m.UserID); err == nil {
				p.Email, p.Name = u.Email, u.Name
			}
			out = append(out, p)
		}
		return c.JSON(out)
	})
}
