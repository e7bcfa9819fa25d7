// Package sdkjs serves the built tracker (sdk-js/dist) at /js/pulse.js, beside it the full
// build and the npm module, each also under a versioned URL for long caching.
package sdkjs

import (
	"embed"
	"errors"
	"io/fs"

	"github.com/gofiber/fiber/v2"

	"github.com/pulse-analytics/pulse/internal/asset"
)

// dist holds the build outputs of `node sdk-js/build.mjs` present when the binary was
// built; from a clean checkout only its README.md, and the handler says how to build.
//
//go:embed dist
var dist embed.FS

// Files are the tracker files served under /js/.
var Files = []string{"pulse.js", "pulse.full.js", "pulse.mjs"}

const (
	// cacheShort lets browsers and proxies keep /js/pulse.js an hour, then revalidate by ETag,
	// so a new release reaches sites within the hour.
	cacheShort = "public, max-age=3600, stale-while-revalidate=86400"
	// cacheLong is for versioned URLs, whose content never changes.
	cacheLong = "public, max-age=31536000, immutable"
	// hashLen is the number of hex digits of the content hash in versioned URLs.
	hashLen = 12
	// missing is the answer while the tracker has not been built into the binary.
	missing = "the tracker is not built into this pulse binary: run `npm ci && node sdk-js/build.mjs`, then build pulse again\n"
)

// Dist returns the embedded build outputs.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: cannot happen
	}
	return sub
}

// Handler serves the tracker files read once from an fs.FS.
type Handler struct {
	files map[string]*asset.File
}

// New reads the tracker files of fsys (usually Dist()) and compresses them once. Missing
// files are answered with 503 and a message saying how to build them.
func New(fsys fs.FS) (*Handler, error) {
	h := &Handler{files: map[string]*asset.File{}}
	for _, name := range Files {
		raw, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f := asset.New(raw, "text/javascript; charset=utf-8", 0) // every byte of the tracker counts
		h.files[name] = f
	}
	return h, nil
}

// Path returns the versioned URL path of a tracker file ("pulse.js" → "/js/v/<hash>/pulse.js"),
// or its plain path when it is not built.
func (h *Handler) Path(name string) string {
	if f, ok := h.files[name]; ok {
		return "/js/v/" + f.Hash[:hashLen] + "/" + name
	}
	return "/js/" + name
}

// Register adds GET /js/<file> and GET /js/v/<hash>/<file> to r.
func (h *Handler) Register(r fiber.Router) {
	r.Get("/js/v/:hash/:name", h.serve)
	r.Get("/js/:name", h.serve)
}

func (h *Handler) serve(c *fiber.Ctx) error {
	name := c.Params("name")
	known := false
	for _, n := range Files {
		known = known || n == name
	}
	if !known {
		return fiber.ErrNotFound
	}
	f, ok := h.files[name]
	if !ok {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Status(fiber.StatusServiceUnavailable).SendString(missing)
	}
	cache := cacheShort
	if v := c.Params("hash"); v != "" {
		if v != f.Hash[:hashLen] {
			// An old version is gone: send the current one, briefly cached, rather than break the site.
			c.Set(fiber.HeaderCacheControl, cacheShort)
			return c.Redirect("/js/"+name, fiber.StatusFound)
		}
		cache = cacheLong
	}
	c.Set(fiber.HeaderCacheControl, cache)
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return f.Send(c)
}
