package stream

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the live-stream series exported on /metrics.
type metrics struct {
	subscribers prometheus.Gauge
	sites       prometheus.Gauge
	events      prometheus.Counter
	duplicates  prometheus.Counter
	deltas      prometheus.Counter
	snapshots   prometheus.Counter
	coalesced   prometheus.Counter
	resyncs     prometheus.Counter
	closes      *prometheus.CounterVec
	tick        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_live_subscribers", Help: "Open live subscriptions (WebSocket and SSE).",
		}),
		sites: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_live_sites", Help: "Sites with live state in memory.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_live_events_total", Help: "Events counted by the live state.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_live_duplicates_total", Help: "Resent events (known id) not counted again.",
		}),
		deltas: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_live_deltas_sent_total", Help: "Delta frames written to subscribers.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_live_snapshots_sent_total", Help: "Snapshot frames written to subscribers (first and resync).",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_live_coalesced_total", Help: "Times a full send queue was coalesced into one catch-up frame.",
		}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_live_resyncs_total", Help: "Catch-ups that needed a fresh snapshot (subscriber beyond the kept history).",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_live_closes_total", Help: "Live subscriptions ended by the server, by close code.",
		}, []string{"code"}),
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pulse_live_tick_seconds", Help: "Time to compute and fan out one tick over all sites.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
	}
	reg.MustRegister(m.subscribers, m.sites, m.events, m.duplicates, m.deltas, m.snapshots,
		m.coalesced, m.resyncs, m.closes, m.tick)
	return m
}

func (m *metrics) closed(code int) { m.closes.WithLabelValues(strconv.Itoa(code)).Inc() }

// sent counts n subscribers handed frame f.
func (m *metrics) sent(f *frame, n int) {
	if f.snapshot {
		m.snapshots.Add(float64(n))
	} else {
		m.deltas.Add(float64(n))
	}
}
