package proxy

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
)

// The proxy's WARN lines never print the tokens of the URLs they name.
func TestProxyLogsRedactURLs(t *testing.T) {
	ca := newTestCA(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := closed.Addr().String()
	closed.Close()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := startProxy(t, Options{CA: ca, Logger: log, Observer: &tapRecorder{failAfter: 1},
		DialContext: (&mapDialer{target: target}).DialContext})
	client := proxyClient(p, caPool(ca))
	for _, u := range []string{
		"https://gone.example.com/v/1.ts?token=SECRET1&Policy=SECRET2&Signature=SECRET3&Key-Pair-Id=SECRET4&n=2",
		"http://gone.example.com/v/1.ts?hdnts=SECRET5&n=2",
		"http://u:SECRET6@gone.example.com/v/1.ts",
	} {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
		}
	}
	out := logs.String()
	if !strings.Contains(out, "upstream request failed") || !strings.Contains(out, "n=2") {
		t.Fatalf("the test proves nothing: logs %s", out)
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("a secret in the proxy's logs:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
