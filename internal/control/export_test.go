package control

// LockCount returns how many per-service lock entries c holds: one for each
// service with an operation running or queued, none once all have ended.
func LockCount(c *Controller) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.locks)
}
