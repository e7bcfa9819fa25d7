package enrich

import (
	"strconv"
	"strings"

	"github.com/mileusna/useragent"
)

// Device types.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
)

// Agent is what a User-Agent header says about the visitor's software.
type Agent struct {
	Browser        string
	BrowserVersion string // major version only: fewer distinct values, no fingerprinting detail
	OS             string
	OSVersion      string // major version only
	Device         string // desktop, mobile, tablet or bot
	Bot            bool
}

// browserNames maps the parser's names to the ones Pulse stores and shows:
// each browser as its maker spells it.
var browserNames = map[string]string{
	useragent.MobileSafari:   "Safari",
	useragent.SamsungBrowser: "Samsung Internet",
	useragent.OperaMini:      "Opera Mini",
	useragent.OperaTouch:     "Opera",
	useragent.Msie:           "Internet Explorer",
	"Trident":                "Internet Explorer",
	useragent.FacebookApp:    "Facebook",
	useragent.InstagramApp:   "Instagram",
	useragent.TiktokApp:      "TikTok",
	"Android browser":        "Android Browser",
	"Miui Browser":           "MIUI Browser",
	"YaBrowser":              "Yandex Browser",
}

// tokenBrowsers are browsers the parser takes for the engine they are built
// on (Silk for Safari, UC Browser for Chrome): the token of the header that
// names each, and its name.
var tokenBrowsers = []struct{ token, name string }{
	{"Silk/", "Silk"},
	{"UCBrowser/", "UC Browser"},
}

// firstIPadOS is the first version of the iPad's system that Apple calls
// iPadOS; before it, iPads ran iOS.
const firstIPadOS = 13

// botMarkers are substrings of clients that are automation rather than people,
// beyond the crawlers the parser knows by name.
var botMarkers = []string{
	"bot", "crawl", "spider", "slurp", "headless", "lighthouse", "pagespeed", "curl/", "wget/",
	"python-requests", "python-urllib", "go-http-client", "java/", "okhttp", "httpclient", "axios/",
	"node-fetch", "phantomjs", "selenium", "puppeteer", "playwright", "preview", "monitor", "uptime",
	"scrapy", "facebookexternalhit", "embedly", "whatsapp/", "ahrefs", "semrush", "bytespider",
	"gptbot", "claudebot", "perplexitybot", "ccbot", "amazonbot", "applebot",
}

// ParseUserAgent reads browser, operating system and device type from a
// User-Agent header with github.com/mileusna/useragent, then flags automation
// the parser does not know as bots. An empty header is a bot.
func ParseUserAgent(header string) Agent {
	if strings.TrimSpace(header) == "" {
		return Agent{Device: DeviceBot, Bot: true}
	}
	ua := useragent.Parse(header)
	a := Agent{
		Browser:        ua.Name,
		BrowserVersion: major(ua.Version),
		OS:             ua.OS,
		OSVersion:      major(ua.OSVersion),
		Bot:            ua.Bot,
	}
	if name, ok := browserNames[a.Browser]; ok {
		a.Browser = name
	}
	for _, tb := range tokenBrowsers {
		if i := strings.Index(header, tb.token); i >= 0 {
			version := header[i+len(tb.token):]
			if j := strings.IndexAny(version, " ;)"); j >= 0 {
				version = version[:j]
			}
			a.Browser, a.BrowserVersion = tb.name, major(version)
			break
		}
	}
	if a.OS == useragent.CrOS {
		a.OS = useragent.ChromeOS
	}
	if a.OS == useragent.IOS && ua.Device == "iPad" {
		if v, err := strconv.Atoi(a.OSVersion); err == nil && v >= firstIPadOS {
			a.OS = "iPadOS"
		}
	}
	lower := strings.ToLower(header)
	for _, m := range botMarkers {
		if strings.Contains(lower, m) {
			a.Bot = true
			break
		}
	}
	switch {
	case a.Bot:
		a.Device = DeviceBot
	case ua.Tablet || strings.Contains(lower, "ipad"),
		// An Android browser that does not say "Mobile" runs on a tablet.
		a.OS == useragent.Android && !strings.Contains(lower, "mobile"):
		a.Device = DeviceTablet
	case ua.Mobile:
		a.Device = DeviceMobile
	default:
		a.Device = DeviceDesktop
	}
	return a
}

// major returns the number before the first dot of a version, or "" when the
// version does not start with a number (in-app browsers put names there).
func major(v string) string {
	if i := strings.IndexByte(v, '.'); i >= 0 {
		v = v[:i]
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return v
}
