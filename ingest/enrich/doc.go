// Package enrich turns what a request says about a visitor into the dimensions
// Pulse stores: browser, operating system and device, referrer source and
// channel, campaign, country, and visitor and session ids derived without
// storing any personal data.
package enrich
