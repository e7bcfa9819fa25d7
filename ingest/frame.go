package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
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
	Type string
	// hello
	V          int
	SDK        string
	SDKVersion string
	Resume     string
	Identity   string
	// events
	Seq int64
	// Events holds each event's JSON text, substrings of the frame's text.
	Events []string
	// ping: the id's JSON text, echoed by the pong
	ID string
}

// errFrame says why a frame breaks the protocol (close CloseProtocolError).
var errFrame = errors.New("protocol error")

// decodeFrame parses one client frame. Its errors wrap errFrame and say what
// was wrong in words fit for a close reason (at most 123 bytes).
func decodeFrame(data []byte) (clientFrame, error) {
	return decodeFrameInto(data, nil)
}

// decodeFrameInto is decodeFrame appending the events to events[:0], so that
// a caller can reuse that slice. The frame's strings are substrings of one
// copy of data.
func decodeFrameInto(data []byte, events []string) (clientFrame, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return clientFrame{Events: events[:0]}, fmt.Errorf("%w: a frame must be a JSON object", errFrame)
	}
	return decodeFrameText(string(data), events)
}

// decodeFrameText parses a frame's text (trimmed, starting with '{') as
// encoding/json would decode it into the frame's fields. Events are appended to
// events[:0], so a caller can reuse that slice.
func decodeFrameText(text string, events []string) (clientFrame, error) {
	f := clientFrame{Events: events[:0]}
	var typeField, typeName string // encoding/json's first type error: the field and its Go type
	mismatch := func(field, goType string) {
		if typeField == "" {
			typeField, typeName = field, goType
		}
	}
	sc := newScanner(text)
	for more := sc.beginObject(); more; more = sc.nextMember() {
		key := sc.memberKey()
		kind, raw := sc.value(1)
		if !sc.ok {
			break
		}
		switch {
		case fieldIs(key, "type"):
			frameString(&f.Type, kind, raw, "type", mismatch)
		case fieldIs(key, "v"):
			if n, ok := frameInt(kind, raw, "v", "int", mismatch); ok {
				f.V = int(n)
			}
		case fieldIs(key, "sdk"):
			frameString(&f.SDK, kind, raw, "sdk", mismatch)
		case fieldIs(key, "sdk_version"):
			frameString(&f.SDKVersion, kind, raw, "sdk_version", mismatch)
		case fieldIs(key, "resume"):
			frameString(&f.Resume, kind, raw, "resume", mismatch)
		case fieldIs(key, "identity"):
			frameString(&f.Identity, kind, raw, "identity", mismatch)
		case fieldIs(key, "seq"):
			if n, ok := frameInt(kind, raw, "seq", "int64", mismatch); ok {
				f.Seq = n
			}
		case fieldIs(key, "events"):
			switch kind {
			case kindArray:
				f.Events = f.Events[:0]
				el := newScanner(raw)
				for more := el.beginArray(); more; more = el.nextElement() {
					_, ev := el.value(2)
					f.Events = append(f.Events, ev)
				}
			case kindNull:
				f.Events = f.Events[:0]
			default:
				mismatch("events", "[]json.RawMessage")
			}
		case fieldIs(key, "id"):
			f.ID = raw
		}
	}
	if !sc.ok || !sc.end() {
		return clientFrame{Events: f.Events[:0]}, fmt.Errorf("%w: a frame must be a JSON object", errFrame)
	}
	if typeField != "" {
		return f, fmt.Errorf("%w: field %s must be a %s", errFrame, truncate(typeField, 32), typeName)
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
			f.ID = ""
		}
		// The pong echoes the id's text in a text frame, which must be
		// UTF-8 (RFC 6455): a ping whose id is not is refused, not echoed.
		if !utf8.ValidString(f.ID) {
			return f, fmt.Errorf("%w: ping id must be valid UTF-8", errFrame)
		}
	case "":
		return f, fmt.Errorf("%w: a frame needs a type", errFrame)
	default:
		return f, fmt.Errorf("%w: unknown frame type %s", errFrame, strconv.Quote(truncate(f.Type, 32)))
	}
	return f, nil
}

// frameString stores a string field's value; null leaves it as it was.
func frameString(dst *string, kind byte, raw, field string, mismatch func(field, goType string)) {
	switch kind {
	case kindString:
		sc := newScanner(raw)
		*dst = sc.stringValue()
	case kindNull:
	default:
		mismatch(field, "string")
	}
}

// frameInt parses an integer field; null is no value and no error.
func frameInt(kind byte, raw, field, goType string, mismatch func(field, goType string)) (int64, bool) {
	switch kind {
	case kindNumber:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err == nil {
			return n, true
		}
		mismatch(field, goType)
	case kindNull:
	default:
		mismatch(field, goType)
	}
	return 0, false
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

func appendPong(buf []byte, id string) []byte {
	buf = append(buf, `{"type":"pong"`...)
	if len(id) > 0 {
		buf = append(buf, `,"id":`...)
		buf = append(buf, id...)
	}
	return append(buf, '}')
}
