package dashboard

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestComparisonRanges covers the rule's calendar cases without ClickHouse.
func TestComparisonRanges(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name, now, preset, mode string
		want                    [2]string
		until                   bool
	}{
		{"a month after a shorter one: all of February", "2026-03-31 14:00", "month", comparePrevious,
			[2]string{"2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00"}, true},
		{"day 28 of a month after February: until the same day and time", "2026-03-28 14:00", "month", comparePrevious,
			[2]string{"2026-02-01T00:00:00+01:00", "2026-02-28T14:00:00+01:00"}, true},
		{"a complete month: the whole month before, not 31 days", "2025-12-07 14:00", "last_month", comparePrevious,
			[2]string{"2025-10-01T00:00:00+02:00", "2025-11-01T00:00:00+01:00"}, false},
		{"7 days to 14:00: the 7 days before, to 14:00 on the last", "2025-12-07 14:00", "7d", comparePrevious,
			[2]string{"2025-11-24T00:00:00+01:00", "2025-11-30T14:00:00+01:00"}, true},
		{"this year so far against the same part of last year", "2025-12-07 14:00", "year", comparePrevious,
			[2]string{"2024-01-01T00:00:00+01:00", "2024-12-07T14:00:00+01:00"}, true},
		{"this month year over year", "2025-12-07 14:00", "month", compareYear,
			[2]string{"2024-12-01T00:00:00+01:00", "2024-12-07T14:00:00+01:00"}, true},
		{"29 February year over year: all of February", "2028-02-29 14:00", "month", compareYear,
			[2]string{"2027-02-01T00:00:00+01:00", "2027-03-01T00:00:00+01:00"}, true},
		{"the last 12 months so far", "2025-06-15 14:00", "12mo", comparePrevious,
			[2]string{"2023-07-01T00:00:00+02:00", "2024-06-15T14:00:00+02:00"}, true},
		{"the last 30 days to 14:00 year over year", "2025-12-06 14:00", "30d", compareYear,
			[2]string{"2024-11-07T00:00:00+01:00", "2024-12-06T14:00:00+01:00"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, err := time.ParseInLocation("2006-01-02 15:04", tt.now, berlin)
			if err != nil {
				t.Fatal(err)
			}
			r, err := parseDateRange(json.RawMessage(fmt.Sprintf("%q", tt.preset)), berlin, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := newComparison(r, tt.mode, now)
			if got := rangeLabels(c.r); got != tt.want {
				t.Errorf("comparison of %s at %s = %v, want %v", tt.preset, tt.now, got, tt.want)
			}
			if got := !c.until.IsZero(); got != tt.until {
				t.Errorf("incomplete = %v, want %v", got, tt.until)
			}
		})
	}
}
