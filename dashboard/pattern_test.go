package dashboard

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// chAccepts asks ClickHouse whether match() takes p as a pattern.
func chAccepts(t *testing.T, db *chdb.DB, p string) (bool, string) {
	t.Helper()
	var m uint8
	err := db.QueryRow(context.Background(), "SELECT match('', @p)", clickhouse.Named("p", p)).Scan(&m)
	switch {
	case err == nil:
		return true, ""
	case chdb.IsCode(err, codeCannotCompileRegexp):
		return false, err.Error()
	}
	t.Fatalf("match('', %q): %v", p, err)
	return false, ""
}

// TestPatternsAgreeWithClickHouse holds checkPattern to what the real
// ClickHouse accepts: every pattern it lets through compiles there, unless
// RE2 refuses it for its size (which the API reports as ErrPattern, see
// TestQueryRefusesPatternsClickHouseRefuses), and it refuses only the
// listed patterns that ClickHouse would take.
func TestPatternsAgreeWithClickHouse(t *testing.T) {
	db := chtest.Open(t)
	corpus := []string{
		`^/blog/`, `(?i)signup`, `(?P<x>a)`, `(?<x>a)`, `(?i)(?<x>a)`, `a(?<long_name>b)c`,
		`[(?<x>a)]`, `\(?<x>a\)`, `\Q(?<x>\E`, `[[:alpha:](?<]`, `[]](?<x>a)`, `[^]](?<x>a)`,
		`\C`, `(?U)a+`, `(?=a)`, `(?!a)`, `(?<=a)`, `(?<!a)`, `(a)\1`, `(?#c)`, `\Z`, `\z`, `\e`,
		`\pL`, `\PL`, `\p{^Greek}`, `[[:word:]]`, `[[:foo:]]`, `\Q.\E`, `a{1000}`, `a{1001}`,
		`(a{500}){2}`, `(a{500}){3}`, `x{2}{3}`, `a**`, `\x{D800}`, `\x{10FFFF}`, `\0`, `\8`,
		`\v`, `(?P<1x>a)`, `(?P<é>a)`, `(?P=x)`, `\X`, `\R`, `(?s).`, `(?m)^a$`, `\b`,
		`\pL{1000}`, `.{1000}`, `((`, `)`, `\p{Cn}`, `[\P{^LC}]`, `\p{greek}`, `\p{Letter}`, `\p{lu}`, `\p{Assigned}`, `\p{ASCII}`, `\p{ Greek }`, `\PN`, `\pC\pL\p{Greek}\p{LC}`,
	}
	// Every Unicode class Go knows: its tables may be newer than RE2's.
	for _, tables := range []map[string]*unicode.RangeTable{unicode.Scripts, unicode.Categories} {
		names := make([]string, 0, len(tables))
		for n := range tables {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			corpus = append(corpus, `\p{`+n+`}`)
		}
	}
	// Patterns RE2 accepts and checkPattern refuses: Go's parser is
	// stricter here, and a user can write each another way.
	stricter := []string{`\C`, `(?P<é>a)`}
	var refusedByBoth, tooLarge, stricterScripts int
	for _, p := range corpus {
		ours := checkPattern(p)
		ok, why := chAccepts(t, db, p)
		switch {
		case ours == nil && !ok && strings.Contains(why, "pattern too large"):
			tooLarge++
		case ours == nil && !ok:
			t.Errorf("checkPattern accepts %q, ClickHouse refuses it: %s", p, why)
		case ours != nil && ok && strings.HasPrefix(p, `\p{`) && strings.Contains(ours.Error(), "invalid character class range"):
			// Go's parser (1.26) folds names before looking them up and so
			// misses \p{Old_Italic}, \p{SignWriting} and the like.
			stricterScripts++
		case ours != nil && ok && !slices.Contains(stricter, p):
			t.Errorf("checkPattern refuses %q (%v), ClickHouse accepts it", p, ours)
		case ours != nil && !ok:
			refusedByBoth++
		}
	}
	for _, p := range stricter {
		if ok, _ := chAccepts(t, db, p); !ok || checkPattern(p) == nil {
			t.Errorf("%q: listed as accepted by ClickHouse and refused by checkPattern; ClickHouse accepts: %v, checkPattern: %v", p, ok, checkPattern(p))
		}
	}
	if refusedByBoth < 20 || tooLarge != 1 {
		t.Errorf("%d patterns refused by both, %d too large for RE2: the corpus no longer tests what it should", refusedByBoth, tooLarge)
	}
	t.Logf("%d scripts Go's parser refuses and RE2 accepts", stricterScripts)
	if err := checkPattern(`(?<x>a)`); err == nil || !strings.Contains(err.Error(), "(?P<x>…)") {
		t.Errorf("checkPattern((?<x>a)) = %v, want the (?P<x>…) spelling", err)
	}
}

// TestQueryRefusesPatternsClickHouseRefuses: a pattern Go's regexp takes and
// ClickHouse's RE2 refuses is a 400 that says what is wrong, not a 500.
func TestQueryRefusesPatternsClickHouseRefuses(t *testing.T) {
	f := newQueryFixture(t)
	site := f.a.Site.ID.String()
	for _, tt := range []struct {
		name, field, want string
		filter            any
	}{
		{"a named group in Go 1.22's syntax", "filters[0][2][0]", "(?P<x>…)", []any{"matches", "event:page", []string{"^/(?<x>pri)"}}},
		{"one nested", "filters[0][1][0][2][1]", "(?P<y>…)", []any{"or", []any{[]any{"matches_not", "visit:entry_page", []string{"^/", "(?i)(?<y>a)"}}}}},
		{"a class name RE2 does not know", "filters[0][2][0]", `"greek"`, []any{"matches", "event:page", []string{`\p{greek}`}}},
		{"a program too large for RE2", "", "pattern too large", []any{"matches", "event:page", []string{`\pL{1000}`}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"site_id": site, "metrics": []string{"pageviews"}, "date_range": days2526, "filters": []any{tt.filter}}
			status, got := f.post(t, "/api/v1/query", f.keyA, body)
			msg, _ := got["error"].(string)
			field, _ := got["field"].(string)
			if status != 400 || field != tt.field || !strings.Contains(msg, tt.want) {
				t.Fatalf("status %d %v, want 400 naming field %q and saying %q", status, got, tt.field, tt.want)
			}
		})
	}
	// The RE2 spelling of the same named group works and counts what the
	// pattern counts without it.
	named := f.query(t, map[string]any{"metrics": []string{"pageviews"}, "date_range": days2526, "filters": []any{[]any{"matches", "event:page", []string{"^/(?P<x>pri)cing$"}}}})
	plain := f.query(t, map[string]any{"metrics": []string{"pageviews"}, "date_range": days2526, "filters": []any{[]any{"is", "event:page", []string{"/pricing"}}}})
	if got, want := rowsOf(named), rowsOf(plain); !reflect.DeepEqual(got, want) || want[0].Metrics[0] == 0 {
		t.Fatalf("(?P<x>pri) counts %v, the page /pricing %v", got, want)
	}
}
