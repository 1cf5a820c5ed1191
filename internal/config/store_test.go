package config_test

import (
	"sync"
	"testing"

	"github.com/svcgate/svcgate/internal/config"
)

func TestStore(t *testing.T) {
	t.Run("an empty store holds nothing at generation 0", func(t *testing.T) {
		var s config.Store
		if c, g := s.Current(); c != nil || g != 0 || s.Load() != nil || s.Generation() != 0 {
			t.Errorf("zero Store: Current() = %v, %d; want nil, 0", c, g)
		}
	})

	t.Run("the first config is generation 1 and each swap adds one", func(t *testing.T) {
		first, second, third := config.Default(), config.Default(), config.Default()
		s := config.NewStore(first)
		if s.Load() != first || s.Generation() != 1 {
			t.Fatalf("after NewStore: Load() = %p, Generation() = %d; want %p, 1", s.Load(), s.Generation(), first)
		}
		if old := s.Swap(second); old != first {
			t.Errorf("Swap returned %p, want the first config %p", old, first)
		}
		if s.Load() != second || s.Generation() != 2 {
			t.Errorf("after one swap: Load() = %p, Generation() = %d; want %p, 2", s.Load(), s.Generation(), second)
		}
		s.Swap(third)
		if c, g := s.Current(); c != third || g != 3 {
			t.Errorf("after two swaps: Current() = %p, %d; want %p, 3", c, g, third)
		}
	})

	t.Run("the first swap into an empty store returns nil", func(t *testing.T) {
		var s config.Store
		if old := s.Swap(config.Default()); old != nil || s.Generation() != 1 {
			t.Errorf("Swap on empty store = %v, generation %d; want nil, 1", old, s.Generation())
		}
	})

	t.Run("swapping in nil panics instead of poisoning readers", func(t *testing.T) {
		s := config.NewStore(config.Default())
		defer func() {
			if recover() == nil {
				t.Error("Swap(nil) did not panic")
			}
			if s.Load() == nil {
				t.Error("Swap(nil) stored nil")
			}
		}()
		s.Swap(nil)
	})

	t.Run("concurrent swaps each get their own generation and generations never go back", func(t *testing.T) {
		const writers, swaps = 8, 200
		initial := config.Default()
		s := config.NewStore(initial)
		olds := make(chan *config.Config, writers*swaps)

		var wg sync.WaitGroup
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 4 {
			readers.Go(func() {
				var last uint64
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, g := s.Current()
					if c == nil || g == 0 {
						t.Errorf("reader saw %v, %d", c, g)
						return
					}
					if g < last {
						t.Errorf("generation went back from %d to %d", last, g)
						return
					}
					last = g
				}
			})
		}
		for range writers {
			wg.Go(func() {
				for range swaps {
					olds <- s.Swap(config.Default())
				}
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(olds)

		if got, want := s.Generation(), uint64(1+writers*swaps); got != want {
			t.Errorf("Generation() = %d after %d swaps, want %d", got, writers*swaps, want)
		}
		// Every config but the last is returned as old exactly once.
		seen := map[*config.Config]bool{}
		for old := range olds {
			if old == nil || seen[old] {
				t.Fatalf("Swap returned %p twice or nil", old)
			}
			seen[old] = true
		}
		if !seen[initial] || seen[s.Load()] {
			t.Errorf("the initial config was not returned, or the current one was")
		}
	})
}
