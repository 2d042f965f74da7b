package recorder

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamsnatcher/streamsnatcher/plan"
)

// HLS AES-128 (RFC 8216 §4.3.2.4, §5.2): every segment is encrypted whole with
// AES-128-CBC and PKCS#7 padding. Segments are decrypted as they stream to disk,
// so the files in segments/ are clear media and the merge needs no key.

// MethodAES128 is the only EXT-X-KEY method recorded.
const MethodAES128 = "AES-128"

var (
	// ErrDecrypt means a segment did not decrypt to media: a wrong key or IV,
	// bad padding, or a body that is not whole AES blocks. Retrying the same
	// bytes with the same key cannot help, so it is not retried.
	ErrDecrypt = errors.New("cannot decrypt (wrong key or IV?)")
	// ErrUnsupported means a stream uses a feature not recorded yet.
	ErrUnsupported = errors.New("not supported yet")
)

// keySize is the size of an AES-128 key, and of its IV.
const keySize = 16

// maxKeyResponse bounds the read of a key response: a key is 16 bytes, and a
// little more lets the error say how many bytes an error page had.
const maxKeyResponse = 4 << 10

// parseIV reads an EXT-X-KEY IV: a 0x-prefixed hexadecimal 128-bit integer.
// Fewer than 32 digits are zero-extended on the left.
func parseIV(v string) ([keySize]byte, error) {
	var iv [keySize]byte
	h, ok := strings.CutPrefix(v, "0x")
	if !ok {
		h, ok = strings.CutPrefix(v, "0X")
	}
	if !ok || h == "" || len(h) > 2*keySize {
		return iv, fmt.Errorf("bad IV %q: want 0x and up to 32 hex digits", v)
	}
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return iv, fmt.Errorf("bad IV %q: want 0x and up to 32 hex digits", v)
	}
	copy(iv[keySize-len(b):], b)
	return iv, nil
}

// sequenceIV is the IV of a segment without an IV attribute: its media sequence
// number as a 128-bit big-endian integer.
func sequenceIV(seq int64) [keySize]byte {
	var iv [keySize]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(seq))
	return iv
}

// saveKey keeps key k of the track in its keys/ directory.
func (t *Track) saveKey(k *plan.Key, key []byte) error {
	return keepKey(t.KeyPath(k), key)
}

// keepKey writes a key at p, a Track.KeyPath.
func keepKey(p string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(p, key, 0o600)
}

// loadKeys returns the AES cipher of each key of the track (1-based, as
// segments name them): from keys/ if a run or the browser kept it, else
// fetched once with the session's headers and kept. Clear tracks get nil.
func loadKeys(ctx context.Context, t *Track, f *fetcher) ([]cipher.Block, error) {
	if len(t.Keys) == 0 {
		return nil, nil
	}
	blocks := make([]cipher.Block, len(t.Keys)+1)
	for n := range t.Keys {
		k := &t.Keys[n]
		if k.Method != MethodAES128 {
			return nil, fmt.Errorf("key: %s encryption: %w (only whole-segment AES-128 is)", k.Method, ErrUnsupported)
		}
		key, err := os.ReadFile(t.KeyPath(k))
		if err != nil || len(key) != keySize {
			data, _, err := f.get(ctx, k.URI, maxKeyResponse)
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			if len(data) != keySize {
				return nil, fmt.Errorf("key %s: %w: %d bytes, want exactly %d", redactURL(k.URI), ErrNotMedia, len(data), keySize)
			}
			if err := t.saveKey(k, data); err != nil {
				return nil, fmt.Errorf("key file: %w", err)
			}
			key = data
		}
		if blocks[n+1], err = aes.NewCipher(key); err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
	}
	return blocks, nil
}

// decryptWriter decrypts an AES-128-CBC stream into w. It buffers at most one
// partial block and holds back the last whole block until Close, which checks
// and strips the PKCS#7 padding. Memory is fixed, whatever the stream's size.
type decryptWriter struct {
	w     io.Writer
	cbc   cipher.BlockMode
	part  [aes.BlockSize]byte // a partial ciphertext block
	npart int
	buf   []byte // plaintext: buf[:aes.BlockSize] holds the held-back block when held
	held  bool
	err   error
}

// decryptChunk bounds the plaintext decrypted per write to w.
const decryptChunk = 32 << 10

func newDecryptWriter(w io.Writer, block cipher.Block, iv [keySize]byte) *decryptWriter {
	return &decryptWriter{w: w, cbc: cipher.NewCBCDecrypter(block, iv[:]), buf: make([]byte, aes.BlockSize+decryptChunk)}
}

// Write decrypts every whole block of p it can; it returns an error only when w does.
func (d *decryptWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	total := len(p)
	if d.npart > 0 {
		c := copy(d.part[d.npart:], p)
		d.npart += c
		p = p[c:]
		if d.npart < aes.BlockSize {
			return total, nil
		}
		d.npart = 0
		if err := d.blocks(d.part[:]); err != nil {
			return 0, err
		}
	}
	whole := len(p) / aes.BlockSize * aes.BlockSize
	for off := 0; off < whole; off += decryptChunk {
		end := min(off+decryptChunk, whole)
		if err := d.blocks(p[off:end]); err != nil {
			return 0, err
		}
	}
	d.npart = copy(d.part[:], p[whole:])
	return total, nil
}

// blocks decrypts whole blocks (at most decryptChunk bytes), writes the
// previously held block and all but the last new one, and holds the last.
func (d *decryptWriter) blocks(c []byte) error {
	out := d.buf[aes.BlockSize : aes.BlockSize+len(c)]
	d.cbc.CryptBlocks(out, c)
	from := aes.BlockSize
	if d.held {
		from = 0
	}
	end := aes.BlockSize + len(c) - aes.BlockSize
	if end > from {
		if _, err := d.w.Write(d.buf[from:end]); err != nil {
			d.err = err
			return err
		}
	}
	copy(d.buf[:aes.BlockSize], d.buf[end:end+aes.BlockSize])
	d.held = true
	return nil
}

// Close checks the stream ended on a block boundary with valid PKCS#7 padding
// and writes the last block without it.
func (d *decryptWriter) Close() error {
	if d.err != nil {
		return d.err
	}
	switch {
	case d.npart != 0:
		d.err = fmt.Errorf("%w: body is not whole %d-byte blocks", ErrDecrypt, aes.BlockSize)
	case !d.held:
		d.err = fmt.Errorf("%w: empty body", ErrDecrypt)
	}
	if d.err != nil {
		return d.err
	}
	last := d.buf[:aes.BlockSize]
	pad := int(last[aes.BlockSize-1])
	if pad < 1 || pad > aes.BlockSize {
		d.err = fmt.Errorf("%w: bad padding", ErrDecrypt)
		return d.err
	}
	for _, b := range last[aes.BlockSize-pad:] {
		if int(b) != pad {
			d.err = fmt.Errorf("%w: bad padding", ErrDecrypt)
			return d.err
		}
	}
	if n := aes.BlockSize - pad; n > 0 {
		if _, err := d.w.Write(last[:n]); err != nil {
			d.err = err
			return err
		}
	}
	d.err = errors.New("decryptWriter: closed")
	return nil
}

// sniffWriter checks the first bytes written to it with check (sniffMedia
// when nil), then passes everything to w. A refusal is kept in bad, apart from
// w's own errors.
type sniffWriter struct {
	w      io.Writer
	check  func([]byte) error
	sniffd bool
	bad    error
}

func (s *sniffWriter) Write(p []byte) (int, error) {
	if s.bad != nil {
		return 0, s.bad
	}
	if !s.sniffd && len(p) > 0 {
		s.sniffd = true
		check := s.check
		if check == nil {
			check = sniffMedia
		}
		if err := check(p); err != nil {
			s.bad = err
			return 0, err
		}
	}
	return s.w.Write(p)
}
