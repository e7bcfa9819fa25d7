// Package wsnet reaches the TCP socket under a WebSocket that fasthttp
// upgraded, for the ingest and live-stream servers.
package wsnet

import (
	"net"

	fws "github.com/fasthttp/websocket"
)

// Socket returns the socket under ws. fasthttp hands the WebSocket handler a
// wrapper of the hijacked connection whose Close does nothing (the server
// closes the socket once the handler returns) and which goes back to a pool
// then, its connection set to nil and later handed to another: a connection
// that must be closed, or written to after its handler returned, has to be
// reached through the socket itself. Any other connection is returned as is.
func Socket(ws *fws.Conn) net.Conn {
	nc := ws.NetConn()
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return nc
}
