package enrich

// ClassifySource as it was before it read campaigns without allocating,
// kept as the reference FuzzClassifyCampaignMatchesClassifySource compares with.

import (
	"net/url"
	"strings"
)

// ClassifySource works out a visit's source, medium and channel from the page
// URL's query (UTM parameters, ad click ids), the referrer, and the page's own
// host: a referrer on the same site is ignored.
func refClassifySource(query url.Values, referrer, pageHost string) Source {
	var (
		src      Source
		category string
	)
	medium := strings.ToLower(strings.TrimSpace(query.Get("utm_medium")))
	campaign := strings.ToLower(query.Get("utm_campaign"))

	if utm := strings.TrimSpace(query.Get("utm_source")); utm != "" {
		src.Name = truncate(utm, maxSourceLength)
		if k, ok := knownSourceNames[strings.ToLower(utm)]; ok {
			src.Name, category = k.name, k.category
		}
	}
	for _, c := range clickIDs {
		if query.Get(c.param) == "" {
			continue
		}
		src.ClickID = c.param
		if src.Name == "" {
			src.Name, category = c.source, c.category
		}
		if medium == "" && c.paid {
			medium = mediumPaid
		}
		break
	}
	if src.Name == "" {
		host := refReferrerHost(referrer)
		if host == "" || sameSite(host, pageHost) {
			src.Name = sourceDirect
		} else if k, ok := refLookupHost(host); ok {
			src.Name, category = k.name, k.category
		} else {
			src.Name = host
		}
	}
	if medium == "" {
		switch {
		case src.Name == sourceDirect:
			medium = mediumNone
		case category == categorySearch:
			medium = mediumOrganic
		case category == categorySocial:
			medium = mediumSocial
		default:
			medium = mediumReferral
		}
	}
	src.Medium = truncate(medium, maxCampaignPartLength)
	src.Channel = channel(strings.ToLower(src.Name), category, medium, campaign)
	return src
}

// referrerHost returns the lower-case host of an absolute http(s) referrer.
func refReferrerHost(referrer string) string {
	if referrer == "" {
		return ""
	}
	u, err := url.Parse(referrer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "android-app") {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
}

// lookupHost finds a known source for host, its parent domains, or a search
// engine under a country domain. Mobile and link-shim prefixes are dropped.
func refLookupHost(host string) (knownSource, bool) {
	for _, prefix := range []string{"m.", "l.", "lm.", "mobile.", "out."} {
		host = strings.TrimPrefix(host, prefix)
	}
	for h := host; h != ""; {
		if k, ok := knownHosts[h]; ok {
			return k, true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
	}
	labels := strings.Split(host, ".")
	for i := 0; i < len(labels)-1; i++ {
		if name, ok := searchLabels[labels[i]]; ok {
			return knownSource{name, categorySearch}, true
		}
	}
	return knownSource{}, false
}
