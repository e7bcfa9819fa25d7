package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Frame types of the ingest protocol (docs/protocol.md).
const (
	frameHello   = "hello"
	frameEvents  = "events"
	framePing    = "ping"
	frameWelcome = "welcome"
	frameAck     = "ack"
	frameError   = "error"
	frameBusy    = "busy"
	framePong    = "pong"
)

// Error codes of error frames.
const (
	codeInvalidEvent = "invalid_event"
	codeBadFrame     = "bad_frame"
)

// maxPingIDBytes bounds the id a ping may carry for its pong to echo.
const maxPingIDBytes = 64

// clientFrame is any frame a client sends; which fields matter depends on Type.
type clientFrame struct {
	Type string `json:"type"`
	// hello
	V          int    `json:"v"`
	SDK        string `json:"sdk"`
	SDKVersion string `json:"sdk_version"`
	Resume     string `json:"resume"`
	Identity   string `json:"identity"`
	// events
	Seq    int64             `json:"seq"`
	Events []json.RawMessage `json:"events"`
	// ping
	ID json.RawMessage `json:"id"`
}

// errFrame says why a frame breaks the protocol (close CloseProtocolError).
var errFrame = errors.New("protocol error")

// decodeFrame parses one client frame. Its errors wrap errFrame and say what
// was wrong in words fit for a close reason (at most 123 bytes).
func decodeFrame(data []byte) (clientFrame, error) {
	var f clientFrame
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return f, fmt.Errorf("%w: a frame must be a JSON object", errFrame)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return f, fmt.Errorf("%w: field %s must be a %s", errFrame, truncate(typeErr.Field, 32), typeErr.Type)
		}
		return f, fmt.Errorf("%w: a frame must be a JSON object", errFrame)
	}
	switch f.Type {
	case frameHello:
		f.SDK, f.SDKVersion = truncate(f.SDK, MaxSDKFieldBytes), truncate(f.SDKVersion, MaxSDKFieldBytes)
	case frameEvents:
		if f.Seq < 1 {
			return f, fmt.Errorf("%w: events.seq must be an integer of at least 1", errFrame)
		}
	case framePing:
		if len(f.ID) > maxPingIDBytes {
			f.ID = nil
		}
	case "":
		return f, fmt.Errorf("%w: a frame needs a type", errFrame)
	default:
		return f, fmt.Errorf("%w: unknown frame type %s", errFrame, strconv.Quote(truncate(f.Type, 32)))
	}
	return f, nil
}

// welcomeFrame answers hello.
type welcomeFrame struct {
	Type    string        `json:"type"`
	V       int           `json:"v"`
	Session string        `json:"session"`
	Resume  string        `json:"resume"`
	Resumed bool          `json:"resumed"`
	LastSeq int64         `json:"last_seq"`
	Limits  welcomeLimits `json:"limits"`
}

type welcomeLimits struct {
	MaxFrameBytes     int   `json:"max_frame_bytes"`
	MaxEventsPerFrame int   `json:"max_events_per_frame"`
	FramesPerSecond   int   `json:"frames_per_second"`
	PingIntervalMS    int64 `json:"ping_interval_ms"`
}

// errorFrame reports one rejected event (Index ≥ 0) or a refused frame (-1).
type errorFrame struct {
	Type    string `json:"type"`
	Seq     int64  `json:"seq"`
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func appendAck(buf []byte, seq int64) []byte {
	buf = append(buf, `{"type":"ack","seq":`...)
	buf = strconv.AppendInt(buf, seq, 10)
	return append(buf, '}')
}

func appendBusy(buf []byte, retryAfterMS int64) []byte {
	buf = append(buf, `{"type":"busy","retry_after_ms":`...)
	buf = strconv.AppendInt(buf, retryAfterMS, 10)
	return append(buf, '}')
}

func appendPong(buf []byte, id json.RawMessage) []byte {
	buf = append(buf, `{"type":"pong"`...)
	if len(id) > 0 {
		buf = append(buf, `,"id":`...)
		buf = append(buf, id...)
	}
	return append(buf, '}')
}
