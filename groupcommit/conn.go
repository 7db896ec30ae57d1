package groupcommit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// errDisconnected ends an attempt whose connection was lost while it
// waited for its acknowledgement: the answer, if the server sent one, is
// lost with the connection (nats.go keeps a request waiting until its
// timeout), so the attempt is over and may be tried again at once, with
// the same dedup id.
var errDisconnected = errors.New("connection lost while waiting for the acknowledgement")

// connWatch follows a connection's state, so that an attempt waiting for
// an acknowledgement ends when the connection is lost instead of at its
// timeout, and a retry waits for the connection to be back.
type connWatch struct {
	mu sync.Mutex
	// epoch is cancelled (cause errDisconnected) when the connection
	// leaves CONNECTED; a new one is made when it is back.
	epoch  context.Context
	cancel context.CancelCauseFunc
	// up is closed when the connection is back (CONNECTED); a new one is
	// made when it is lost again.
	up chan struct{}
}

// watchConn starts following nc until it is closed.
func watchConn(nc *nats.Conn) *connWatch {
	w := &connWatch{}
	w.epoch, w.cancel = context.WithCancelCause(context.Background())
	w.up = make(chan struct{})
	ch := nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	if nc.IsConnected() {
		close(w.up)
	} else {
		w.cancel(errDisconnected)
	}
	go func() {
		for s := range ch {
			switch s {
			case nats.CONNECTED:
				w.connected()
			case nats.CLOSED:
				w.lost()
				nc.RemoveStatusListener(ch)
				return
			default:
				w.lost()
			}
		}
	}()
	return w
}

func (w *connWatch) lost() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.epoch.Err() != nil {
		return
	}
	w.cancel(errDisconnected)
	w.up = make(chan struct{})
}

func (w *connWatch) connected() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.epoch.Err() == nil {
		return
	}
	w.epoch, w.cancel = context.WithCancelCause(context.Background())
	close(w.up)
}

// attempt returns ctx bounded by timeout and ended when the connection
// is lost. The caller passes the attempt's error to finish, which ends
// the attempt and returns the error, errDisconnected when the lost
// connection ended it.
func (w *connWatch) attempt(ctx context.Context, timeout time.Duration) (actx context.Context, finish func(error) error) {
	w.mu.Lock()
	epoch := w.epoch
	w.mu.Unlock()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	cctx, ccancel := context.WithCancelCause(tctx)
	stop := context.AfterFunc(epoch, func() { ccancel(errDisconnected) })
	return cctx, func(err error) error {
		stop()
		lost := errors.Is(context.Cause(cctx), errDisconnected)
		ccancel(nil)
		cancel()
		if err != nil && lost && ctx.Err() == nil {
			return errDisconnected
		}
		return err
	}
}

// down returns a channel closed once the connection is back, nil when it
// is up now.
func (w *connWatch) down() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.up:
		return nil
	default:
		return w.up
	}
}
