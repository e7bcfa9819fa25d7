package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestConvertPairsFiguresWithLimits(t *testing.T) {
	in := `goos: linux
BenchmarkIngestInsert-2   	      40	  25000000 ns/op	    400000 rows/s	   1600000 limit-rows/s
BenchmarkNoLimit-2   	      10	  1000 ns/op
PASS
`
	var out, pass bytes.Buffer
	if err := convert(strings.NewReader(in), &out, &pass); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"ingest_insert","value":400000,"unit":"rows/s","limit":1600000,"ratio":0.25}` + "\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	if !strings.Contains(pass.String(), "PASS") || strings.Contains(pass.String(), "Benchmark") {
		t.Fatalf("passthrough = %q", pass.String())
	}
}
