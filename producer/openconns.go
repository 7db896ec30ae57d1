package producer

import "sync"

// openConns is the set of client connections open, so that Run can
// close those still open when the shutdown's grace period is over:
// go-smtp's Server.Close does nothing once Shutdown has begun, so it
// cannot be the one to end them.
type openConns struct {
	mu sync.Mutex
	m  map[*guard]struct{}
}

func (o *openConns) add(g *guard) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[*guard]struct{})
	}
	o.m[g] = struct{}{}
}

func (o *openConns) remove(g *guard) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, g)
}

// closeAll closes every open connection; the client sees it end, and
// go-smtp ends its session on the failed read.
func (o *openConns) closeAll() {
	o.mu.Lock()
	gs := make([]*guard, 0, len(o.m))
	for g := range o.m {
		gs = append(gs, g)
	}
	o.mu.Unlock()
	for _, g := range gs {
		g.Conn.Close()
	}
}
