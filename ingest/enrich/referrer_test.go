package enrich

import (
	"net/url"
	"testing"
)

func TestClassifySource(t *testing.T) {
	const page = "https://shop.example/pricing"
	tests := []struct {
		referrer, query       string
		source, medium, chann string
	}{
		// Search engines, organic
		{"https://www.google.com/", "", "Google", "organic", ChannelOrganicSearch},
		{"https://www.google.co.uk/", "", "Google", "organic", ChannelOrganicSearch},
		{"https://www.google.de/search?q=x", "", "Google", "organic", ChannelOrganicSearch},
		{"https://www.bing.com/search?q=pulse", "", "Bing", "organic", ChannelOrganicSearch},
		{"https://duckduckgo.com/", "", "DuckDuckGo", "organic", ChannelOrganicSearch},
		{"https://search.yahoo.com/", "", "Yahoo", "organic", ChannelOrganicSearch},
		{"https://yandex.ru/", "", "Yandex", "organic", ChannelOrganicSearch},
		{"https://www.ecosia.org/", "", "Ecosia", "organic", ChannelOrganicSearch},
		{"https://search.brave.com/search?q=a", "", "Brave Search", "organic", ChannelOrganicSearch},
		{"https://www.baidu.com/link?url=x", "", "Baidu", "organic", ChannelOrganicSearch},
		// Social, organic
		{"https://l.facebook.com/", "", "Facebook", "social", ChannelOrganicSocial},
		{"https://m.facebook.com/", "", "Facebook", "social", ChannelOrganicSocial},
		{"https://t.co/abc123", "", "X", "social", ChannelOrganicSocial},
		{"https://www.linkedin.com/feed/", "", "LinkedIn", "social", ChannelOrganicSocial},
		{"https://lnkd.in/x", "", "LinkedIn", "social", ChannelOrganicSocial},
		{"https://old.reddit.com/r/golang/", "", "Reddit", "social", ChannelOrganicSocial},
		{"https://news.ycombinator.com/item?id=1", "", "Hacker News", "social", ChannelOrganicSocial},
		{"https://bsky.app/profile/x", "", "Bluesky", "social", ChannelOrganicSocial},
		{"https://www.instagram.com/", "", "Instagram", "social", ChannelOrganicSocial},
		// Video
		{"https://www.youtube.com/watch?v=x", "", "YouTube", "referral", ChannelOrganicVideo},
		// Email web clients
		{"https://mail.google.com/", "", "Gmail", "referral", ChannelEmail},
		{"https://outlook.live.com/mail/0/", "", "Outlook", "referral", ChannelEmail},
		// AI assistants
		{"https://chatgpt.com/", "", "ChatGPT", "referral", ChannelAI},
		{"https://www.perplexity.ai/search/x", "", "Perplexity", "referral", ChannelAI},
		{"https://claude.ai/", "", "Claude", "referral", ChannelAI},
		{"https://gemini.google.com/app", "", "Gemini", "referral", ChannelAI},
		// Plain referrals and direct
		{"https://blog.someone.example/post", "", "blog.someone.example", "referral", ChannelReferral},
		{"https://www.partner.example/", "", "partner.example", "referral", ChannelReferral},
		{"", "", "(direct)", "(none)", ChannelDirect},
		{"https://shop.example/cart", "", "(direct)", "(none)", ChannelDirect},     // self-referral ignored
		{"https://www.shop.example/cart", "", "(direct)", "(none)", ChannelDirect}, // www. of the same site
		{"not a url", "", "(direct)", "(none)", ChannelDirect},
		// Campaign parameters and click ids win over the referrer
		{"https://www.google.com/", "gclid=abc", "Google", "cpc", ChannelPaidSearch},
		{"", "utm_source=google&utm_medium=cpc&utm_campaign=brand", "Google", "cpc", ChannelPaidSearch},
		{"", "msclkid=x", "Bing", "cpc", ChannelPaidSearch},
		{"https://l.facebook.com/", "utm_source=facebook&utm_medium=paid_social", "Facebook", "paid_social", ChannelPaidSocial},
		{"https://l.facebook.com/", "fbclid=IwAR0", "Facebook", "social", ChannelOrganicSocial},
		{"", "ttclid=x", "TikTok", "cpc", ChannelPaidSocial},
		{"", "utm_source=newsletter&utm_medium=email", "Newsletter", "email", ChannelEmail},
		{"", "utm_source=mailchimp&utm_medium=email", "mailchimp", "email", ChannelEmail},
		{"", "utm_source=partner&utm_medium=affiliate", "partner", "affiliate", ChannelAffiliates},
		{"", "utm_source=adnet&utm_medium=display", "adnet", "display", ChannelDisplay},
		{"", "utm_source=podcast&utm_medium=audio", "podcast", "audio", ChannelAudio},
		{"", "utm_source=sms&utm_medium=text", "sms", "text", ChannelSMS},
		{"", "utm_source=app&utm_medium=push", "app", "push", ChannelPush},
		{"", "utm_source=chatgpt.com", "ChatGPT", "referral", ChannelAI},
		{"", "utm_source=x&utm_medium=whatever&utm_campaign=cross-network-q4", "X", "whatever", ChannelCrossNetwork},
		{"", "utm_source=spring", "spring", "referral", ChannelReferral},
		{"", "utm_source=spring&utm_medium=poster", "spring", "poster", ChannelUnassigned},
		{"", "utm_source=adnet&utm_medium=cpc&utm_campaign=xmas-shop", "adnet", "cpc", ChannelPaidShop},
		{"", "utm_source=adnet&utm_campaign=workshop", "adnet", "referral", ChannelReferral}, // "workshop" is no shop
		{"", "utm_source=adnet&utm_campaign=eshop", "adnet", "referral", ChannelOrganicShop}, // GA4's [^a-df-z] lets "e" through
	}
	if len(tests) < 30 {
		t.Fatalf("only %d referrer cases; keep at least 30", len(tests))
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got := ClassifySource(q, tt.referrer, "shop.example")
		if got.Name != tt.source || got.Medium != tt.medium || got.Channel != tt.chann {
			t.Errorf("referrer %q query %q on %s = %q/%q/%q, want %q/%q/%q", tt.referrer, tt.query, page, got.Name, got.Medium, got.Channel, tt.source, tt.medium, tt.chann)
		}
	}
}

// FuzzClassifyCampaignMatchesClassifySource holds both ClassifySource and
// the path ingest takes (a raw query read by QueryClickID, the referrer's
// host name) to the answers of the earlier ClassifySource.
func FuzzClassifyCampaignMatchesClassifySource(f *testing.F) {
	for _, s := range []struct{ query, referrer string }{
		{"utm_source=Google&utm_medium=CPC&utm_campaign=Shop", ""},
		{"gclid=1&fbclid=2", "https://www.facebook.com/"},
		{"fbclid=&fbclid=2&msclkid=3", ""},
		{"gclid=%zz&gclid=1", ""},
		{"g%63lid=1;x&ttclid=+", "https://WWW.www.google.de/search"},
		{"", "https://m.youtube.com/watch"},
		{"utm_source=E+Mail", "android-app://com.google.android.gm/"},
		{"", "https://news.ycombinator.com/item"},
		{"", "https://shop.example/other"},
		{"", "ftp://x.example/"},
	} {
		f.Add(s.query, s.referrer)
	}
	f.Fuzz(func(t *testing.T, rawQuery, referrer string) {
		q, _ := url.ParseQuery(rawQuery)
		want := refClassifySource(q, referrer, "Shop.example")
		if got := ClassifySource(q, referrer, "Shop.example"); got != want {
			t.Fatalf("ClassifySource(%q, %q) = %+v, before: %+v", rawQuery, referrer, got, want)
		}
		c := Campaign{Source: q.Get("utm_source"), Medium: q.Get("utm_medium"), Name: q.Get("utm_campaign"), ClickID: QueryClickID(rawQuery)}
		if got := ClassifyCampaign(c, referrerHostname(referrer), "Shop.example"); got != want {
			t.Fatalf("query %q referrer %q: %+v, ClassifySource: %+v", rawQuery, referrer, got, want)
		}
	})
}
