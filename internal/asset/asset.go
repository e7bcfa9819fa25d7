// Package asset serves files built into the binary (the tracker, the web
// dashboard): each is hashed and compressed with gzip and brotli once, then
// answered in the best encoding the client accepts, with an ETag.
package asset

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

// MinCompress is the smallest file worth compressing, in bytes, for callers
// that serve many files of any size.
const MinCompress = 1024

// File is one served file.
type File struct {
	Raw, Gzip, Brotli []byte // Gzip and Brotli are nil when not worth it
	// Type is the Content-Type.
	Type string
	// Hash is the hex SHA-256 of Raw.
	Hash string
}

// New hashes raw and, when it is text of at least minSize bytes, compresses it.
func New(raw []byte, typ string, minSize int) *File {
	sum := sha256.Sum256(raw)
	f := &File{Raw: raw, Type: typ, Hash: hex.EncodeToString(sum[:])}
	if len(raw) < minSize || !compressible(typ) {
		return f
	}
	var b bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	gw.Write(raw)
	gw.Close()
	f.Gzip = bytes.Clone(b.Bytes())
	b.Reset()
	bw := brotli.NewWriterOptions(&b, brotli.WriterOptions{Quality: brotli.BestCompression, LGWin: brotliWindow(len(raw))})
	bw.Write(raw)
	bw.Close()
	f.Brotli = bytes.Clone(b.Bytes())
	return f
}

// brotliWindow is the log2 of the smallest brotli window (1<<lgwin - 16
// bytes, lgwin 10 to 24) that holds n bytes: a larger one compresses the file
// no better, and at the best quality the encoder allocates eight bytes per
// byte of window (32 MiB at the default 22), for every file.
func brotliWindow(n int) int {
	lg := 10
	for lg < 24 && 1<<lg-16 < n {
		lg++
	}
	return lg
}

func compressible(typ string) bool {
	return strings.HasPrefix(typ, "text/") || strings.Contains(typ, "javascript") || strings.Contains(typ, "json") || strings.Contains(typ, "svg")
}

// ETag is the file's entity tag: the quoted start of its hash.
func (f *File) ETag() string { return `"` + f.Hash[:16] + `"` }

// Send writes f in the best encoding the client accepts, or 304 when the
// client has it already. Cache-Control is the caller's.
func (f *File) Send(c *fiber.Ctx) error {
	etag := f.ETag()
	c.Set(fiber.HeaderContentType, f.Type)
	c.Set(fiber.HeaderETag, etag)
	c.Vary(fiber.HeaderAcceptEncoding)
	if match := c.Get(fiber.HeaderIfNoneMatch); match != "" && strings.Contains(match, etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	switch ae := c.Get(fiber.HeaderAcceptEncoding); {
	case f.Brotli != nil && strings.Contains(ae, "br"):
		c.Set(fiber.HeaderContentEncoding, "br")
		return c.Send(f.Brotli)
	case f.Gzip != nil && strings.Contains(ae, "gzip"):
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(f.Gzip)
	}
	return c.Send(f.Raw)
}
