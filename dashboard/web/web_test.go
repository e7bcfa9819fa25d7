package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gofiber/fiber/v2"
)

func testApp(t *testing.T, fsys fstest.MapFS) *fiber.App {
	t.Helper()
	h, err := New(fsys)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Get("/api/v1/me", func(c *fiber.Ctx) error { return c.SendString("me") })
	h.Register(app)
	return app
}

func get(t *testing.T, app *fiber.App, path string, header ...string) (int, string, map[string]string) {
	t.Helper()
	return do(t, app, "GET", path, header...)
}

func do(t *testing.T, app *fiber.App, method, path string, header ...string) (int, string, map[string]string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := app.Test(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	h := map[string]string{}
	for k := range resp.Header {
		h[k] = resp.Header.Get(k)
	}
	return resp.StatusCode, string(body), h
}

func TestServesBuiltDashboard(t *testing.T) {
	index := "<!doctype html><title>Pulse</title>" + strings.Repeat("<!-- padding -->", 100)
	app := testApp(t, fstest.MapFS{
		"index.html":          {Data: []byte(index)},
		"assets/app-AB12.js":  {Data: []byte("console.log(1)")},
		"assets/app-AB12.css": {Data: []byte("body{}")},
	})
	tests := []struct {
		name, path string
		status     int
		body       string
		cache      string
	}{
		{"root", "/", 200, index, cacheIndex},
		{"client-side route", "/sites/4a4b9b0e/report", 200, index, cacheIndex},
		{"share link", "/share/4a4b9b0e", 200, index, cacheIndex},
		{"hashed asset", "/assets/app-AB12.js", 200, "console.log(1)", cacheAssets},
		{"unknown asset", "/assets/nope.js", 404, "", ""},
		{"API route still answers", "/api/v1/me", 200, "me", ""},
		{"unknown API path is not the page", "/api/v1/nope", 404, "", ""},
		{"unknown live path is not the page", "/v1/nope", 404, "", ""},
		{"unknown tracker path is not the page", "/js/nope.js", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := get(t, app, tt.path)
			if status != tt.status {
				t.Fatalf("GET %s = %d, want %d", tt.path, status, tt.status)
			}
			if tt.body != "" && body != tt.body {
				t.Errorf("GET %s body = %.60q, want %.60q", tt.path, body, tt.body)
			}
			if tt.cache != "" && h["Cache-Control"] != tt.cache {
				t.Errorf("GET %s Cache-Control = %q, want %q", tt.path, h["Cache-Control"], tt.cache)
			}
		})
	}
	t.Run("other methods on unknown paths stay 404", func(t *testing.T) {
		for _, p := range []string{"/api/v1/query", "/sites/x"} {
			if status, _, _ := do(t, app, "POST", p); status != 404 {
				t.Errorf("POST %s = %d, want 404", p, status)
			}
		}
	})
	t.Run("page headers", func(t *testing.T) {
		_, _, h := get(t, app, "/")
		if !strings.Contains(h["Content-Security-Policy"], "script-src 'self'") || h["Content-Type"] != "text/html; charset=utf-8" {
			t.Errorf("headers %v", h)
		}
	})
	t.Run("compressed and revalidated", func(t *testing.T) {
		_, gz, h := get(t, app, "/", "Accept-Encoding", "gzip")
		if h["Content-Encoding"] != "gzip" || len(gz) >= len(index) {
			t.Errorf("gzip: encoding %q, %d bytes of %d", h["Content-Encoding"], len(gz), len(index))
		}
		status, _, _ := get(t, app, "/", "If-None-Match", h["Etag"])
		if h["Etag"] == "" || status != 304 {
			t.Errorf("If-None-Match %q = %d, want 304", h["Etag"], status)
		}
	})
}

func TestNotBuilt(t *testing.T) {
	app := testApp(t, fstest.MapFS{"README.md": {Data: []byte("placeholder")}})
	for _, p := range []string{"/", "/sites/x/live"} {
		status, body, _ := get(t, app, p)
		if status != 503 || !strings.Contains(body, "node dashboard/web/build.mjs") {
			t.Errorf("GET %s = %d %.80q, want 503 and how to build", p, status, body)
		}
	}
	if status, body, _ := get(t, app, "/api/v1/me"); status != 200 || body != "me" {
		t.Errorf("API with no dashboard = %d %q", status, body)
	}
}

func TestEmbeddedDistReads(t *testing.T) {
	if _, err := New(Dist()); err != nil {
		t.Fatal(err)
	}
}
