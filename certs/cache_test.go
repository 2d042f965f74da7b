package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLeafCacheGetCaches(t *testing.T) {
	ca := newCA(t)
	c := NewLeafCache(ca, 0)
	a, err := c.Get("a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, ca, a, "a.example.com")
	b, err := c.Get("A.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("second Get for the same host (different case, with port) returned a new certificate")
	}
	if got := c.Mints(); got != 1 {
		t.Errorf("Mints after two Gets of one host: got %d, want 1", got)
	}
	if _, err := c.Get("b.example.com"); err != nil {
		t.Fatal(err)
	}
	if got := c.Mints(); got != 2 {
		t.Errorf("Mints after a second host: got %d, want 2", got)
	}
}

// TestLeafCacheConcurrentMintsOnce holds the first mint until every other caller is waiting on it.
func TestLeafCacheConcurrentMintsOnce(t *testing.T) {
	ca := newCA(t)
	c := NewLeafCache(ca, 0)
	const n = 16
	var waiting sync.WaitGroup
	waiting.Add(n - 1)
	c.onWait = waiting.Done

	var gens sync.WaitGroup
	gen := func() (*tls.Certificate, error) {
		waiting.Wait() // barrier: all other callers are blocked on this mint
		return ca.Mint("same.example.com")
	}
	start := make(chan struct{})
	results := make([]*tls.Certificate, n)
	errs := make([]error, n)
	for i := range n {
		gens.Add(1)
		go func() {
			defer gens.Done()
			<-start
			results[i], errs[i] = c.Fetch("same.example.com", gen)
		}()
	}
	close(start)
	gens.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Fetch %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Errorf("Fetch %d returned a different certificate", i)
		}
	}
	if got := c.Mints(); got != 1 {
		t.Errorf("Mints after %d concurrent Fetches: got %d, want 1", n, got)
	}
}

func TestLeafCacheErrorsNotCached(t *testing.T) {
	c := NewLeafCache(newCA(t), 0)
	boom := errors.New("boom")
	_, err := c.Fetch("x.test", func() (*tls.Certificate, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Fetch: got %v, want boom", err)
	}
	if _, err := c.Get("x.test"); err != nil {
		t.Fatalf("Get after failed Fetch: %v", err)
	}
	if got := c.Mints(); got != 2 {
		t.Errorf("Mints: got %d, want 2", got)
	}
}

func TestLeafCacheLRUEvicts(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		hosts     int
		wantLen   int
		refetch   string // fetched again after filling; must count as a mint if evicted
		wantMints int64
	}{
		{"under bound", 3, 2, 2, "h0", 2},
		{"at bound", 3, 3, 3, "h0", 3},
		{"over bound evicts oldest", 3, 4, 3, "h0", 5},
		{"over bound keeps newest", 3, 4, 3, "h3", 4},
	}
	ca := newCA(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewLeafCache(ca, tt.size)
			for i := range tt.hosts {
				if _, err := c.Get(fmt.Sprintf("h%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Len(); got != tt.wantLen {
				t.Errorf("Len: got %d, want %d", got, tt.wantLen)
			}
			if _, err := c.Get(tt.refetch); err != nil {
				t.Fatal(err)
			}
			if got := c.Mints(); got != tt.wantMints {
				t.Errorf("Mints: got %d, want %d", got, tt.wantMints)
			}
		})
	}
	t.Run("recently used survives", func(t *testing.T) {
		c := NewLeafCache(ca, 2)
		mustGet := func(h string) {
			if _, err := c.Get(h); err != nil {
				t.Fatal(err)
			}
		}
		mustGet("a")
		mustGet("b")
		mustGet("a") // a is now most recent
		mustGet("c") // evicts b
		mustGet("a")
		if got := c.Mints(); got != 3 {
			t.Errorf("Mints: got %d, want 3 (a kept, b evicted)", got)
		}
		mustGet("b")
		if got := c.Mints(); got != 4 {
			t.Errorf("Mints after refetching evicted b: got %d, want 4", got)
		}
	})
}

func TestLeafCacheRenewsNearExpiry(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	c := NewLeafCache(ca, 0)
	c.Now = func() time.Time { return now }
	first, err := c.Get("renew.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		at        time.Time
		wantMints int64
	}{
		{"fresh", now.Add(time.Hour), 1},
		{"just over a day left", first.Leaf.NotAfter.Add(-renewBefore - time.Minute), 1},
		{"within a day of expiry", first.Leaf.NotAfter.Add(-renewBefore + time.Minute), 2},
		{"renewed leaf is cached", first.Leaf.NotAfter.Add(-renewBefore + 2*time.Minute), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			if _, err := c.Get("renew.test"); err != nil {
				t.Fatal(err)
			}
			if got := c.Mints(); got != tt.wantMints {
				t.Errorf("Mints at %v: got %d, want %d", tt.at, got, tt.wantMints)
			}
		})
	}
}
