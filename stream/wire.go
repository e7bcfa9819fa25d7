package stream

import "encoding/binary"

// WebSocket frames the server writes itself (RFC 6455, section 5.2): the
// hub encodes a frame once and writes the same bytes to every subscriber's
// socket, so these frames bypass the WebSocket library's writer. Server
// frames are not masked; live frames are never compressed or fragmented.
const (
	wsText  = 0x1
	wsClose = 0x8
	wsPing  = 0x9
	wsPong  = 0xA
)

// wsMessage returns a final (unfragmented) frame of opcode carrying payload.
func wsMessage(opcode byte, payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n < 126:
		b = make([]byte, 2, 2+n)
		b[1] = byte(n)
	case n < 1<<16:
		b = make([]byte, 4, 4+n)
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10, 10+n)
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[0] = 0x80 | opcode
	return append(b, payload...)
}

// wsCloseMessage is a close frame with code and reason (cut to fit a
// control frame); code 0 sends a close without a status.
func wsCloseMessage(code int, reason string) []byte {
	if code == 0 || code == 1005 { // 1005: the client sent no status; none is echoed
		return wsMessage(wsClose, nil)
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return wsMessage(wsClose, append(p, truncateReason(reason)...))
}

// Fixed frames, shared by every subscriber.
var (
	wsPingMessage = wsMessage(wsPing, nil)
	wsPongMessage = wsMessage(wsText, []byte(`{"type":"pong"}`))
)
