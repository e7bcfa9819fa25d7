package auth

import (
	"net/mail"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // site time zones must validate on hosts without zoneinfo
)

// NormalizeEmail trims and lower-cases an email address and checks that it is
// a bare address (no display name).
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if e == "" || len(e) > maxEmailLength {
		return "", invalid("email must have 1 to %d characters", maxEmailLength)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") && !strings.HasSuffix(e, "@localhost") {
		return "", invalid("%q is not an email address", truncate(s, 64))
	}
	return e, nil
}

// NormalizeDomain lower-cases a domain name, drops a trailing dot and checks
// that it is a valid ASCII host name (use the punycode form of
// internationalized names).
func NormalizeDomain(s string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if d == "" || len(d) > maxDomainLength {
		return "", invalid("domain must have 1 to %d characters", maxDomainLength)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", invalid("%q is not a domain name", truncate(s, 64))
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", invalid("%q is not a domain name (use the punycode form, xn--…)", truncate(s, 64))
			}
		}
	}
	return d, nil
}

// ParseOrigin normalizes a web origin to scheme://host[:port]: http or https,
// lower-case host, default port dropped, no path, query, fragment or user.
// "null" and wildcards are refused.
func ParseOrigin(s string) (string, error) {
	if s == "" || len(s) > maxOriginLength || strings.ContainsAny(s, "*\\ \t\r\n") {
		return "", invalid("%q is not an origin (scheme://host[:port], no wildcards)", truncate(s, 64))
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(s, "?") {
		return "", invalid("%q is not an origin (scheme://host[:port], no wildcards)", truncate(s, 64))
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if host == "" {
		return "", invalid("%q has no host", truncate(s, 64))
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return u.Scheme + "://" + host + ":" + port, nil
	}
	return u.Scheme + "://" + host, nil
}

// normalizeOrigins parses and de-duplicates a site's allowed origins.
func normalizeOrigins(in []string) ([]string, error) {
	if len(in) > maxOrigins {
		return nil, invalid("at most %d allowed origins", maxOrigins)
	}
	out := []string{}
	seen := map[string]bool{}
	for _, o := range in {
		n, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// checkTimeZone validates an IANA zone name; empty means UTC.
func checkTimeZone(tz string) (string, error) {
	if tz == "" {
		return defaultTimeZone, nil
	}
	if len(tz) > maxTimeZoneBytes {
		return "", invalid("time zone name too long")
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		return "", invalid("%q is not an IANA time zone", tz)
	}
	return tz, nil
}

// checkName trims a display name and bounds its length.
func checkName(what, s string, required bool) (string, error) {
	n := strings.TrimSpace(s)
	if required && n == "" {
		return "", invalid("%s is required", what)
	}
	if len(n) > maxNameLength {
		return "", invalid("%s must have at most %d characters", what, maxNameLength)
	}
	return n, nil
}
