package dashboard

import (
	"testing"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }
