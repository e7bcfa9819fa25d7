package stream

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/uuid"
)

// Frames on the wire (docs/protocol.md, live stream, "Frames").
type snapshotFrame struct {
	Type   string    `json:"type"`
	Site   uuid.UUID `json:"site"`
	Seq    uint64    `json:"seq"`
	Missed uint64    `json:"missed"`
	TickMS int64     `json:"tick_ms"`
	State  *Snapshot `json:"state"`
}

type deltaFrame struct {
	Type    string    `json:"type"`
	Site    uuid.UUID `json:"site"`
	Seq     uint64    `json:"seq"`
	Prev    uint64    `json:"prev"`
	Missed  uint64    `json:"missed,omitempty"`
	Changes *Delta    `json:"changes"`
}

// frame is one encoded frame queued to subscribers; frames are shared and
// never changed once built.
type frame struct {
	seq, prev uint64
	snapshot  bool
	missed    uint64
	// wire is the frame as a WebSocket text message (header and payload),
	// written as is to every WebSocket subscriber; data is its JSON payload.
	wire, data []byte
	sseOnce    sync.Once
	sseEvent   []byte
}

// sse returns the frame as a Server-Sent Event, built once.
func (f *frame) sse() []byte {
	f.sseOnce.Do(func() {
		kind := "delta"
		if f.snapshot {
			kind = "snapshot"
		}
		f.sseEvent = fmt.Appendf(nil, "event: %s\nid: %d\ndata: %s\n\n", kind, f.seq, f.data)
	})
	return f.sseEvent
}

func newFrame(seq, prev, missed uint64, snapshot bool, v any) *frame {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("stream: encode frame: %v", err)) // plain structs: cannot fail
	}
	wire := wsMessage(wsText, data)
	return &frame{seq: seq, prev: prev, missed: missed, snapshot: snapshot, wire: wire, data: wire[len(wire)-len(data):]}
}

func (h *Hub) encodeDelta(site uuid.UUID, seq, prev, missed uint64, d *Delta) *frame {
	return newFrame(seq, prev, missed, false,
		deltaFrame{Type: "delta", Site: site, Seq: seq, Prev: prev, Missed: missed, Changes: d})
}

func (h *Hub) encodeSnapshot(site uuid.UUID, seq, missed uint64, snap *Snapshot) *frame {
	return newFrame(seq, 0, missed, true, snapshotFrame{Type: "snapshot", Site: site, Seq: seq, Missed: missed,
		TickMS: h.cfg.Tick.Milliseconds(), State: snap})
}

// viewFrames is one delta encoded for each set of views (a handful).
type viewFrames []viewFrame

type viewFrame struct {
	views View
	f     *frame
}

func (vf viewFrames) of(v View) *frame {
	for _, x := range vf {
		if x.views == v {
			return x.f
		}
	}
	return nil
}
