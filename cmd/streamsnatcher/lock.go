package main

import (
	"errors"

	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// lockSession takes s's lock for the command name (replay, get, …), or explains
// who holds it. Everything that writes a session holds its lock.
func (a *app) lockSession(s *recorder.Session, name string) (unlock func(), err error) {
	unlock, err = s.Lock(name)
	if errors.Is(err, recorder.ErrSessionInUse) {
		return nil, hinted(err, "wait for that process to end (or stop it), then run: streamsnatcher replay %s; 'streamsnatcher sessions' shows its progress", s.ID)
	}
	return unlock, err
}
