package enrich

import (
	"net/url"
	"slices"
	"strings"
)

// Channels, after GA4's default channel group, plus AI assistants.
const (
	ChannelDirect         = "Direct"
	ChannelOrganicSearch  = "Organic Search"
	ChannelPaidSearch     = "Paid Search"
	ChannelOrganicSocial  = "Organic Social"
	ChannelPaidSocial     = "Paid Social"
	ChannelOrganicVideo   = "Organic Video"
	ChannelPaidVideo      = "Paid Video"
	ChannelOrganicShop    = "Organic Shopping"
	ChannelPaidShop       = "Paid Shopping"
	ChannelDisplay        = "Display"
	ChannelPaidOther      = "Paid Other"
	ChannelEmail          = "Email"
	ChannelAffiliates     = "Affiliates"
	ChannelAudio          = "Audio"
	ChannelSMS            = "SMS"
	ChannelPush           = "Mobile Push Notifications"
	ChannelCrossNetwork   = "Cross-network"
	ChannelAI             = "AI"
	ChannelReferral       = "Referral"
	ChannelUnassigned     = "Unassigned"
	sourceDirect          = "(direct)"
	categorySearch        = "search"
	categorySocial        = "social"
	categoryVideo         = "video"
	categoryShopping      = "shopping"
	categoryEmail         = "email"
	categoryAI            = "ai"
	mediumOrganic         = "organic"
	mediumSocial          = "social"
	mediumReferral        = "referral"
	mediumPaid            = "cpc"
	mediumNone            = "(none)"
	maxSourceLength       = 128
	maxCampaignPartLength = 256
)

// knownSource is a referrer or utm_source Pulse can name and categorize.
type knownSource struct {
	name     string
	category string
}

// knownHosts maps registrable domains (and a few well-known hosts) to sources.
var knownHosts = map[string]knownSource{
	// search
	"bing.com": {"Bing", categorySearch}, "duckduckgo.com": {"DuckDuckGo", categorySearch}, "search.yahoo.com": {"Yahoo", categorySearch},
	"yahoo.com": {"Yahoo", categorySearch}, "yandex.ru": {"Yandex", categorySearch}, "yandex.com": {"Yandex", categorySearch}, "ya.ru": {"Yandex", categorySearch},
	"baidu.com": {"Baidu", categorySearch}, "ecosia.org": {"Ecosia", categorySearch}, "qwant.com": {"Qwant", categorySearch},
	"startpage.com": {"Startpage", categorySearch}, "search.brave.com": {"Brave Search", categorySearch}, "naver.com": {"Naver", categorySearch},
	"seznam.cz": {"Seznam", categorySearch}, "kagi.com": {"Kagi", categorySearch}, "search.aol.com": {"AOL", categorySearch},
	"so.com": {"360 Search", categorySearch}, "sogou.com": {"Sogou", categorySearch}, "yep.com": {"Yep", categorySearch},
	// social
	"facebook.com": {"Facebook", categorySocial}, "fb.com": {"Facebook", categorySocial}, "instagram.com": {"Instagram", categorySocial},
	"twitter.com": {"X", categorySocial}, "x.com": {"X", categorySocial}, "t.co": {"X", categorySocial}, "linkedin.com": {"LinkedIn", categorySocial},
	"lnkd.in": {"LinkedIn", categorySocial}, "reddit.com": {"Reddit", categorySocial}, "pinterest.com": {"Pinterest", categorySocial},
	"tiktok.com": {"TikTok", categorySocial}, "threads.net": {"Threads", categorySocial}, "bsky.app": {"Bluesky", categorySocial},
	"mastodon.social": {"Mastodon", categorySocial}, "news.ycombinator.com": {"Hacker News", categorySocial}, "vk.com": {"VK", categorySocial},
	"quora.com": {"Quora", categorySocial}, "tumblr.com": {"Tumblr", categorySocial}, "discord.com": {"Discord", categorySocial},
	"telegram.org": {"Telegram", categorySocial}, "t.me": {"Telegram", categorySocial}, "whatsapp.com": {"WhatsApp", categorySocial},
	"weibo.com": {"Weibo", categorySocial}, "snapchat.com": {"Snapchat", categorySocial}, "producthunt.com": {"Product Hunt", categorySocial},
	"medium.com": {"Medium", categorySocial}, "dev.to": {"DEV", categorySocial}, "github.com": {"GitHub", categorySocial},
	// video
	"youtube.com": {"YouTube", categoryVideo}, "youtu.be": {"YouTube", categoryVideo}, "vimeo.com": {"Vimeo", categoryVideo},
	"twitch.tv": {"Twitch", categoryVideo}, "dailymotion.com": {"Dailymotion", categoryVideo},
	// shopping
	"amazon.com": {"Amazon", categoryShopping}, "ebay.com": {"eBay", categoryShopping}, "etsy.com": {"Etsy", categoryShopping},
	"shopping.google.com": {"Google Shopping", categoryShopping}, "walmart.com": {"Walmart", categoryShopping},
	// email
	"mail.google.com": {"Gmail", categoryEmail}, "outlook.live.com": {"Outlook", categoryEmail}, "outlook.office.com": {"Outlook", categoryEmail},
	"outlook.office365.com": {"Outlook", categoryEmail}, "mail.yahoo.com": {"Yahoo Mail", categoryEmail}, "mail.proton.me": {"Proton Mail", categoryEmail},
	"mail.yandex.ru": {"Yandex Mail", categoryEmail}, "webmail.gmx.net": {"GMX", categoryEmail},
	// AI assistants
	"chatgpt.com": {"ChatGPT", categoryAI}, "chat.openai.com": {"ChatGPT", categoryAI}, "perplexity.ai": {"Perplexity", categoryAI},
	"claude.ai": {"Claude", categoryAI}, "gemini.google.com": {"Gemini", categoryAI}, "copilot.microsoft.com": {"Copilot", categoryAI},
	"chat.mistral.ai": {"Mistral", categoryAI}, "chat.deepseek.com": {"DeepSeek", categoryAI}, "you.com": {"You.com", categoryAI},
	"phind.com": {"Phind", categoryAI}, "grok.com": {"Grok", categoryAI}, "meta.ai": {"Meta AI", categoryAI},
}

// searchLabels name search engines that live under many country domains
// (google.de, google.co.uk, yandex.kz).
var searchLabels = map[string]string{"google": "Google", "bing": "Bing", "yahoo": "Yahoo", "yandex": "Yandex", "baidu": "Baidu", "ecosia": "Ecosia", "qwant": "Qwant"}

// knownSourceNames maps utm_source values people write to the same names.
var knownSourceNames = func() map[string]knownSource {
	m := map[string]knownSource{
		"google": {"Google", categorySearch}, "adwords": {"Google", categorySearch}, "fb": {"Facebook", categorySocial}, "ig": {"Instagram", categorySocial},
		"twitter": {"X", categorySocial}, "x": {"X", categorySocial}, "chatgpt": {"ChatGPT", categoryAI}, "chatgpt.com": {"ChatGPT", categoryAI},
		"email": {"Email", categoryEmail}, "e-mail": {"Email", categoryEmail}, "e_mail": {"Email", categoryEmail}, "e mail": {"Email", categoryEmail},
		"newsletter": {"Newsletter", categoryEmail},
	}
	for host, s := range knownHosts {
		m[strings.ToLower(s.name)] = s
		m[host] = s
	}
	return m
}()

// clickID is an ad click parameter: the source it implies and whether it is paid.
type clickID struct {
	param, source, category string
	paid                    bool
}

// clickIDs are the ad click parameters, in the order they are looked for.
var clickIDs = []clickID{
	{"gclid", "Google", categorySearch, true}, {"gbraid", "Google", categorySearch, true}, {"wbraid", "Google", categorySearch, true},
	{"dclid", "Google", "", true}, {"msclkid", "Bing", categorySearch, true}, {"yclid", "Yandex", categorySearch, true},
	{"ttclid", "TikTok", categorySocial, true}, {"twclid", "X", categorySocial, true}, {"li_fat_id", "LinkedIn", categorySocial, true},
	{"epik", "Pinterest", categorySocial, true}, {"rdt_cid", "Reddit", categorySocial, true}, {"sccid", "Snapchat", categorySocial, true},
	// Facebook adds fbclid to every outbound link, paid or not.
	{"fbclid", "Facebook", categorySocial, false},
}

var (
	displayMediums = map[string]bool{"display": true, "banner": true, "expandable": true, "interstitial": true, "cpm": true}
	socialMediums  = map[string]bool{"social": true, "social-network": true, "social-media": true, "sm": true, "social network": true, "social media": true}
	emailNames     = map[string]bool{"email": true, "e-mail": true, "e_mail": true, "e mail": true}
)

// paidMedium is GA4's ^(.*cp.*|ppc|retargeting|paid.*)$ without a regexp.
func paidMedium(m string) bool {
	return strings.Contains(m, "cp") || m == "ppc" || m == "retargeting" || strings.HasPrefix(m, "paid")
}

// shoppingCampaign is GA4's ^(.*(([^a-df-z]|^)shop|shopping).*)$ without a regexp.
func shoppingCampaign(c string) bool {
	for i := strings.Index(c, "shop"); i >= 0; {
		if i == 0 || !(c[i-1] >= 'a' && c[i-1] <= 'd' || c[i-1] >= 'f' && c[i-1] <= 'z') || strings.HasPrefix(c[i:], "shopping") {
			return true
		}
		next := strings.Index(c[i+1:], "shop")
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// Source is where a visit came from.
type Source struct {
	// Name is the source: a known name ("Google", "Hacker News"), the
	// referrer's host, the utm_source as given, or "(direct)".
	Name string
	// Medium is utm_medium, or derived: organic, social, referral, cpc, (none).
	Medium string
	// Channel is the GA4-style channel group, plus AI.
	Channel string
	// ClickID names the ad click parameter found (gclid, msclkid…), if any.
	ClickID string
}

// Campaign is what a page URL's query says about where a visit came from.
type Campaign struct {
	// Source, Medium and Name are the first values of utm_source,
	// utm_medium and utm_campaign.
	Source, Medium, Name string
	// ClickID is the first ad click parameter (in the order of clickIDs)
	// whose first value is not empty; "" when there is none.
	ClickID string
}

// ClassifySource works out a visit's source, medium and channel from the page
// URL's query (UTM parameters, ad click ids), the referrer, and the page's own
// host: a referrer on the same site is ignored.
func ClassifySource(query url.Values, referrer, pageHost string) Source {
	c := Campaign{Source: query.Get("utm_source"), Medium: query.Get("utm_medium"), Name: query.Get("utm_campaign")}
	for _, id := range clickIDs {
		if query.Get(id.param) != "" {
			c.ClickID = id.param
			break
		}
	}
	host := ""
	if strings.TrimSpace(c.Source) == "" && c.ClickID == "" { // else the referrer is not looked at
		host = referrerHostname(referrer)
	}
	return ClassifyCampaign(c, host, pageHost)
}

// ClassifyCampaign is ClassifySource for a query already read into c (see
// QueryClickID) and the referrer's host name (URL.Hostname of an http(s)
// referrer, "" without one). It allocates nothing for the common sources.
func ClassifyCampaign(c Campaign, referrerHost, pageHost string) Source {
	var (
		src      Source
		category string
	)
	medium := strings.ToLower(strings.TrimSpace(c.Medium))
	campaign := strings.ToLower(c.Name)

	if utm := strings.TrimSpace(c.Source); utm != "" {
		src.Name = truncate(utm, maxSourceLength)
		if k, ok := knownSourceNames[strings.ToLower(utm)]; ok {
			src.Name, category = k.name, k.category
		}
	}
	for _, id := range clickIDs {
		if id.param != c.ClickID {
			continue
		}
		src.ClickID = id.param
		if src.Name == "" {
			src.Name, category = id.source, id.category
		}
		if medium == "" && id.paid {
			medium = mediumPaid
		}
		break
	}
	if src.Name == "" {
		host := strings.TrimPrefix(strings.ToLower(referrerHost), "www.")
		if host == "" || sameSite(host, pageHost) {
			src.Name = sourceDirect
		} else if k, ok := lookupHost(host); ok {
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
	src.Channel = channel(lowerName(src.Name), category, medium, campaign)
	return src
}

// QueryClickID returns Campaign.ClickID of a raw query, reading it as
// url.ParseQuery and Values.Get do, without allocating for plain keys.
func QueryClickID(rawQuery string) string {
	var seen, set uint32 // per clickIDs entry: its first value was read; it is not empty
	for q := rawQuery; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.IndexByte(k, '%') >= 0 || strings.IndexByte(k, '+') >= 0 {
			uk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = uk
		}
		i := slices.IndexFunc(clickIDs, func(c clickID) bool { return c.param == k })
		if i < 0 || seen&(1<<i) != 0 || !validEscapes(v) {
			continue // ParseQuery drops a pair whose value does not unescape
		}
		seen |= 1 << i
		if v != "" {
			set |= 1 << i
		}
	}
	for i, c := range clickIDs {
		if set&(1<<i) != 0 {
			return c.param
		}
	}
	return ""
}

// validEscapes reports whether url.QueryUnescape accepts s: every % starts
// two hex digits.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; {
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		next := strings.IndexByte(s[i+3:], '%')
		if next < 0 {
			break
		}
		i += 3 + next
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// lowerNames holds the lower case of the source names Pulse gives, so that
// classifying a known source allocates no lower-case copy of its name.
var lowerNames = func() map[string]string {
	m := map[string]string{}
	add := func(name string) { m[name] = strings.ToLower(name) }
	for _, k := range knownSourceNames {
		add(k.name)
	}
	for _, c := range clickIDs {
		add(c.source)
	}
	for _, name := range searchLabels {
		add(name)
	}
	return m
}()

func lowerName(name string) string {
	if l, ok := lowerNames[name]; ok {
		return l
	}
	return strings.ToLower(name)
}

// channel applies GA4's default channel group rules in their order, with AI
// assistants before Referral.
func channel(source, category, medium, campaign string) string {
	paid := paidMedium(medium)
	shopping := category == categoryShopping || campaign != "" && shoppingCampaign(campaign)
	switch {
	case source == sourceDirect && (medium == mediumNone || medium == "(not set)"):
		return ChannelDirect
	case strings.Contains(campaign, "cross-network"):
		return ChannelCrossNetwork
	case shopping && paid:
		return ChannelPaidShop
	case category == categorySearch && paid:
		return ChannelPaidSearch
	case category == categorySocial && paid:
		return ChannelPaidSocial
	case category == categoryVideo && paid:
		return ChannelPaidVideo
	case displayMediums[medium]:
		return ChannelDisplay
	case paid:
		return ChannelPaidOther
	case shopping:
		return ChannelOrganicShop
	case category == categorySocial || socialMediums[medium]:
		return ChannelOrganicSocial
	case category == categoryVideo || strings.Contains(medium, "video"):
		return ChannelOrganicVideo
	case category == categorySearch || medium == mediumOrganic:
		return ChannelOrganicSearch
	case category == categoryEmail || emailNames[source] || emailNames[medium]:
		return ChannelEmail
	case medium == "affiliate":
		return ChannelAffiliates
	case medium == "audio":
		return ChannelAudio
	case source == "sms" || medium == "sms":
		return ChannelSMS
	case strings.HasSuffix(medium, "push") || strings.Contains(medium, "mobile") || strings.Contains(medium, "notification") || source == "firebase":
		return ChannelPush
	case category == categoryAI:
		return ChannelAI
	case medium == mediumReferral || medium == "app" || medium == "link":
		return ChannelReferral
	}
	return ChannelUnassigned
}

// referrerHostname returns the host name of an absolute http(s) (or
// android-app) referrer.
func referrerHostname(referrer string) string {
	if referrer == "" {
		return ""
	}
	u, err := url.Parse(referrer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "android-app") {
		return ""
	}
	return u.Hostname()
}

// sameSite reports whether a referrer host is the page's own site (ignoring www.).
func sameSite(host, pageHost string) bool {
	return pageHost != "" && host == strings.TrimPrefix(strings.ToLower(pageHost), "www.")
}

// lookupHost finds a known source for host, its parent domains, or a search
// engine under a country domain. Mobile and link-shim prefixes are dropped.
func lookupHost(host string) (knownSource, bool) {
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
	// Every label but the last (the top-level domain).
	for rest := host; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return knownSource{}, false
		}
		if name, ok := searchLabels[rest[:i]]; ok {
			return knownSource{name, categorySearch}, true
		}
		rest = rest[i+1:]
	}
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
