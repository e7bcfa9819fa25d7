// Command benchjson turns `go test -bench` output into the JSON lines of
// `make bench`: one object per figure that its benchmark compares with a
// same-run limit, reported as the metrics "UNIT" and "limit-UNIT".
//
//	{"name":"ingest_insert","value":812345,"unit":"rows/s","limit":1530000,"ratio":0.53}
//
// Other lines pass through to stderr so a failing benchmark stays visible.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

func main() {
	if err := convert(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchjson:", err)
		os.Exit(1)
	}
}

// figure is one line of make bench's output.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Limit float64 `json:"limit"`
	Ratio float64 `json:"ratio"`
}

var procSuffix = regexp.MustCompile(`-\d+$`)

func convert(in io.Reader, out, passthrough io.Writer) error {
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			fmt.Fprintln(passthrough, line)
			continue
		}
		name := snake(procSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), ""))
		metrics := map[string]float64{}
		var units []string
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			metrics[fields[i+1]] = v
			units = append(units, fields[i+1])
		}
		for _, u := range units {
			limit, ok := metrics["limit-"+u]
			if !ok {
				continue
			}
			f := figure{Name: name, Value: metrics[u], Unit: u, Limit: limit}
			if limit != 0 {
				f.Ratio = float64(int(metrics[u]/limit*1000+0.5)) / 1000
			}
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// snake turns "IngestInsert" into "ingest_insert" and "Fanout/1k" into "fanout_1k".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 && !unicode.IsUpper(rune(s[i-1])) && s[i-1] != '/' {
			b.WriteByte('_')
		}
		if r == '/' {
			r = '_'
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
