package stream

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestDecodeClientFrame(t *testing.T) {
	site := uuid.New().String()
	tests := []struct {
		name, in string
		wantErr  string
	}{
		{name: "auth", in: `{"type":"auth","token":"sk_abc"}`},
		{name: "subscribe all views", in: `{"type":"subscribe","site":"` + site + `"}`},
		{name: "subscribe some views", in: `{"type":"subscribe","site":"` + site + `","views":["online","feed"]}`},
		{name: "ping", in: `{"type":"ping","id":7}`},
		{name: "auth without token", in: `{"type":"auth"}`, wantErr: "token"},
		{name: "subscribe without site", in: `{"type":"subscribe"}`, wantErr: "site id"},
		{name: "unknown view", in: `{"type":"subscribe","site":"` + site + `","views":["secrets"]}`, wantErr: "unknown view"},
		{name: "unknown type", in: `{"type":"events"}`, wantErr: "unknown frame type"},
		{name: "not JSON", in: `hello`, wantErr: "not a JSON object"},
		{name: "array", in: `[1]`, wantErr: "not a JSON object"},
		{name: "huge token", in: `{"type":"auth","token":"` + strings.Repeat(".", 5000) + `"}`, wantErr: "frame over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeClientFrame([]byte(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzDecodeClientFrame: no input panics, and an accepted frame is one the
// server can act on (a token within bounds, a site id and known views).
func FuzzDecodeClientFrame(f *testing.F) {
	f.Add([]byte(`{"type":"auth","token":"sk_abc"}`))
	f.Add([]byte(`{"type":"subscribe","site":"6f1c9a4e-2b7d-4c1e-9a8b-3d2e1f0a9b8c","views":["online"]}`))
	f.Add([]byte(`{"type":"ping","id":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeClientFrame(data)
		if err != nil {
			return
		}
		switch fr.Type {
		case "auth":
			if fr.Token == "" || len(fr.Token) > MaxFrameBytes {
				t.Fatalf("accepted token of %d bytes", len(fr.Token))
			}
		case "subscribe":
			if _, err := uuid.Parse(fr.Site); err != nil {
				t.Fatalf("accepted site %q", fr.Site)
			}
			if _, err := ParseViews(fr.Views); err != nil {
				t.Fatal(err)
			}
		case "ping":
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
		if _, err := json.Marshal(fr); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWSMessage: the frames the hub writes itself carry the payload length
// in the form RFC 6455 requires for each size, and a close frame carries its
// code.
func TestWSMessage(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		header []byte
	}{
		{name: "empty", size: 0, header: []byte{0x81, 0}},
		{name: "7-bit length", size: 125, header: []byte{0x81, 125}},
		{name: "16-bit length", size: 126, header: []byte{0x81, 126, 0, 126}},
		{name: "largest 16-bit", size: 65535, header: []byte{0x81, 126, 0xff, 0xff}},
		{name: "64-bit length", size: 65536, header: []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("x"), tt.size)
			got := wsMessage(wsText, payload)
			if !bytes.Equal(got[:len(tt.header)], tt.header) || !bytes.Equal(got[len(tt.header):], payload) {
				t.Errorf("frame of %d bytes starts % x, want % x then the payload", tt.size, got[:min(len(got), 12)], tt.header)
			}
		})
	}
	if got := wsCloseMessage(CloseStalled, "stalled"); !bytes.Equal(got, append([]byte{0x88, 9, 0x0f, 0xad}, "stalled"...)) {
		t.Errorf("close frame % x", got)
	}
	if got := wsCloseMessage(1005, ""); !bytes.Equal(got, []byte{0x88, 0}) {
		t.Errorf("close without status % x", got)
	}
}
