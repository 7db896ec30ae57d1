package auth

// len returns how many names are cached, expired or not: what the tests
// of this package check the cache's bounds by.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
