package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
)

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

type closeRecorder struct {
	strings.Builder
	failWrite bool
	closes    []error
}

func (c *closeRecorder) Write(p []byte) (int, error) {
	if c.failWrite {
		return 0, errors.New("no space")
	}
	return c.Builder.Write(p)
}

func (c *closeRecorder) Close(err error) { c.closes = append(c.closes, err) }

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func TestTapBody(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name      string
		body      io.Reader
		readAll   bool
		failWrite bool
		wantErr   error // the single Close error; nil means Close(nil)
		wantTap   string
		wantFails int
	}{
		{"read to EOF", strings.NewReader("segment"), true, false, nil, "segment", 0},
		{"one byte reads", iotest.OneByteReader(strings.NewReader("segment")), true, false, nil, "segment", 0},
		{"data with EOF", iotest.DataErrReader(strings.NewReader("segment")), true, false, nil, "segment", 0},
		{"read error", io.MultiReader(strings.NewReader("seg"), iotest.ErrReader(boom)), true, false, boom, "seg", 0},
		{"closed early", strings.NewReader("segment"), false, false, ErrBodyIncomplete, "", 0},
		{"tap write fails", strings.NewReader("segment"), true, true, ErrTapWrite, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tap := &closeRecorder{failWrite: tt.failWrite}
			fails := 0
			b := &tapBody{rc: nopCloser{tt.body}, tap: tap, url: "https://x/1.ts", log: slog.New(slog.DiscardHandler),
				onFail: func() { fails++ }}
			var got []byte
			if tt.readAll {
				got, _ = io.ReadAll(b)
			}
			_ = b.Close()
			_ = b.Close()
			if len(tap.closes) != 1 {
				t.Fatalf("tap closed %d times, want 1", len(tap.closes))
			}
			if err := tap.closes[0]; (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("tap closed with %v, want %v", err, tt.wantErr)
			}
			if tap.String() != tt.wantTap {
				t.Errorf("tap received %q, want %q", tap.String(), tt.wantTap)
			}
			if tt.readAll && tt.wantErr != boom && string(got) != "segment" {
				t.Errorf("reader returned %q, want the whole body regardless of the tap", got)
			}
			if fails != tt.wantFails {
				t.Errorf("tap failures counted: %d, want %d", fails, tt.wantFails)
			}
		})
	}
}
