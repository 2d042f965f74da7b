package main

import (
	"encoding/json"
	"net/http"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// dashboard serves the proxy's own pages: for now a JSON status of the streams.
func (a *app) dashboard(c *recorder.Capture) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/streams", func(w http.ResponseWriter, r *http.Request) {
		type row struct {
			recorder.Summary
			Template string            `json:"template"`
			Headers  map[string]string `json:"headers"`
			Reason   string            `json:"reason,omitempty"`
			Bytes    int64             `json:"bytes"`
		}
		var rows []row
		for _, s := range c.Streams() {
			rows = append(rows, row{Summary: s.Session, Template: s.Template, Headers: s.Headers, Reason: s.Reason, Bytes: s.Progress.Bytes.Load()})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rows)
	})
	return mux
}
