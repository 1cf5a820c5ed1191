package hub

// CloseSubscribers ends every current subscription. The agent calls it
// when it shuts down, since an event stream never goes idle and would
// otherwise hold the HTTP server's drain until its timeout.
func (h *Hub) CloseSubscribers() { h.closeSubscribers() }
