package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"type":"hello","v":1,"sdk":"pulse-js","sdk_version":"1.0.0"}`))
	f.Add([]byte(`{"type":"events","seq":1,"events":[{"id":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","type":"page","url":"https://a.example/?utm_source=x"}]}`))
	f.Add([]byte(`{"type":"ping","id":7}`))
	f.Add([]byte(`not json`))
	site := Site{TenantID: uuid.New(), ID: uuid.New(), PublicKey: "pk_fuzz"}
	received := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if !errors.Is(err, errFrame) || len(err.Error()) > 123 {
				t.Fatalf("error %q must wrap errFrame and fit a close reason", err)
			}
			return
		}
		switch fr.Type {
		case frameHello:
			if len(fr.SDK) > MaxSDKFieldBytes || len(fr.SDKVersion) > MaxSDKFieldBytes {
				t.Fatal("sdk fields not bounded")
			}
		case frameEvents:
			if fr.Seq < 1 {
				t.Fatalf("events frame with seq %d accepted", fr.Seq)
			}
			for i, raw := range fr.Events {
				e, evErr := parseEvent(raw, i, site, received)
				if evErr != nil {
					continue
				}
				if !eventTypes[e.Type] || len(e.Name) > MaxNameBytes || len(e.Title) > MaxTitleBytes || len(e.PropKeys) > MaxProps ||
					e.Time.After(received) || e.SiteID != site.ID {
					t.Fatalf("accepted event breaks a limit: %+v", e)
				}
			}
		case framePing:
			if len(fr.ID) > maxPingIDBytes {
				t.Fatal("ping id not bounded")
			}
			if len(fr.ID) > 0 && !json.Valid(appendPong(nil, fr.ID)) {
				t.Fatalf("pong for id %s is not JSON", fr.ID)
			}
		default:
			t.Fatalf("frame type %q accepted", fr.Type)
		}
	})
}

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"hello", `{"type":"hello","v":1}`, ""},
		{"unknown fields ignored", `{"type":"ping","later":{"x":1}}`, ""},
		{"array", `[1]`, "JSON object"},
		{"no type", `{"v":1}`, "needs a type"},
		{"seq zero", `{"type":"events","seq":0,"events":[]}`, "seq must be"},
		{"seq as string", `{"type":"events","seq":"1"}`, "field seq must be a int64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFrame([]byte(tt.in))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("decodeFrame(%s) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestAckTrackerIsCumulative(t *testing.T) {
	a := ackTracker{signal: make(chan struct{}, 1)}
	a.push(1, false)
	a.push(2, true) // all of frame 2 rejected: answered, but after 1
	a.push(4, false)
	if seq, n := a.take(); n != 0 || seq != 0 {
		t.Fatalf("take before any commit = %d, %d", seq, n)
	}
	a.commit(4)
	if seq, n := a.take(); n != 0 || seq != 0 {
		t.Fatalf("ack %d after committing only 4; frame 1 is still pending", seq)
	}
	a.commit(1)
	if seq, n := a.take(); seq != 4 || n != 3 {
		t.Fatalf("take = %d, %d; want ack 4 answering 3 frames", seq, n)
	}
	if a.pendingCount() != 0 {
		t.Fatal("frames still pending")
	}
}

func TestDedupForgetsOldestAndWritesUncommittedAgain(t *testing.T) {
	d := newDedup(2)
	site := uuid.New()
	ev := someEvents(3)
	ids := func(es ...Event) []uuid.UUID {
		out := make([]uuid.UUID, len(es))
		for i := range es {
			out[i] = es[i].ID
		}
		return out
	}
	write, fresh, dups := d.filter(site, append([]Event(nil), ev[:2]...))
	if len(write) != 2 || len(fresh) != 2 || dups != 0 {
		t.Fatalf("first sight: write %d fresh %d dups %d", len(write), len(fresh), dups)
	}
	// Not taken by the batcher yet (its Add may still fail): not seen.
	if _, fresh, _ = d.filter(site, append([]Event(nil), ev[0])); len(fresh) != 1 {
		t.Fatal("an id counted as seen before the batcher held its event")
	}
	if unseen, _ := d.unseen(site, append([]Event(nil), ev[0])); len(unseen) != 1 {
		t.Fatal("an id left out of an HTTP request before the batcher held its event")
	}
	d.rememberIDs(site, ids(ev[0], ev[1]))
	// Held, not committed: written again, not fresh; left out of HTTP requests.
	write, fresh, dups = d.filter(site, append([]Event(nil), ev[0]))
	if len(write) != 1 || len(fresh) != 0 || dups != 0 {
		t.Fatalf("uncommitted resend: write %d fresh %d dups %d", len(write), len(fresh), dups)
	}
	if unseen, n := d.unseen(site, append([]Event(nil), ev[0])); len(unseen) != 0 || n != 1 {
		t.Fatal("an id the batcher holds was not left out of an HTTP request")
	}
	d.committed(site, ids(ev[0], ev[1]))
	write, _, dups = d.filter(site, append([]Event(nil), ev[0], ev[1]))
	if len(write) != 0 || dups != 2 {
		t.Fatalf("committed resend: write %d dups %d, want 0 and 2", len(write), dups)
	}
	// A third id pushes out the oldest; the same id of another site is fresh.
	d.rememberIDs(site, ids(ev[2]))
	if write, _, _ = d.filter(site, append([]Event(nil), ev[0])); len(write) != 1 {
		t.Fatal("the oldest id was not forgotten")
	}
	if _, fresh, _ = d.filter(uuid.New(), append([]Event(nil), ev[1])); len(fresh) != 1 {
		t.Fatal("an id of another site counted as a duplicate")
	}
	// Given up at shutdown: an uncommitted id is forgotten, a committed one stays.
	d.forget(site, ids(ev[1], ev[2]))
	if _, fresh, dups = d.filter(site, append([]Event(nil), ev[1], ev[2])); len(fresh) != 1 || dups != 1 {
		t.Fatalf("after forget: fresh %d dups %d, want ev[2] fresh and ev[1] still committed", len(fresh), dups)
	}
	// A commit that comes before the Add's caller remembers the ids.
	other := someEvents(1)
	d.committed(site, ids(other...))
	d.rememberIDs(site, ids(other...))
	if _, _, dups = d.filter(site, append([]Event(nil), other...)); dups != 1 {
		t.Fatal("rememberIDs after the commit made a committed id uncommitted")
	}
}
