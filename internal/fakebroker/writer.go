package fakebroker

import (
	"time"
)

// itemKind says what writing an outItem does besides sending its bytes.
type itemKind int

const (
	// itemFrames only sends its frames.
	itemFrames itemKind = iota
	// itemChanClose sends channel.close; from then on the lane's channel
	// is closing and its other queued frames are discarded.
	itemChanClose
	// itemChanCloseOk answers a client's channel.close; the lane is freed.
	itemChanCloseOk
	// itemConnClose sends connection.close; from then on the connection is
	// closing, other queued frames are discarded, and the client has two
	// seconds to answer close-ok.
	itemConnClose
	// itemConnCloseOk answers a client's connection.close and ends the
	// connection once written.
	itemConnCloseOk
	// itemCloseDrop sends connection.close (or other final bytes), then
	// shuts down the sending side and ends the writer; the reader drains
	// the socket until the client closes it, so the client reads the close
	// before the connection ends (no reset from unread input).
	itemCloseDrop
	// itemDrop ends the connection without a word.
	itemDrop
)

// closeTimeout is how long the server waits for connection.close-ok.
const closeTimeout = 2 * time.Second

// outItem is one unit of output queued for a connection's writer.
type outItem struct {
	// lane orders the output: items of one lane go out in queue order, and
	// an item waiting for its time holds the items after it in its lane.
	// Items of different lanes that are ready go out in queue order.
	lane *channel
	// at is the earliest time to write the item; zero means now.
	at   time.Time
	kind itemKind
	data []byte
	// force writes the item even if its channel or the connection is closing.
	force bool
}

// enqueue appends items to the output queue and wakes the writer. It must
// not be called with c.mu held; it may be called with the server's mu held.
func (c *conn) enqueue(items ...*outItem) {
	c.mu.Lock()
	c.queue = append(c.queue, items...)
	c.mu.Unlock()
	c.wakeWriter()
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// endAction is what the writer does after writing a batch.
type endAction int

const (
	endNone      endAction = iota
	endConn                // end the connection
	endHalfClose           // shut down writing and end the writer
)

// takeReady removes the items that may be written now from the queue, in
// order, applies their state changes, and returns their bytes, the earliest
// time a held item becomes ready (zero if none), whether the connection must
// end after the bytes are written, whether the read deadline for close-ok
// must be set, and the channels that started closing.
func (c *conn) takeReady(now time.Time) (out []byte, next time.Time, end endAction, deadline bool, closed []*channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var waiting map[*channel]bool
	keep := c.queue[:0]
	for i, it := range c.queue {
		if end != endNone {
			keep = append(keep, c.queue[i:]...)
			break
		}
		if waiting[it.lane] {
			keep = append(keep, it)
			continue
		}
		if it.at.After(now) {
			if waiting == nil {
				waiting = make(map[*channel]bool)
			}
			waiting[it.lane] = true
			if next.IsZero() || it.at.Before(next) {
				next = it.at
			}
			keep = append(keep, it)
			continue
		}
		if !it.force && (c.closing || it.lane.state == stateClosing || it.lane.state == stateFreed) {
			continue // discarded: nothing but close and close-ok after a close
		}
		switch it.kind {
		case itemFrames:
			out = append(out, it.data...)
		case itemChanClose:
			out = append(out, it.data...)
			if it.lane.state == stateOpen {
				it.lane.state = stateClosing
				closed = append(closed, it.lane)
			}
		case itemChanCloseOk:
			out = append(out, it.data...)
			it.lane.state = stateFreed
		case itemConnClose:
			out = append(out, it.data...)
			c.setClosingLocked()
			deadline = true
		case itemConnCloseOk:
			out = append(out, it.data...)
			c.setClosingLocked()
			end = endConn
		case itemCloseDrop:
			out = append(out, it.data...)
			c.setClosingLocked()
			end = endHalfClose
		case itemDrop:
			end = endConn
		}
	}
	clear(c.queue[len(keep):])
	c.queue = keep
	return out, next, end, deadline, closed
}

// setClosingLocked marks the connection as closing. c.mu must be held.
func (c *conn) setClosingLocked() {
	if !c.closing {
		c.closing = true
		close(c.closingCh)
	}
}

// writeLoop is the connection's only writer: it writes queued items when they
// are due and heartbeats when the connection is otherwise idle.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	lastWrite := time.Now()
	for {
		if c.node.silent.Load() {
			// A hung node writes nothing, not even heartbeats; its output
			// stays queued until Revive wakes the writer.
			select {
			case <-c.wake:
				continue
			case <-c.done:
				return
			}
		}
		now := time.Now()
		out, next, end, deadline, closed := c.takeReady(now)
		for _, ch := range closed {
			c.s.forgetChannel(c, ch)
		}
		hb := time.Duration(c.heartbeat.Load()) * time.Second / 2
		beating := hb > 0 && !c.s.stopped.Load()
		if len(out) == 0 && end == endNone && beating && now.Sub(lastWrite) >= hb {
			out = heartbeatFrame
		}
		if len(out) > 0 {
			if _, err := c.nc.Write(out); err != nil {
				c.shutdown()
				return
			}
			lastWrite = time.Now()
		}
		if deadline {
			_ = c.nc.SetReadDeadline(time.Now().Add(closeTimeout))
		}
		switch end {
		case endConn:
			c.shutdown()
			return
		case endHalfClose:
			if hc, ok := c.nc.(interface{ CloseWrite() error }); ok {
				_ = hc.CloseWrite()
			} else {
				c.shutdown()
			}
			return
		}
		if len(out) > 0 {
			continue
		}
		if beating {
			if at := lastWrite.Add(hb); next.IsZero() || at.Before(next) {
				next = at
			}
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), 0))
			fire = timer.C
		}
		select {
		case <-c.wake:
		case <-fire:
		case <-c.done:
		}
		if timer != nil {
			timer.Stop()
		}
		select {
		case <-c.done:
			return
		default:
		}
	}
}
