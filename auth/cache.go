package auth

import (
	"container/list"
	"sync"
	"time"
)

// cache holds answers by name until they expire, evicting the least
// recently used name when full. It is safe for concurrent use.
type cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *entry, most recently used first
	byKey map[string]*list.Element
}

// entry is one cached answer: records, a permanent error (wrapping
// ErrNotFound), or a temporary failure (a bare *TempError, returned as is
// so that go-msgauth still sees a temporary net.Error).
type entry struct {
	name    string
	txts    []string
	err     error
	expires time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

// get returns the unexpired entry of name.
func (c *cache) get(name string, now time.Time) (*entry, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[name]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, name)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e, true
}

// put stores e, evicting the least recently used entry when full.
func (c *cache) put(e *entry) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.name]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.byKey[e.name] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry).name)
	}
}
