package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"golang.org/x/text/currency"

	"github.com/pulse-analytics/pulse/auth"
)

// plausibleLimits are Plausible's limits on custom properties (limits.go).
var plausibleLimits = eventLimits{props: MaxPlausibleProps, keyBytes: MaxPlausiblePropKeyBytes, valueBytes: MaxPlausiblePropValueBytes}

// plausibleEngagement is the name of Plausible's engagement events, and of
// our tracker's: time on the page and scroll depth.
const plausibleEngagement = "engagement"

// plausibleBody holds a Plausible event body's members; each field has a
// long name and the tracker's short one, and the first present counts, as
// Plausible reads them.
type plausibleBody map[string]json.RawMessage

func (b plausibleBody) get(names ...string) json.RawMessage {
	for _, n := range names {
		if v := bytes.TrimSpace(b[n]); len(v) > 0 && string(v) != "null" {
			return v
		}
	}
	return nil
}

// plausibleError is a refusal in Plausible's shape: 400 {"errors": {field: [message]}}.
type plausibleError struct{ field, msg string }

func (e *plausibleError) answer(c *fiber.Ctx) error {
	return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"errors": fiber.Map{e.field: []string{e.msg}}})
}

func plausibleFail(field, format string, args ...any) *plausibleError {
	return &plausibleError{field, fmt.Sprintf(format, args...)}
}

// plausible handles POST /api/event: the site is chosen by domain, the
// visitor comes from the request's address (auth.ClientAddr) and
// User-Agent, and the answers are Plausible's: 202 "ok", and 400 with
// {"errors": …} for what Pulse refuses, which the tracker hands its callback.
func (h *FormatsHandler) plausible(c *fiber.Ctx) error {
	if n := len(c.Body()); n > MaxPlausibleBytes {
		return c.Status(fiber.StatusRequestEntityTooLarge).JSON(fiber.Map{"errors": fiber.Map{"request": []string{
			"the body is " + strconv.Itoa(n) + " bytes, more than the limit of " + strconv.Itoa(MaxPlausibleBytes)}}})
	}
	var body plausibleBody
	if err := json.Unmarshal(c.Body(), &body); err != nil || body == nil {
		return plausibleFail("request", "Unable to parse request body as json").answer(c)
	}
	domains, _ := jsonString(body.get("d", "domain"))
	if domains == "" {
		u, _ := jsonString(body.get("u", "url"))
		if p, err := url.Parse(u); err == nil {
			domains = p.Hostname()
		}
	}
	var (
		site auth.Site
		err  error
	)
	for _, d := range strings.Split(domains, ",") {
		if d = strings.TrimPrefix(strings.TrimSpace(d), "www."); d != "" {
			if site, err = h.dir.SiteByDomain(d); err == nil {
				break
			}
		}
	}
	switch {
	case strings.TrimSpace(domains) == "":
		return plausibleFail("domain", "can't be blank").answer(c)
	case err != nil || site.ID == uuid.Nil:
		return plausibleFail("domain", "%q is not a site of this Pulse: add it in the dashboard", truncate(domains, 80)).answer(c)
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		if auth.CheckOrigin(site, origin) != nil {
			return c.Status(fiber.StatusForbidden).JSON(fiber.Map{"errors": fiber.Map{"origin": []string{
				strconv.Quote(truncate(origin, 80)) + " is not an allowed origin of " + site.Domain}}})
		}
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Vary(fiber.HeaderOrigin)
	}
	if optedOut(c, site.HonorDNT) != "" {
		// The visitor opted out: nothing is stored, and the header says so as
		// Plausible's does for the events it drops.
		c.Set("X-Plausible-Dropped", "1")
		return c.Status(fiber.StatusAccepted).SendString("ok")
	}
	raw, f, perr := plausibleEvent(body)
	if perr != nil {
		return perr.answer(c)
	}
	client := Client{UserAgent: c.Get(fiber.HeaderUserAgent), IP: auth.ClientAddr(c)}
	n, rejected, err := h.accept(c.UserContext(), SiteOf(site), []rawEvent{{raw: raw, client: client, foreign: f}}, nil)
	if err != nil {
		return busy(c, err)
	}
	if n == 0 && len(rejected) > 0 {
		field := metricField(rejected[0].Field)
		if field == "ts" || field == "type" || field == "event" {
			field = "request"
		}
		return plausibleFail(field, "%s %s", rejected[0].Field, rejected[0].Message).answer(c)
	}
	if n == 0 {
		c.Set("X-Plausible-Dropped", "1") // a bot, and --drop-bots drops them
	}
	return c.Status(fiber.StatusAccepted).SendString("ok")
}

// plausibleEvent translates a Plausible event body into our event format,
// with what that has no field for in its foreignFields.
func plausibleEvent(body plausibleBody) (json.RawMessage, *foreignFields, *plausibleError) {
	var name string
	switch v := body.get("n", "name"); {
	case v == nil:
		return nil, nil, plausibleFail("name", "can't be blank")
	case v[0] == '"':
		name, _ = jsonString(v)
	case isJSONInteger(v): // Plausible takes integer names (404 tracking)
		name = string(v)
	default:
		return nil, nil, plausibleFail("name", "must be a string")
	}
	pageURL, ok := jsonString(body.get("u", "url"))
	if !ok {
		return nil, nil, plausibleFail("url", "is required, a string")
	}
	ev := map[string]any{"type": "track", "name": name, "url": pageURL}
	if name == "pageview" {
		ev["type"] = "page"
	}
	if r := body.get("r", "referrer"); r != nil {
		s, ok := jsonString(r)
		if !ok {
			return nil, nil, plausibleFail("referrer", "must be a string")
		}
		if s != "" {
			ev["referrer"] = s
		}
	}
	f := &foreignFields{limits: &plausibleLimits}

	props := map[string]json.RawMessage{}
	if p := body.get("m", "meta", "p", "props"); p != nil {
		if p[0] == '"' { // the script sends props as a JSON string
			s, _ := jsonString(p)
			p = json.RawMessage(s)
		}
		obj := jsonObject(p)
		if obj == nil {
			return nil, nil, plausibleFail("props", "must be an object of custom properties")
		}
		for k, v := range obj {
			v = bytes.TrimSpace(v)
			switch {
			case string(v) == "null":
				continue // as Plausible: a property without a value is not sent
			case len(v) > 0 && (v[0] == '{' || v[0] == '['):
				return nil, nil, plausibleFail("props", "%q must be a string, number or boolean: custom properties take no objects or arrays", truncate(k, 64))
			}
			props[k] = v
		}
	}
	if rev := body.get("$", "revenue"); rev != nil {
		amount, code, perr := plausibleRevenue(rev)
		if perr != nil {
			return nil, nil, perr
		}
		for k, v := range map[string]json.RawMessage{"revenue_amount": amount, "revenue_currency": code} {
			if _, clash := props[k]; clash {
				return nil, nil, plausibleFail("props", "%q is where Pulse keeps the revenue: send it under another name", k)
			}
			props[k] = v
		}
	}
	if name == plausibleEngagement {
		if err := plausibleEngagementProps(body, props); err != nil {
			return nil, nil, err
		}
	}
	if len(props) > 0 {
		ev["props"] = props
	}
	if hm := body.get("h", "hashMode"); hm != nil {
		mode, ok := jsonInteger(hm)
		if !ok {
			return nil, nil, plausibleFail("h", "must be an integer: 1 for hash-based routing")
		}
		if u, err := url.Parse(pageURL); mode == 1 && err == nil && u.Fragment != "" {
			f.fragment = "#" + u.EscapedFragment()
		}
	}
	if i := body.get("i", "interactive"); i != nil {
		switch string(i) {
		case "true":
		case "false":
			f.nonInteractive = true
		default:
			return nil, nil, plausibleFail("interactive", "must be true or false")
		}
	}
	if v := body.get("v"); v != nil {
		var b bytes.Buffer
		_ = json.Compact(&b, v)
		f.context = `{"v":` + b.String() + `}`
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, plausibleFail("request", "cannot be read: %v", err)
	}
	return out, f, nil
}

// plausibleRevenue reads a revenue object ({"amount": 19.99, "currency":
// "USD"}, or its JSON text): amount a decimal number or its string, currency an
// ISO 4217 code. Plausible drops a revenue it cannot read and keeps the
// event; Pulse refuses the event, so that its sender hears of it.
func plausibleRevenue(rev json.RawMessage) (amount, code json.RawMessage, _ *plausibleError) {
	if rev[0] == '"' {
		s, _ := jsonString(rev)
		rev = json.RawMessage(s)
	}
	obj := jsonObject(rev)
	a, c := bytes.TrimSpace(obj["amount"]), obj["currency"]
	cur, _ := jsonString(c)
	if s, ok := jsonString(a); ok {
		a = json.RawMessage(s)
	}
	if obj == nil || len(a) == 0 || !isJSONNumber(a) {
		return nil, nil, plausibleFail("revenue", "must be {\"amount\": a decimal number, \"currency\": an ISO 4217 code}")
	}
	if u, err := currency.ParseISO(cur); err != nil || u.String() != cur {
		return nil, nil, plausibleFail("revenue", "currency %q is not an ISO 4217 code such as USD or EUR", truncate(cur, 16))
	}
	amount, _ = json.Marshal(string(a))
	code, _ = json.Marshal(cur)
	return amount, code, nil
}

// plausibleEngagementProps adds an engagement event's engaged time (e, ms)
// and scroll depth (sd, percent) to props as our tracker's engagement event
// has them: ms and scroll. Each may be an integer or its string; a scroll
// depth over 100 counts as 100, as Plausible reads it. At least one is
// required.
func plausibleEngagementProps(body plausibleBody, props map[string]json.RawMessage) *plausibleError {
	sd, e := body.get("sd"), body.get("e")
	if sd == nil && e == nil {
		return plausibleFail("name", "engagement event requires a valid integer value for at least one of 'sd' or 'e' fields")
	}
	for _, f := range []struct {
		field, prop string
		raw         json.RawMessage
		max         int64
	}{{"sd", "scroll", sd, 100}, {"e", "ms", e, MaxPlausibleEngagementMs}} {
		if f.raw == nil {
			continue
		}
		v, ok := jsonInteger(f.raw)
		switch {
		case f.field == "sd" && (!ok || v < 0):
			return plausibleFail(f.field, "must be an integer percentage, 0 or more")
		case f.field == "e" && (!ok || v < 0 || v >= f.max):
			return plausibleFail(f.field, "must be an integer number of milliseconds from 0 to %d", f.max-1)
		}
		if _, clash := props[f.prop]; clash {
			return plausibleFail("props", "%q is where Pulse keeps the engagement's %s: send the property under another name", f.prop, f.field)
		}
		props[f.prop] = json.RawMessage(strconv.FormatInt(min(v, f.max), 10))
	}
	return nil
}

// jsonInteger reads an integer, or a string of one, as Plausible's Integer.parse does.
func jsonInteger(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	if t, ok := jsonString(raw); ok {
		s = t
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// isJSONInteger reports whether raw is a JSON integer.
func isJSONInteger(raw json.RawMessage) bool {
	_, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil
}

// isJSONNumber reports whether raw is a JSON number.
func isJSONNumber(raw json.RawMessage) bool {
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(&n) == nil && !d.More() && n.String() != ""
}
