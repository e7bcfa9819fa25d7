package auth

import (
	"context"
	"testing"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// Token times are whole seconds, so a session issued in the same second as a
// revocation is the case to get right: it must end, and a session issued
// right after the revocation must work.
func TestRevocationEndsSessionsOfTheSameSecond(t *testing.T) {
	s := openStore(t, chtest.Open(t), testConfig(t))
	f := newFixture(t, s, "rev")
	ctx := context.Background()
	for i := range 5 {
		before, err := s.IssueSession(f.owner)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSessions(ctx, f.owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifySession(before.Token); err == nil {
			t.Fatalf("round %d: a session issued just before the revocation still verifies", i)
		}
		after, err := s.IssueSession(f.owner)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifySession(after.Token); err != nil {
			t.Fatalf("round %d: a session issued just after the revocation is refused: %v", i, err)
		}
	}
}
