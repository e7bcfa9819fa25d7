package asset

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/andybalholm/brotli"
)

// TestCompressedFilesDecodeToTheRaw: around each window size the brotli and
// gzip bodies decode to the file, and brotli's is smaller than it.
func TestCompressedFilesDecodeToTheRaw(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"function ", "return ", "const ", "pulse", "(e)", "{", "}", ";\n", "visitor", "=>", "0x", "analytics "}
	for _, n := range []int{1024, 1<<10 - 16, 1<<10 - 15, 1 << 16, 1<<16 + 1, 300_000, 1<<20 + 7} {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			fmt.Fprint(&b, r.IntN(1000))
		}
		raw := b.Bytes()[:n]
		f := New(raw, "text/javascript", 0)
		br, err := io.ReadAll(brotli.NewReader(bytes.NewReader(f.Brotli)))
		if err != nil || !bytes.Equal(br, raw) {
			t.Fatalf("%d bytes: brotli decodes to %d bytes (%v), not the file", n, len(br), err)
		}
		gr, err := gzip.NewReader(bytes.NewReader(f.Gzip))
		if err != nil {
			t.Fatal(err)
		}
		gz, err := io.ReadAll(gr)
		if err != nil || !bytes.Equal(gz, raw) {
			t.Fatalf("%d bytes: gzip decodes to %d bytes (%v), not the file", n, len(gz), err)
		}
		if len(f.Brotli) >= n/2 {
			t.Errorf("%d bytes of text compress to %d with brotli", n, len(f.Brotli))
		}
	}
}
