// Package web serves the dashboard's web UI: the esbuild output of build.mjs, embedded from
// dist, at / with index.html answering every client-side route.
package web

import (
	"embed"
	"errors"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/internal/asset"
)

// dist holds the build outputs of `node dashboard/web/build.mjs` present when the binary
// was built; from a clean checkout only its README.md, and the handler says how to build.
//
//go:embed all:dist
var dist embed.FS

const (
	// cacheAssets is for /assets/ files, whose names carry a content hash.
	cacheAssets = "public, max-age=31536000, immutable"
	// cacheIndex makes browsers revalidate index.html, so a new build is seen at once.
	cacheIndex = "no-cache"
	// csp lets the UI load only its own scripts, styles, fonts and connections.
	// Inline styles are allowed for the charting library's positioned elements.
	csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

// notBuilt is the answer while the dashboard has not been built into the binary.
const notBuilt = `<!doctype html>
<meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Pulse: dashboard not built</title>
<style>body{font:16px/1.6 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1.5rem;color:#1f2937}
code,pre{background:#f3f4f6;border-radius:6px;padding:.15rem .35rem}pre{padding:1rem;overflow:auto}</style>
<h1>The dashboard is not built into this binary</h1>
<p>Pulse is running (the API, the tracker and the live stream work), but this <code>pulse</code>
binary was built without the dashboard's assets. Build them, then build Pulse again:</p>
<pre>npm ci
node dashboard/web/build.mjs
go build -o bin/pulse ./cmd/pulse</pre>
<p><code>make build</code> and <code>make run</code> do all of it.</p>
`

// passThrough are the path prefixes that never fall back to index.html: the API, the
// ingest and live endpoints, and the tracker answer their own 404s.
var passThrough = []string{"/api/", "/v1/", "/js/", "/assets/"}

// Dist returns the embedded build outputs.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: cannot happen
	}
	return sub
}

// Handler serves the dashboard files, read and compressed once.
type Handler struct {
	index  *asset.File            // nil when the dashboard is not built
	assets map[string]*asset.File // by name under assets/
}

// New reads index.html and assets/ of fsys (usually Dist()). Without index.html the
// handler answers / with a page saying how to build the dashboard.
func New(fsys fs.FS) (*Handler, error) {
	h := &Handler{assets: map[string]*asset.File{}}
	raw, err := fs.ReadFile(fsys, "index.html")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return h, nil
	case err != nil:
		return nil, err
	}
	h.index = asset.New(raw, "text/html; charset=utf-8", asset.MinCompress)
	err = fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		typ := mime.TypeByExtension(path.Ext(p))
		if typ == "" {
			typ = "application/octet-stream"
		}
		h.assets[strings.TrimPrefix(p, "assets/")] = asset.New(raw, typ, asset.MinCompress)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return h, err
}

// Built reports whether the dashboard's assets are in the binary.
func (h *Handler) Built() bool { return h.index != nil }

// Register adds GET /assets/<file> and, last, the page for GET / and every other GET path
// that is not under an API, ingest, live or tracker prefix (client-side routes). Register it
// after every other route. The page is a middleware rather than a GET /* route, so a POST to
// an unknown path stays a 404 instead of becoming a 405.
func (h *Handler) Register(r fiber.Router) {
	r.Get("/assets/:name", h.asset)
	r.Use(h.page)
}

func (h *Handler) asset(c *fiber.Ctx) error {
	f, ok := h.assets[c.Params("name")]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderCacheControl, cacheAssets)
	return f.Send(c)
}

func (h *Handler) page(c *fiber.Ctx) error {
	if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
		return c.Next()
	}
	p := c.Path()
	for _, prefix := range passThrough {
		if strings.HasPrefix(p, prefix) {
			return c.Next()
		}
	}
	c.Set(fiber.HeaderContentSecurityPolicy, csp)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderCacheControl, cacheIndex)
	if h.index == nil {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.Status(fiber.StatusServiceUnavailable).SendString(notBuilt)
	}
	return h.index.Send(c)
}
