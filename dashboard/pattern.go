package dashboard

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// checkPattern says why ClickHouse would refuse p as the pattern of match().
// ClickHouse compiles patterns with RE2. Go's regexp follows RE2's syntax but
// also accepts the named group (?<name>…) (since Go 1.22), which the RE2 of
// ClickHouse 18.16 refuses, and Unicode class names that RE2 does not know
// (see re2Class); Go refuses some things RE2 accepts (\C, scripts with _ in
// their names), which is the safe side. TestPatternsAgreeWithClickHouse holds this to the server. What RE2 refuses beyond the syntax (a pattern whose program
// is too large: \pL{1000}) ClickHouse reports with codeCannotCompileRegexp,
// which queryError turns into ErrPattern.
func checkPattern(p string) error {
	if _, err := regexp.Compile(p); err != nil {
		return fmt.Errorf("pattern %q is not a regular expression (RE2 syntax): %v", p, err)
	}
	group, classes := scanPattern(p)
	for _, c := range classes {
		if !re2Class(c) {
			return fmt.Errorf("pattern %q is not RE2: RE2 has no Unicode class %q (names are exact: a general category such as L or Lu, a script such as Greek, or Any)", p, c)
		}
	}
	if i := group; i >= 0 {
		name, _, _ := strings.Cut(p[i+len("(?<"):], ">")
		return fmt.Errorf("pattern %q is not RE2: write the named group (?<%s>…) as (?P<%s>…)", p, name, name)
	}
	return nil
}

// re2Class reports whether RE2 knows the Unicode class \p{name}. Go's
// regexp also takes names in any case, with or without spaces and
// underscores, and aliases (\p{greek}, \p{Letter}, \p{Assigned}, \p{ASCII});
// RE2 takes Any and the exact names of the general categories and scripts,
// but not Cn or LC.
func re2Class(name string) bool {
	switch name {
	case "Any":
		return true
	case "Cn", "LC":
		return false
	}
	return unicode.Categories[name] != nil || unicode.Scripts[name] != nil
}

// scanPattern reads p, a pattern Go's regexp accepts. group is the offset of
// the first named group written (?<name>…), or -1; classes are the names of
// the Unicode classes p uses (\pL, \p{Greek}, \P{^Lu}). It skips escapes,
// \Q…\E literals and character classes, where "(?<" is plain text.
func scanPattern(p string) (group int, classes []string) {
	group, inClass := -1, false
	for i := 0; i < len(p); {
		switch {
		case strings.HasPrefix(p[i:], `\Q`) && !inClass:
			end := strings.Index(p[i+2:], `\E`)
			if end < 0 {
				return -1, classes
			}
			i += 2 + end + 2
		case p[i] == '\\' && i+2 < len(p) && (p[i+1] == 'p' || p[i+1] == 'P'):
			name := p[i+2 : i+3]
			i += 3
			if name == "{" { // Go accepted p: the brace is closed
				end := strings.IndexByte(p[i:], '}')
				name, i = p[i:i+end], i+end+1
			}
			classes = append(classes, strings.TrimPrefix(name, "^"))
		case p[i] == '\\':
			i += 2
		case inClass && strings.HasPrefix(p[i:], "[:"):
			if end := strings.Index(p[i+2:], ":]"); end >= 0 {
				i += 2 + end + 2
			} else {
				i++
			}
		case inClass:
			inClass = p[i] != ']'
			i++
		case p[i] == '[':
			inClass = true
			i++
			if i < len(p) && p[i] == '^' {
				i++
			}
			if i < len(p) && p[i] == ']' { // a leading ] is a literal
				i++
			}
		case strings.HasPrefix(p[i:], "(?<") && group < 0:
			group = i
			i += 3
		default:
			i++
		}
	}
	return group, classes
}

// codeCannotCompileRegexp is ClickHouse's CANNOT_COMPILE_REGEXP.
const codeCannotCompileRegexp = 427

// ErrPattern is a filter pattern that ClickHouse's RE2 refused although
// checkPattern let it through (a program too large for RE2's memory bound).
var ErrPattern = errors.New("a pattern was refused by ClickHouse's RE2")

// patternError is ErrPattern with ClickHouse's reason.
func patternError(err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return fmt.Errorf("%w: %s", ErrPattern, ex.Message)
	}
	return fmt.Errorf("%w: %v", ErrPattern, err)
}
