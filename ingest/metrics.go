package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest counters exported on /metrics.
type Metrics struct {
	received      prometheus.Counter
	rejected      *prometheus.CounterVec
	written       prometheus.Counter
	lost          prometheus.Counter
	insertErrors  prometheus.Counter
	insertSeconds prometheus.Histogram
	batchRows     prometheus.Histogram
	buffered      prometheus.Gauge
	bufferedBytes prometheus.Gauge
	accepted      prometheus.Counter
	duplicates    prometheus.Counter
	connections   prometheus.Gauge
	frames        *prometheus.CounterVec
	closes        *prometheus.CounterVec
	busy          prometheus.Counter
	paced         prometheus.Counter
	acksPending   prometheus.Gauge
}

// NewMetrics creates the ingest metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_events_received_total", Help: "Events received, valid or not.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_events_rejected_total", Help: "Events rejected, by the field that was wrong.",
		}, []string{"field"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_events_written_total", Help: "Events committed to ClickHouse.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_events_lost_total", Help: "Accepted events the final flush could not write before its timeout.",
		}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_insert_errors_total", Help: "Failed ClickHouse inserts (each is retried).",
		}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pulse_ingest_insert_seconds", Help: "Duration of successful ClickHouse inserts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pulse_ingest_batch_rows", Help: "Rows per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_ingest_buffered_events", Help: "Events accepted and waiting for their ClickHouse insert.",
		}),
		bufferedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_ingest_collecting_bytes", Help: "Approximate memory of the events in the block being collected.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_events_accepted_total", Help: "Events that passed validation and were handed to the batcher.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_events_duplicate_total", Help: "Resent events recognised by id and not written again: acknowledged from the memory of recent ids, or found stored by the writer's lookup.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_ingest_connections", Help: "Open ingest WebSocket connections.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_frames_total", Help: "Frames received on ingest WebSockets, by frame type.",
		}, []string{"type"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_closes_total", Help: "Ingest WebSockets closed by the server, by close code.",
		}, []string{"code"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_busy_total", Help: "busy frames sent: a connection waited for room in the batcher.",
		}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_ingest_frames_paced_total", Help: "Frames that waited for the connection's frame rate before they were handled.",
		}),
		acksPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_ingest_acks_pending", Help: "Events frames received and not yet acknowledged.",
		}),
	}
	reg.MustRegister(m.received, m.rejected, m.written, m.lost, m.insertErrors, m.insertSeconds, m.batchRows, m.buffered,
		m.bufferedBytes, m.accepted, m.duplicates, m.connections, m.frames, m.closes, m.busy, m.paced, m.acksPending)
	return m
}
