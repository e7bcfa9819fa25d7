package sdkjs

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

const script = "(()=>{console.log('pulse')})();"

func app(t *testing.T, fsys fstest.MapFS) (*fiber.App, *Handler) {
	t.Helper()
	h, err := New(fsys)
	if err != nil {
		t.Fatal(err)
	}
	a := fiber.New()
	h.Register(a)
	return a, h
}

func get(t *testing.T, a *fiber.App, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServe(t *testing.T) {
	a, h := app(t, fstest.MapFS{"pulse.js": {Data: []byte(script)}, "pulse.full.js": {Data: []byte(script + "//full")}})
	versioned := h.Path("pulse.js")
	if !strings.HasPrefix(versioned, "/js/v/") || !strings.HasSuffix(versioned, "/pulse.js") || len(versioned) != len("/js/v/123456789012/pulse.js") {
		t.Fatalf("Path(pulse.js) = %q", versioned)
	}
	tests := []struct {
		name, path, encoding string
		status               int
		cache, body          string
	}{
		{"plain", "/js/pulse.js", "", 200, cacheShort, script},
		{"full build", "/js/pulse.full.js", "", 200, cacheShort, script + "//full"},
		{"versioned", versioned, "", 200, cacheLong, script},
		{"gzip", "/js/pulse.js", "gzip", 200, cacheShort, script},
		{"brotli preferred", "/js/pulse.js", "gzip, deflate, br", 200, cacheShort, script},
		{"unknown file", "/js/other.js", "", 404, "", ""},
		{"not built", "/js/pulse.mjs", "", 503, "no-store", missing},
		{"old version", "/js/v/000000000000/pulse.js", "", 302, cacheShort, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, a, tt.path, "Accept-Encoding", tt.encoding)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Cache-Control"); tt.cache != "" && got != tt.cache {
				t.Errorf("Cache-Control %q, want %q", got, tt.cache)
			}
			switch resp.Header.Get("Content-Encoding") {
			case "gzip":
				r, err := gzip.NewReader(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(r)
				body = string(b)
			case "br":
				b, _ := io.ReadAll(brotli.NewReader(strings.NewReader(body)))
				body = string(b)
			}
			if tt.encoding != "" && tt.status == 200 && resp.Header.Get("Content-Encoding") != map[bool]string{true: "br", false: "gzip"}[strings.Contains(tt.encoding, "br")] {
				t.Errorf("Content-Encoding %q for Accept-Encoding %q", resp.Header.Get("Content-Encoding"), tt.encoding)
			}
			if tt.body != "" && body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if tt.status == 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if tt.status == 302 && resp.Header.Get("Location") != "/js/pulse.js" {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
		})
	}
}

func TestServeETag(t *testing.T) {
	a, _ := app(t, fstest.MapFS{"pulse.js": {Data: []byte(script)}})
	resp, _ := get(t, a, "/js/pulse.js")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp, body := get(t, a, "/js/pulse.js", "If-None-Match", etag)
	if resp.StatusCode != 304 || body != "" {
		t.Fatalf("revalidation: %d %q, want 304 and no body", resp.StatusCode, body)
	}
	resp, _ = get(t, a, "/js/pulse.js", "If-None-Match", `"stale"`)
	if resp.StatusCode != 200 {
		t.Fatalf("stale ETag: %d, want 200", resp.StatusCode)
	}
}

// TestEmbedded checks the embedded dist: from a clean checkout it holds only the
// placeholder and every file answers 503; after a build it serves the build.
func TestEmbedded(t *testing.T) {
	h, err := New(Dist())
	if err != nil {
		t.Fatal(err)
	}
	a := fiber.New()
	h.Register(a)
	resp, body := get(t, a, "/js/pulse.js")
	if _, built := h.files["pulse.js"]; built {
		if resp.StatusCode != 200 || !bytes.Contains([]byte(body), []byte("/v1/ingest")) {
			t.Fatalf("built tracker: %d %.80q", resp.StatusCode, body)
		}
	} else if resp.StatusCode != 503 || body != missing {
		t.Fatalf("no build: %d %q, want 503 and how to build", resp.StatusCode, body)
	}
}
