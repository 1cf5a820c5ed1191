package config

import "sync/atomic"

// Store holds the configuration in force. Readers call Load on every use
// instead of keeping a *Config, so that a reload reaches them without
// locks; the reloader builds and validates a new Config and Swaps it in.
// The zero Store holds nothing (Load returns nil, Generation 0); NewStore
// is the usual start. A Store is safe for concurrent use and must not be
// copied.
type Store struct {
	// The config and its generation live in one snapshot behind one
	// pointer, so Current never pairs a config with another's
	// generation.
	cur atomic.Pointer[snapshot]
}

type snapshot struct {
	cfg *Config
	gen uint64
}

// NewStore returns a Store holding c as generation 1.
func NewStore(c *Config) *Store {
	s := &Store{}
	s.Swap(c)
	return s
}

// Load returns the configuration in force, nil if none was stored yet. The
// result is shared: do not modify it.
func (s *Store) Load() *Config {
	c, _ := s.Current()
	return c
}

// Generation returns how many configurations have been stored: 1 for the
// first, incremented by each Swap. The API reports it so an operator can
// tell whether a reload took effect.
func (s *Store) Generation() uint64 {
	_, g := s.Current()
	return g
}

// Current returns the configuration in force and its generation, taken
// together.
func (s *Store) Current() (*Config, uint64) {
	p := s.cur.Load()
	if p == nil {
		return nil, 0
	}
	return p.cfg, p.gen
}

// Swap makes c the configuration in force, increments the generation and
// returns the configuration it replaced (nil for the first), which the
// caller closes whatever it derived from. Concurrent Swaps each get their
// own generation. c must have passed Validate; a nil c panics, because
// every reader would otherwise fail later and far from the cause.
func (s *Store) Swap(c *Config) (old *Config) {
	if c == nil {
		panic("config: Store.Swap with a nil *Config")
	}
	for {
		prev := s.cur.Load()
		next := &snapshot{cfg: c, gen: 1}
		if prev != nil {
			next.gen = prev.gen + 1
		}
		if s.cur.CompareAndSwap(prev, next) {
			if prev == nil {
				return nil
			}
			return prev.cfg
		}
	}
}
