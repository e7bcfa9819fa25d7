package ingest

import (
	"encoding/json"

	fws "github.com/fasthttp/websocket"
)

// startBackground counts a goroutine of the connection about to start;
// false once the connection has ended.
func (c *wsConn) startBackground() bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.bgStopped {
		return false
	}
	c.bg.Add(1)
	return true
}

// stopBackground starts no more goroutines and waits for those running.
func (c *wsConn) stopBackground() {
	c.bgMu.Lock()
	c.bgStopped = true
	c.bgMu.Unlock()
	c.bg.Wait()
}

// startAckWriter starts a goroutine that sends acks until none is left to
// send (ackTracker calls it with its lock held); false if it did not start.
func (c *wsConn) startAckWriter() bool {
	if !c.startBackground() {
		return false
	}
	go func() { // owned: serve waits in stopBackground
		defer c.bg.Done()
		c.writeAcks()
	}()
	return true
}

// writeAcks sends the acks of committed frames as they come.
func (c *wsConn) writeAcks() {
	var buf [48]byte
	for c.ctx.Err() == nil {
		seq, n := c.acks.takeOrStop()
		if n == 0 {
			return
		}
		c.s.m.acksPending.Sub(float64(n))
		if c.write(appendAck(buf[:0], seq)) != nil {
			return
		}
	}
}

// ping sends a WebSocket ping and sets the next one (the pinger's func).
func (c *wsConn) ping() {
	if !c.startBackground() {
		return
	}
	defer c.bg.Done()
	if c.ctx.Err() != nil {
		return
	}
	if err := c.ws.WriteControl(fws.PingMessage, nil, c.s.now().Add(c.s.cfg.WriteTimeout)); err != nil {
		c.fail()
		return
	}
	c.pinger.Reset(c.s.cfg.PingInterval)
}

// write sends one text frame; a failure ends the connection.
func (c *wsConn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(c.s.now().Add(c.s.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(fws.TextMessage, msg); err != nil {
		c.fail()
		return err
	}
	return nil
}

func (c *wsConn) sendError(e errorFrame) error {
	e.Type = frameError
	msg, _ := json.Marshal(e)
	return c.write(msg)
}
