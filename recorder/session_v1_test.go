package recorder

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
)

// Sessions written before tracks (version 1: one stream, files in <session>/segments/ and init.* beside
// them, the key under keys/) replay to a complete output, fetching only the segments not on disk.
func TestReplayVersion1Session(t *testing.T) {
	m := testmedia.HLSMatrix(t)
	o := testorigin.Start(t, testorigin.Options{Dir: m.Root, Prefix: "/hls/"})
	tests := []struct {
		name, fixture, id, cse string
		seg                    string // the origin's segment names, by sequence number
		seq                    int    // media sequence of index 0
		ext                    string
		have                   []int  // indices on disk
		init                   string // the init section's origin name, kept as init.mp4 by version 1
		encrypted              bool   // AES-128, the IV from the media sequence; the key was kept
		never                  []string
	}{
		{name: "aes-128 sequence iv", fixture: "aes-seq.json", id: "20250301-101500-a1b2c3", cse: testmedia.CaseAESSeq,
			seg: "seg_%03d.ts", seq: 7, ext: ".ts", have: []int{0, 2, 4}, encrypted: true,
			never: []string{"video.key", "index.m3u8"}},
		{name: "fmp4 init", fixture: "fmp4.json", id: "20250302-201000-d4e5f6", cse: testmedia.CaseFMP4,
			seg: "seg_%03d.m4s", ext: ".m4s", have: []int{0, 1, 3}, init: "init.mp4",
			never: []string{"init.mp4", "index.m3u8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := m.Cases[tt.cse]
			st, err := NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join("testdata", "v1", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(st.Root, tt.id)
			if err := os.MkdirAll(filepath.Join(dir, "segments"), 0o700); err != nil {
				t.Fatal(err)
			}
			// The fixture names the test origin as {{ORIGIN}}.
			raw = bytes.ReplaceAll(raw, []byte("{{ORIGIN}}"), []byte(o.URL))
			if err := os.WriteFile(filepath.Join(dir, "session.json"), raw, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := st.Load(tt.id)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var key []byte
			if tt.encrypted {
				if key, err = os.ReadFile(filepath.Join(c.Dir, "video.key")); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "keys", keyName(t, s)), key, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.init != "" {
				copyFile(t, filepath.Join(c.Dir, tt.init), filepath.Join(dir, "init.mp4"))
			}
			for _, i := range tt.have {
				body, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf(tt.seg, tt.seq+i)))
				if err != nil {
					t.Fatal(err)
				}
				if tt.encrypted {
					body = decryptCBC(t, key, uint64(tt.seq+i), body) // version 1 kept segments decrypted
				}
				if err := os.WriteFile(filepath.Join(dir, "segments", fmt.Sprintf("%06d%s", i, tt.ext)), body, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			s.Target = filepath.Join(t.TempDir(), "v1.mp4")
			res, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkMatrixOutput(t, c, res.Output, []string{""}, nil)
			for i := 0; i < 5; i++ {
				name := fmt.Sprintf(tt.seg, tt.seq+i)
				want := 1
				if slices.Contains(tt.have, i) {
					want = 0
				}
				if n := o.Hits(tt.cse + "/" + name); n != want {
					t.Errorf("segment %d (%s) requested %d times, want %d", i, name, n, want)
				}
			}
			for _, p := range tt.never {
				if n := o.Hits(tt.cse + "/" + p); n != 0 {
					t.Errorf("%s requested %d times, want never: the session had it", p, n)
				}
			}
			saved, err := st.Load(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if saved.Version != SessionVersion || saved.State != StateDone || saved.Output != s.Target {
				t.Errorf("saved session: version %d state %q output %q, want version %d done %q",
					saved.Version, saved.State, saved.Output, SessionVersion, s.Target)
			}
		})
	}
}

// keyName is where version 1 kept the key of s: keys/<the first 8 bytes of the URI's SHA-256, in hex>.key.
func keyName(t *testing.T, s *Session) string {
	t.Helper()
	k := s.Main().KeyOf(0)
	if k == nil {
		t.Fatal("the version 1 key was lost")
	}
	sum := sha256.Sum256([]byte(k.URI))
	return hex.EncodeToString(sum[:8]) + ".key"
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// decryptCBC decrypts an AES-128 HLS segment whose IV is its sequence number and strips the padding.
func decryptCBC(t *testing.T, key []byte, seq uint64, enc []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := sequenceIV(int64(seq))
	out := make([]byte, len(enc))
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(out, enc)
	p := int(out[len(out)-1])
	if p == 0 || p > aes.BlockSize {
		t.Fatalf("segment %d: bad padding %d", seq, p)
	}
	return out[:len(out)-p]
}
