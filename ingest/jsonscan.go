package ingest

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The decoders of client frames and events read JSON with scanner instead of
// encoding/json: one pass over the text, no reflection, and strings that are
// substrings of the frame's text (unless they hold escapes), so an event costs
// no allocation of its own. They accept and reject exactly what encoding/json
// does and decode the same values (FuzzScannerMatchesEncodingJSON and
// FuzzParseEventMatchesEncodingJSON compare them): the same syntax, nesting
// depth, string unquoting (escapes, surrogate pairs, invalid UTF-8 replaced by
// U+FFFD), case-insensitive field names, and the last of duplicate fields.

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

// Kinds of JSON values, by their first byte.
const (
	kindObject = '{'
	kindArray  = '['
	kindString = '"'
	kindNumber = '0'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindNull   = 'n'
)

// scanner reads one JSON text. ok turns false at the first syntax error and
// stays false; the reading methods then return zero values.
type scanner struct {
	s  string
	i  int
	ok bool
}

func newScanner(s string) scanner { return scanner{s: s, ok: true} }

func (sc *scanner) fail() { sc.ok = false; sc.i = len(sc.s) }

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, 0 at the end.
func (sc *scanner) peek() byte {
	sc.ws()
	if sc.i >= len(sc.s) {
		return 0
	}
	return sc.s[sc.i]
}

// end reports whether only whitespace follows; a text with more is a syntax error.
func (sc *scanner) end() bool {
	if sc.peek() != 0 {
		sc.fail()
	}
	return sc.ok
}

// kindOf classifies the value starting with c; 0 is not a value.
func kindOf(c byte) byte {
	switch {
	case c == '{' || c == '[' || c == '"' || c == 't' || c == 'f' || c == 'n':
		return c
	case c == '-' || c >= '0' && c <= '9':
		return kindNumber
	}
	return 0
}

// str reads a string at sc.i (its opening quote). It returns the text
// between the quotes and whether it must go through unquote (escapes or
// invalid UTF-8) to be the string's value.
func (sc *scanner) str() (raw string, escaped bool) {
	s := sc.s
	i := sc.i + 1
	start := i
	nonASCII := false
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			raw = s[start:i]
			sc.i = i + 1
			if nonASCII && !escaped && !utf8.ValidString(raw) {
				escaped = true
			}
			return raw, escaped
		case c == '\\':
			escaped = true
			if i+1 >= len(s) {
				sc.fail()
				return "", false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || hex4(s[i+2:i+6]) < 0 {
					sc.fail()
					return "", false
				}
				i += 6
			default:
				sc.fail()
				return "", false
			}
		case c < 0x20:
			sc.fail()
			return "", false
		default:
			if c >= utf8.RuneSelf {
				nonASCII = true
			}
			i++
		}
	}
	sc.fail()
	return "", false
}

// stringValue reads a string at sc.i and returns its value.
func (sc *scanner) stringValue() string {
	raw, escaped := sc.str()
	if escaped {
		return unquote(raw)
	}
	return raw
}

// number reads a number at sc.i and returns its text.
func (sc *scanner) number() string {
	s, i := sc.s, sc.i
	start := i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		sc.fail()
		return ""
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			sc.fail()
			return ""
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			sc.fail()
			return ""
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	sc.i = i
	return s[start:i]
}

// literal reads true, false or null at sc.i.
func (sc *scanner) literal(word string) {
	if strings.HasPrefix(sc.s[sc.i:], word) {
		sc.i += len(word)
		return
	}
	sc.fail()
}

// value reads any value after whitespace, at nesting depth depth (the number
// of arrays and objects around it), and returns its kind and its text.
// Nested values are read without recursion.
func (sc *scanner) value(depth int) (kind byte, text string) {
	c := sc.peek()
	kind = kindOf(c)
	start := sc.i
	switch kind {
	case kindString:
		sc.str()
	case kindNumber:
		sc.number()
	case kindTrue:
		sc.literal("true")
	case kindFalse:
		sc.literal("false")
	case kindNull:
		sc.literal("null")
	case kindObject, kindArray:
		sc.container(depth)
	default:
		sc.fail()
	}
	if !sc.ok {
		return 0, ""
	}
	return kind, sc.s[start:sc.i]
}

// next reads any value like value and, for a string, also returns its
// value (unquoted) in str, reading it once.
func (sc *scanner) next(depth int) (kind byte, text, str string) {
	if sc.peek() != '"' {
		kind, text = sc.value(depth)
		return kind, text, ""
	}
	start := sc.i
	raw, escaped := sc.str()
	if !sc.ok {
		return 0, "", ""
	}
	str = raw
	if escaped {
		str = unquote(raw)
	}
	return kindString, sc.s[start:sc.i], str
}

// container reads an array or object at sc.i whose own depth is depth+1.
func (sc *scanner) container(depth int) {
	// open holds the kinds of the containers not yet closed, innermost last.
	var small [64]byte
	open := small[:0]
	for sc.ok {
		// A value starts here (or, right after an opening bracket, maybe its end).
		c := sc.peek()
		switch c {
		case '{', '[':
			if depth+len(open)+1 > maxNestingDepth {
				sc.fail()
				return
			}
			open = append(open, c)
			sc.i++
			next := sc.peek()
			if c == '{' && next == '}' || c == '[' && next == ']' {
				sc.i++
				open = open[:len(open)-1]
				break
			}
			if c == '{' {
				sc.key()
			}
			continue
		case '"':
			sc.str()
		case 't':
			sc.literal("true")
		case 'f':
			sc.literal("false")
		case 'n':
			sc.literal("null")
		default:
			if kindOf(c) != kindNumber {
				sc.fail()
				return
			}
			sc.number()
		}
		// After a value: a comma, or the end of the innermost container.
		for sc.ok && len(open) > 0 {
			c := sc.peek()
			top := open[len(open)-1]
			if c == ',' {
				sc.i++
				if top == '{' {
					sc.key()
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				sc.i++
				open = open[:len(open)-1]
				continue
			}
			sc.fail()
		}
		if len(open) == 0 {
			return
		}
	}
}

// key reads an object key and its colon; it returns the key's raw text.
func (sc *scanner) key() (raw string, escaped bool) {
	if sc.peek() != '"' {
		sc.fail()
		return "", false
	}
	raw, escaped = sc.str()
	if sc.peek() != ':' {
		sc.fail()
		return "", false
	}
	sc.i++
	return raw, escaped
}

// members iterates the members of the object at sc.i (after whitespace):
//
//	for more := sc.beginObject(); more; more = sc.nextMember() { k := sc.memberKey(); … read the value … }
func (sc *scanner) beginObject() bool {
	if sc.peek() != '{' {
		sc.fail()
		return false
	}
	sc.i++
	if sc.peek() == '}' {
		sc.i++
		return false
	}
	return sc.ok
}

// memberKey reads the next member's key (unquoted) and its colon.
func (sc *scanner) memberKey() string {
	raw, escaped := sc.key()
	if escaped {
		return unquote(raw)
	}
	return raw
}

// nextMember reads the comma before another member (true) or the closing brace.
func (sc *scanner) nextMember() bool {
	switch sc.peek() {
	case ',':
		sc.i++
		return true
	case '}':
		sc.i++
		return false
	}
	sc.fail()
	return false
}

// beginArray and nextElement iterate an array like beginObject and nextMember.
func (sc *scanner) beginArray() bool {
	if sc.peek() != '[' {
		sc.fail()
		return false
	}
	sc.i++
	if sc.peek() == ']' {
		sc.i++
		return false
	}
	return sc.ok
}

func (sc *scanner) nextElement() bool {
	switch sc.peek() {
	case ',':
		sc.i++
		return true
	case ']':
		sc.i++
		return false
	}
	sc.fail()
	return false
}

// hex4 parses four hex digits; -1 if they are not.
func hex4(s string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote returns the value of a string's raw text (without its quotes, known
// to be valid), as encoding/json decodes it: escapes resolved, a surrogate
// pair joined, a lone surrogate and every byte of invalid UTF-8 replaced by
// U+FFFD.
func unquote(raw string) string {
	var b strings.Builder
	b.Grow(len(raw) + 8)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r := hex4(raw[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := hex4(raw[i+2 : i+6]); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b.WriteRune(dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b.WriteRune(r)
				continue
			default: // '"', '\\', '/'
				b.WriteByte(raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(raw[i:])
			b.WriteRune(r)
			i += n
		}
	}
	return b.String()
}

// fieldIs reports whether an object key names a struct field the way
// encoding/json matches them: exactly, or else equal under Unicode case folding.
func fieldIs(key, name string) bool {
	return key == name || len(key) >= len(name) && strings.EqualFold(key, name)
}
