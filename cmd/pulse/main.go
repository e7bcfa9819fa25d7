// Command pulse runs the Pulse analytics service: `pulse dev` for a local
// instance with its own ClickHouse, `pulse serve` in production, `pulse migrate`
// to apply the schema, `pulse version`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "pulse:", err)
	var usage usageError
	if errors.As(err, &usage) {
		os.Exit(2)
	}
	os.Exit(1)
}
