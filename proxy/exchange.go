package proxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/redact"
)

// Exchange describes one request the proxy forwarded and the response headers it got back.
type Exchange struct {
	// Req is a copy of the request as sent upstream: URL absolute (https://host/path?query for intercepted
	// HTTPS), headers including cookies, hop-by-hop headers removed. Its Body is nil.
	Req *http.Request
	// Status is the upstream response status code.
	Status int
	// RespHeader is a copy of the upstream response headers. The body the tap receives is exactly the bytes
	// sent to the client, still encoded as Content-Encoding says.
	RespHeader http.Header
	// ContentLength is the response body length, or -1 when unknown.
	ContentLength int64
	// Received is when the response headers arrived.
	Received time.Time
	// RemoteAddr is the address ("ip:port") of the upstream connection that answered, as dialed after
	// name resolution; "" when unknown.
	RemoteAddr string
}

// Observer is told about every exchange when its response headers arrive. It returns a BodyTap to receive a
// copy of the response body, or nil when it does not want the body. Observe is called from many goroutines at
// once and must not block for long: the client waits for it.
type Observer interface {
	Observe(ex *Exchange) BodyTap
}

// BodyTap receives a copy of a response body while it streams to the client. Write is called with successive
// chunks; Close is called exactly once, with nil after the whole body was seen, or with the error that cut the
// body short (ErrBodyIncomplete when the client went away or the body was otherwise closed early). A Write error
// stops the tapping (Close is then called with that error) but never disturbs the client's stream.
type BodyTap interface {
	io.Writer
	Close(err error)
}

// A Responder may answer a request itself (from what it already holds) instead of the upstream. When the
// Observer also implements Responder, the proxy asks it before forwarding each request; a nil response means
// forward as usual. Such answers are not reported to Observe.
type Responder interface {
	Respond(req *http.Request) *http.Response
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(ex *Exchange) BodyTap

// Observe calls f(ex).
func (f ObserverFunc) Observe(ex *Exchange) BodyTap { return f(ex) }

// ErrBodyIncomplete is passed to BodyTap.Close when the response body was closed before its end.
var ErrBodyIncomplete = errors.New("response body closed before its end")

// ErrTapWrite wraps the error a BodyTap's Write returned; the tap is then closed with it.
var ErrTapWrite = errors.New("body tap write failed")

// tapBody tees a response body into a BodyTap.
type tapBody struct {
	rc     io.ReadCloser
	tap    BodyTap
	url    string
	log    *slog.Logger
	onFail func()

	mu     sync.Mutex
	closed bool // tap.Close has been called
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return n, err
	}
	if n > 0 {
		w, werr := b.tap.Write(p[:n])
		if werr == nil && w != n {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			b.closed = true
			b.onFail()
			b.log.Warn("body tap failed; the client's stream continues untapped", "url", b.url, "err", redact.Text(werr.Error()))
			b.tap.Close(fmt.Errorf("%s: %w: %w", b.url, ErrTapWrite, werr))
			return n, err
		}
	}
	if err != nil {
		b.closed = true
		if err == io.EOF {
			b.tap.Close(nil)
		} else {
			b.tap.Close(fmt.Errorf("read response body %s: %w", b.url, err))
		}
	}
	return n, err
}

func (b *tapBody) Close() error {
	err := b.rc.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.tap.Close(fmt.Errorf("%s: %w", b.url, ErrBodyIncomplete))
	}
	return err
}
