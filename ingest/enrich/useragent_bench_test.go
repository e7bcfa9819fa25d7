package enrich

import (
	"strings"
	"testing"

	"github.com/ua-parser/uap-go/uaparser"
)

// uapAgent maps ua-parser's answer onto Agent, the way ParseUserAgent would use it.
func uapAgent(p *uaparser.Parser, header string) Agent {
	c := p.Parse(header)
	a := Agent{Browser: c.UserAgent.Family, BrowserVersion: c.UserAgent.Major, OS: c.Os.Family, OSVersion: c.Os.Major}
	switch {
	case c.Device.Family == "Spider" || header == "" || strings.Contains(strings.ToLower(header), "headless"):
		a.Device, a.Bot = DeviceBot, true
	case strings.Contains(header, "iPad") || strings.Contains(header, "Android") && !strings.Contains(header, "Mobile"):
		a.Device = DeviceTablet
	case strings.Contains(header, "Mobile") || strings.Contains(header, "iPhone"):
		a.Device = DeviceMobile
	default:
		a.Device = DeviceDesktop
	}
	names := map[string]string{"Mobile Safari": "Safari", "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Firefox Mobile": "Firefox",
		"Firefox iOS": "Firefox", "Edge Mobile": "Edge", "Opera Mobile": "Opera", "Samsung Internet": "Samsung Internet", "IE": "Internet Explorer",
		"Facebook": "Facebook", "Instagram": "Instagram", "Chrome Mobile WebView": "Chrome", "Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Ubuntu": "Linux"}
	if n, ok := names[a.Browser]; ok {
		a.Browser = n
	}
	if n, ok := names[a.OS]; ok {
		a.OS = n
	}
	return a
}

// accuracy is the share of the userAgents table a parser gets right.
func accuracy(parse func(string) Agent) float64 {
	right := 0
	for _, tt := range userAgents {
		a := parse(tt.ua)
		ok := a.Device == tt.device
		if ok && tt.device != DeviceBot {
			ok = (tt.browser == "" || a.Browser == tt.browser) && a.OS == tt.os
		}
		if ok {
			right++
		}
	}
	return 100 * float64(right) / float64(len(userAgents))
}

// BenchmarkUserAgentCandidates compares the two maintained Go parsers we
// considered on the userAgents table: time per header (uap-go's cache held to
// one entry, as every header differs) and the share of rows each gets right.
// mileusna/useragent is the one ParseUserAgent uses; see docs/privacy.md.
func BenchmarkUserAgentCandidates(b *testing.B) {
	b.Run("mileusna", func(b *testing.B) {
		i := 0
		for b.Loop() {
			ParseUserAgent(userAgents[i%len(userAgents)].ua)
			i++
		}
		b.ReportMetric(accuracy(ParseUserAgent), "%-right")
	})
	b.Run("uap-go", func(b *testing.B) {
		p, err := uaparser.New(uaparser.WithCacheSize(1))
		if err != nil {
			b.Fatal(err)
		}
		parse := func(h string) Agent { return uapAgent(p, h) }
		i := 0
		for b.Loop() {
			parse(userAgents[i%len(userAgents)].ua)
			i++
		}
		b.ReportMetric(accuracy(parse), "%-right")
	})
}
