package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FieldError is a request that is wrong: Field is a JSON path into the
// request and Msg says why and what is allowed.
type FieldError struct {
	Field string `json:"field"`
	Msg   string `json:"error"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Request is the body of POST /api/v1/query (docs/query-api.md).
type Request struct {
	SiteID     string            `json:"site_id"`
	Metrics    []string          `json:"metrics"`
	DateRange  json.RawMessage   `json:"date_range"`
	Dimensions []string          `json:"dimensions"`
	Filters    []json.RawMessage `json:"filters"`
	OrderBy    []json.RawMessage `json:"order_by"`
	Limit      *int              `json:"limit"`
	Offset     int               `json:"offset"`
	Include    Include           `json:"include"`
}

// Include asks for more than the rows.
type Include struct {
	Totals     bool   `json:"totals"`
	Comparison string `json:"comparison"`
	TimeLabels bool   `json:"time_labels"`
	TotalRows  bool   `json:"total_rows"`
}

// Comparison periods.
const (
	comparePrevious = "previous_period"
	compareYear     = "year_over_year"
)

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data with a FieldError.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return fieldErr(typeErr.Field, "must be a JSON %s", jsonKind(typeErr.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return fieldErr(name, "unknown field %q", name)
		default:
			return fieldErr("", "the body must be one JSON object: %v", err)
		}
	}
	if dec.More() {
		return fieldErr("", "the body must be one JSON object, followed by nothing")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "int", "int64", "uint32", "uint64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

// parseSiteID reads a site id.
func parseSiteID(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, fieldErr("site_id", "required: the site's id")
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fieldErr("site_id", "must be a site id (a UUID)")
	}
	return id, nil
}

// metricKind is one metric of the query API.
type metricKind int

const (
	mVisitors metricKind = iota
	mVisits
	mPageviews
	mEvents
	mViewsPerVisit
	mBounceRate
	mVisitDuration
	mConversionRate
	mSum
	mTimeOnPage
	mScrollDepth
)

var metricNames = map[string]metricKind{
	"visitors":        mVisitors,
	"visits":          mVisits,
	"pageviews":       mPageviews,
	"events":          mEvents,
	"views_per_visit": mViewsPerVisit,
	"bounce_rate":     mBounceRate,
	"visit_duration":  mVisitDuration,
	"conversion_rate": mConversionRate,
	"time_on_page":    mTimeOnPage,
	"scroll_depth":    mScrollDepth,
}

const knownMetrics = "visitors, visits, pageviews, events, views_per_visit, bounce_rate, visit_duration, conversion_rate, time_on_page, scroll_depth, sum:<property>"

// metric is a parsed metric: its kind and, for sums, the property key.
type metric struct {
	name string
	kind metricKind
	prop string
}

// visitOnly reports whether the metric describes whole visits.
func (m metric) visitOnly() bool {
	switch m.kind {
	case mVisits, mViewsPerVisit, mBounceRate, mVisitDuration:
		return true
	}
	return false
}

// eventOnly reports whether the metric is computed from events only.
// events is: the visits hold no non-interactive events (builder.go).
func (m metric) eventOnly() bool {
	return m.kind == mConversionRate || m.kind == mSum || m.kind == mEvents
}

// engaged reports whether the metric is read from engagement events (the
// time and scroll depth of page visits), which no other metric counts.
func (m metric) engaged() bool { return m.kind == mTimeOnPage || m.kind == mScrollDepth }

// points reports whether a change of the metric is a difference in
// percentage points rather than a percent change.
func (m metric) points() bool {
	return m.kind == mBounceRate || m.kind == mConversionRate || m.kind == mScrollDepth
}

func parseMetric(field, s string) (metric, error) {
	if k, ok := metricNames[s]; ok {
		return metric{name: s, kind: k}, nil
	}
	if prop, ok := strings.CutPrefix(s, "sum:"); ok {
		if err := checkValue(prop); err != nil || prop == "" {
			return metric{}, fieldErr(field, "sum:<property> needs a property key of 1 to %d bytes of UTF-8", MaxValueLength)
		}
		return metric{name: s, kind: mSum, prop: prop}, nil
	}
	return metric{}, fieldErr(field, "unknown metric %q; known: %s", s, knownMetrics)
}

// dimKind says where a dimension's value lives.
type dimKind int

const (
	dimEvent dimKind = iota // a column of each event
	dimVisit                // an attribute of the visit (sessions)
	dimTime                 // a time bucket
)

// dimension is a parsed dimension.
type dimension struct {
	name string
	kind dimKind
	// col is the events column (event dimensions, and visit dimensions that
	// are the same on every event of a visit), or the sessions column.
	col string
	// onEvents is true for visit dimensions every event carries itself
	// (place, device, software), so event queries need no visit lookup.
	onEvents bool
	// prop is the property key of event:props:<key>.
	prop string
	// grain is the time bucket of time dimensions.
	grain string
}

// goal reports whether the dimension describes what a visit did rather
// than where: an event's name or a property. Filters on these select
// visits for the metrics of pages and visits (docs/query-api.md, "Event
// filters").
func (d dimension) goal() bool { return d.kind == dimEvent && (d.col == "name" || d.prop != "") }

var eventDims = map[string]string{
	"event:page":     "pathname",
	"event:name":     "name",
	"event:hostname": "hostname",
}

// visitDims maps visit dimensions to sessions columns; the bool says the
// events table has the same value on every event of the visit.
var visitDims = map[string]struct {
	col      string
	onEvents bool
}{
	"visit:entry_page":      {"entry_page", false},
	"visit:exit_page":       {"exit_page", false},
	"visit:source":          {"source", false},
	"visit:referrer":        {"referrer", false},
	"visit:channel":         {"channel", false},
	"visit:utm_source":      {"utm_source", false},
	"visit:utm_medium":      {"utm_medium", false},
	"visit:utm_campaign":    {"utm_campaign", false},
	"visit:utm_term":        {"utm_term", false},
	"visit:utm_content":     {"utm_content", false},
	"visit:country":         {"country", true},
	"visit:region":          {"region", true},
	"visit:city":            {"city", true},
	"visit:browser":         {"browser", true},
	"visit:browser_version": {"browser_version", true},
	"visit:os":              {"os", true},
	"visit:os_version":      {"os_version", true},
	"visit:device":          {"device", true},
}

var timeGrains = map[string]bool{"minute": true, "hour": true, "day": true, "week": true, "month": true}

const knownDimensions = "event:page, event:name, event:hostname, event:props:<key>, visit:entry_page, visit:exit_page, visit:source, visit:referrer, visit:channel, visit:utm_source, visit:utm_medium, visit:utm_campaign, visit:utm_term, visit:utm_content, visit:country, visit:region, visit:city, visit:browser, visit:browser_version, visit:os, visit:os_version, visit:device, time:minute, time:hour, time:day, time:week, time:month"

func parseDimension(field, s string) (dimension, error) {
	if col, ok := eventDims[s]; ok {
		return dimension{name: s, kind: dimEvent, col: col}, nil
	}
	if v, ok := visitDims[s]; ok {
		return dimension{name: s, kind: dimVisit, col: v.col, onEvents: v.onEvents}, nil
	}
	if key, ok := strings.CutPrefix(s, "event:props:"); ok {
		if key == "" || checkValue(key) != nil {
			return dimension{}, fieldErr(field, "event:props:<key> needs a property key of 1 to %d bytes of UTF-8", MaxValueLength)
		}
		return dimension{name: s, kind: dimEvent, prop: key}, nil
	}
	if g, ok := strings.CutPrefix(s, "time:"); ok && timeGrains[g] {
		return dimension{name: s, kind: dimTime, grain: g}, nil
	}
	return dimension{}, fieldErr(field, "unknown dimension %q; known: %s", s, knownDimensions)
}

func checkValue(s string) error {
	if len(s) > MaxValueLength || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return errors.New("bad value")
	}
	return nil
}

// filter is a parsed filter: a leaf (op, dim, values) or a logical node.
type filter struct {
	op       string // is, is_not, contains, contains_not, matches, matches_not, and, or, not
	dim      dimension
	values   []string
	caseFold bool
	children []*filter
}

var leafOps = map[string]bool{"is": true, "is_not": true, "contains": true, "contains_not": true, "matches": true, "matches_not": true}

// negated reports whether a leaf holds when none of its values match.
func (f *filter) negated() bool { return strings.HasSuffix(f.op, "_not") }

// refersTo reports whether the filter or any of its children uses a
// dimension of kind k.
func (f *filter) refersTo(k dimKind) bool {
	return f.any(func(d dimension) bool { return d.kind == k })
}

// any reports whether a leaf of the filter has a dimension for which ok holds.
func (f *filter) any(ok func(dimension) bool) bool {
	if f.children == nil && f.op != "not" && f.op != "and" && f.op != "or" {
		return ok(f.dim)
	}
	for _, c := range f.children {
		if c.any(ok) {
			return true
		}
	}
	return false
}

type filterParser struct{ leaves int }

func (p *filterParser) parse(field string, raw json.RawMessage, depth int) (*filter, error) {
	if depth > MaxFilterDepth {
		return nil, fieldErr(field, "filters nest at most %d levels deep", MaxFilterDepth)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) < 2 {
		return nil, fieldErr(field, `a filter is [operator, dimension, [values…]] or ["and"|"or", [filters…]] or ["not", filter]`)
	}
	var op string
	if err := json.Unmarshal(parts[0], &op); err != nil {
		return nil, fieldErr(field+"[0]", "the operator must be a string")
	}
	switch op {
	case "and", "or":
		var kids []json.RawMessage
		if len(parts) != 2 || json.Unmarshal(parts[1], &kids) != nil || len(kids) == 0 {
			return nil, fieldErr(field, `%q takes one list of one or more filters: [%q, [f1, f2, …]]`, op, op)
		}
		f := &filter{op: op}
		for i, k := range kids {
			c, err := p.parse(fmt.Sprintf("%s[1][%d]", field, i), k, depth+1)
			if err != nil {
				return nil, err
			}
			f.children = append(f.children, c)
		}
		return f, nil
	case "not":
		if len(parts) != 2 {
			return nil, fieldErr(field, `"not" takes one filter: ["not", f]`)
		}
		c, err := p.parse(field+"[1]", parts[1], depth+1)
		if err != nil {
			return nil, err
		}
		return &filter{op: op, children: []*filter{c}}, nil
	}
	if !leafOps[op] {
		return nil, fieldErr(field+"[0]", "unknown operator %q; known: is, is_not, contains, contains_not, matches, matches_not, and, or, not", op)
	}
	p.leaves++
	if p.leaves > MaxFilters {
		return nil, fieldErr(field, "at most %d filters", MaxFilters)
	}
	if len(parts) != 3 && len(parts) != 4 {
		return nil, fieldErr(field, "%q takes a dimension and a list of values: [%q, dimension, [values…]]", op, op)
	}
	var dimName string
	if err := json.Unmarshal(parts[1], &dimName); err != nil {
		return nil, fieldErr(field+"[1]", "the dimension must be a string")
	}
	dim, err := parseDimension(field+"[1]", dimName)
	if err != nil {
		return nil, err
	}
	if dim.kind == dimTime {
		return nil, fieldErr(field+"[1]", "time dimensions cannot be filtered; use date_range")
	}
	var values []string
	if err := json.Unmarshal(parts[2], &values); err != nil || len(values) == 0 {
		return nil, fieldErr(field+"[2]", "the values must be a list of one or more strings")
	}
	if len(values) > MaxFilterValues {
		return nil, fieldErr(field+"[2]", "at most %d values", MaxFilterValues)
	}
	for i, v := range values {
		if checkValue(v) != nil {
			return nil, fieldErr(fmt.Sprintf("%s[2][%d]", field, i), "a value is at most %d bytes of UTF-8 without NUL", MaxValueLength)
		}
		if strings.HasPrefix(op, "matches") {
			if err := checkPattern(v); err != nil {
				return nil, fieldErr(fmt.Sprintf("%s[2][%d]", field, i), "%v", err)
			}
		}
	}
	f := &filter{op: op, dim: dim, values: values}
	if len(parts) == 4 {
		var mods struct {
			CaseSensitive *bool `json:"case_sensitive"`
		}
		dec := json.NewDecoder(bytes.NewReader(parts[3]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&mods); err != nil {
			return nil, fieldErr(field+"[3]", `modifiers are {"case_sensitive": false}`)
		}
		if mods.CaseSensitive != nil && !*mods.CaseSensitive {
			if strings.HasPrefix(op, "matches") {
				return nil, fieldErr(field+"[3]", "matches is case-sensitive; use (?i) in the expression instead")
			}
			f.caseFold = true
		}
	}
	return f, nil
}

// parseFilters reads the request's filter list: all must hold.
func parseFilters(raws []json.RawMessage) ([]*filter, error) {
	var p filterParser
	out := make([]*filter, 0, len(raws))
	for i, r := range raws {
		f, err := p.parse(fmt.Sprintf("filters[%d]", i), r, 1)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// order is one order_by entry: a metric or dimension index, and direction.
type order struct {
	metric int // index into metrics, or -1
	dim    int // index into dimensions, or -1
	desc   bool
}
