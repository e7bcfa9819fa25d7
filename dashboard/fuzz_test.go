package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
)

// FuzzQuerySpec feeds request bodies through the query parser and, when one
// is accepted, through the SQL builder: nothing may panic, and no text of the
// request may reach the SQL except through a bound parameter, which shows as
// SQL without any quote but the builder's own literals.
func FuzzQuerySpec(f *testing.F) {
	for _, seed := range []string{
		`{"site_id":"x","metrics":["visitors","bounce_rate"],"date_range":"30d","dimensions":["visit:source"]}`,
		`{"metrics":["pageviews","sum:revenue"],"date_range":["2026-10-25","2026-10-26"],"dimensions":["event:props:plan","time:hour"],"filters":[["is","event:name",["Signup"]]]}`,
		`{"metrics":["visits"],"date_range":"7d","filters":[["or",[["contains","visit:entry_page",["blog"],{"case_sensitive":false}],["not",["matches","event:page",["^/a"]]]]]],"order_by":[["visits","asc"]]}`,
		`{"metrics":["conversion_rate"],"date_range":"month","dimensions":["event:name","visit:country"],"include":{"comparison":"year_over_year","totals":true,"time_labels":false}}`,
		`{"metrics":["visitors"],"date_range":"all","dimensions":["time:day"],"include":{"time_labels":true}}`,
		`{"metrics":["time_on_page","scroll_depth","pageviews"],"date_range":"30d","dimensions":["event:page","visit:source"],"filters":[["is_not","event:name",["Signup"]],["contains","event:page",["/a"]]]}`,
		`{"metrics":["events"],"date_range":"today","filters":[["is","event:props:x') OR 1=1 --",["' OR '1"]]]}`,
	} {
		f.Add([]byte(seed))
	}
	site := auth.Site{ID: uuid.New(), OrgID: uuid.New(), TimeZone: "Europe/Berlin"}
	now := time.Date(2026, 10, 27, 12, 0, 0, 0, time.UTC)
	first := func(scope) (time.Time, error) { return now.AddDate(0, -2, 0), nil }
	f.Fuzz(func(t *testing.T, body []byte) {
		var req Request
		if err := decodeStrict(body, &req); err != nil {
			return
		}
		q, err := parseQuery(req, site, now, first)
		if err != nil {
			return
		}
		q.watermark = now.AddDate(0, 0, -2)
		parts, _ := q.plan(q.r, q.dims)
		for _, p := range parts {
			b := q.builder(false)
			sql := b.build(p)
			for _, lit := range []string{engagementSQL, "'page'", "'(none)'"} {
				sql = strings.ReplaceAll(sql, lit, "")
			}
			if strings.ContainsAny(sql, `'"`+"`") {
				t.Fatalf("a quote outside a bound value in %s", sql)
			}
		}
	})
}
