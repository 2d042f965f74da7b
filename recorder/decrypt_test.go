package recorder

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
	"github.com/streamsnatcher/streamsnatcher/internal/testorigin"
	"github.com/streamsnatcher/streamsnatcher/plan"
	"github.com/streamsnatcher/streamsnatcher/playlist"
	"github.com/streamsnatcher/streamsnatcher/proxy"
)

var (
	testKey   = []byte("0123456789abcdef")
	wrongKey  = []byte("fedcba9876543210")
	testIVHex = "0x000102030405060708090A0B0C0D0E0F"
)

// encrypt is what a packager does: PKCS#7 padding, then AES-128-CBC.
func encrypt(t testing.TB, key []byte, iv [keySize]byte, plain []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out, out)
	return out
}

// encOrigin describes an encrypted copy of the Small test media.
type encOrigin struct {
	seq      int64    // EXT-X-MEDIA-SEQUENCE
	iv       string   // one IV attribute for the whole playlist ("" = the sequence number)
	ivs      []string // per-segment IV attributes (an EXT-X-KEY before each segment)
	serveKey []byte   // what the origin answers for the key (default testKey)
}

// newEncFixture serves the Small media encrypted with testKey from a fresh
// directory, behind the Referer and cookie checks, and returns the fixture and
// the playlist's URL.
func newEncFixture(t *testing.T, eo encOrigin) (*fixture, string) {
	t.Helper()
	m := testmedia.ForTest(t, testmedia.Small)
	dir := t.TempDir()
	if eo.serveKey == nil {
		eo.serveKey = testKey
	}
	files := map[string][]byte{"keys/video.key": eo.serveKey}
	var pl strings.Builder
	fmt.Fprintf(&pl, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-PLAYLIST-TYPE:VOD\n", eo.seq)
	keyLine := func(iv string) string {
		l := `#EXT-X-KEY:METHOD=AES-128,URI="keys/video.key"`
		if iv != "" {
			l += ",IV=" + iv
		}
		return l + "\n"
	}
	if eo.ivs == nil {
		pl.WriteString(keyLine(eo.iv))
	}
	for i := range m.Segments {
		ivAttr := eo.iv
		if eo.ivs != nil {
			ivAttr = eo.ivs[i]
			pl.WriteString(keyLine(ivAttr))
		}
		iv := sequenceIV(eo.seq + int64(i))
		if ivAttr != "" {
			var err error
			if iv, err = parseIV(ivAttr); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("enc_%05d.ts", i)
		files[name] = encrypt(t, testKey, iv, m.Bytes(i))
		fmt.Fprintf(&pl, "#EXTINF:%f,\n%s\n", m.Durations[i], name)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	files["index.m3u8"] = []byte(pl.String())
	if err := testorigin.WriteFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	o := testorigin.Start(t, testorigin.Options{Dir: dir, Prefix: "/v/enc/", RequireReferer: testReferer, RequireCookie: testCookie})
	st, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{media: m, origin: o, store: st}, o.URL + "index.m3u8"
}

func (fx *fixture) playlistSession(t *testing.T, u string) *Session {
	t.Helper()
	s := &Session{Source: "get", Playlist: u, Input: u, Headers: fx.headers(), Target: filepath.Join(t.TempDir(), "out.mp4")}
	if err := fx.store.Create(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunEncrypted(t *testing.T) {
	tests := []struct {
		name string
		eo   encOrigin
	}{
		{"explicit IV", encOrigin{iv: testIVHex}},
		{"sequence IV from 0", encOrigin{}},
		{"sequence IV from 1000", encOrigin{seq: 1000}},
		{"IV per segment", encOrigin{seq: 5, ivs: []string{"0x1", "", "0x0000000000000000000000000000FFFF", "0xabcdef", "", "0x2", "0x3", "0x4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx, u := newEncFixture(t, tt.eo)
			s := fx.playlistSession(t, u)
			res, err := Run(context.Background(), s, fastOpts(), MergeOptions{KeepSegments: true})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			fx.checkOutput(t, res.Output)
			// A wrong IV spoils only the first block: compare every byte.
			for i := range fx.media.Segments {
				got, err := os.ReadFile(s.Main().SegmentPath(int64(i)))
				if err != nil || !bytes.Equal(got, fx.media.Bytes(i)) {
					t.Errorf("segment %d on disk (%d bytes, %v) is not the clear source segment", i, len(got), err)
				}
			}
			if n := fx.origin.Completed("keys/video.key"); n != 1 {
				t.Errorf("key fetched %d times, want 1", n)
			}
			m := s.Main()
			if len(m.Keys) != 1 || m.Keys[0].Method != MethodAES128 {
				t.Fatalf("session keys %+v, want one AES-128", m.Keys)
			}
			fi, err := os.Stat(m.KeyPath(&m.Keys[0]))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("kept key: %v (mode %v), want a 0600 file", err, fi.Mode().Perm())
			}
			if got, _ := os.ReadFile(m.KeyPath(&m.Keys[0])); !bytes.Equal(got, testKey) {
				t.Errorf("kept key %x, want %x", got, testKey)
			}
		})
	}
}

// A run that pauses halfway resumes with the kept key: the origin serves it once.
func TestRunEncryptedResumeKeepsKey(t *testing.T) {
	fx, u := newEncFixture(t, encOrigin{seq: 3})
	s := fx.playlistSession(t, u)
	fx.origin.ExpireAfter(3)
	o := fastOpts()
	o.Concurrency = 1
	if _, err := Run(context.Background(), s, o, MergeOptions{}); !errors.Is(err, ErrExpired) {
		t.Fatalf("first Run: %v, want ErrExpired", err)
	}
	fx.origin.SetExpired(false)
	s2, err := fx.store.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m := s2.Main(); m == nil || len(m.Keys) != 1 || m.Segments[0].Sequence != 3 {
		t.Fatalf("saved session: track %+v, want a key and media sequence 3", m)
	}
	res, err := Run(context.Background(), s2, fastOpts(), MergeOptions{})
	if err != nil {
		t.Fatalf("resumed Run: %v", err)
	}
	fx.checkOutput(t, res.Output)
	if n := fx.origin.Completed("keys/video.key"); n != 1 {
		t.Errorf("key fetched %d times over two runs, want 1", n)
	}
}

func TestRunEncryptedWrongKey(t *testing.T) {
	fx, u := newEncFixture(t, encOrigin{serveKey: wrongKey})
	s := fx.playlistSession(t, u)
	_, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Run with a wrong key: %v, want ErrDecrypt", err)
	}
	if !strings.Contains(err.Error(), "cannot decrypt") {
		t.Errorf("error %q does not say it cannot decrypt", err)
	}
	if fileExists(s.Target) {
		t.Errorf("output %s written from undecryptable segments", s.Target)
	}
	if s.Done() != 0 {
		t.Errorf("%d segment files kept, want none", s.Done())
	}
	// Not retried endlessly: the main pass and the final pass, once each.
	for i := range fx.media.Segments {
		if n := fx.origin.Hits(fmt.Sprintf("enc_%05d.ts", i)); n > 2 {
			t.Errorf("segment %d requested %d times, want at most 2", i, n)
		}
	}
}

// A key response that is not 16 bytes (an error page) fails the run before any segment is fetched.
func TestRunEncryptedBadKeyResponse(t *testing.T) {
	fx, u := newEncFixture(t, encOrigin{serveKey: []byte("<html>no</html>\n\n")})
	s := fx.playlistSession(t, u)
	_, err := Run(context.Background(), s, fastOpts(), MergeOptions{})
	if err == nil || !strings.Contains(err.Error(), "want exactly 16") {
		t.Fatalf("Run: %v, want a key size error", err)
	}
	if fx.origin.Hits("enc_00000.ts") != 0 {
		t.Errorf("segments fetched with no usable key")
	}
	if m := s.Main(); m != nil && len(m.Keys) > 0 && fileExists(m.KeyPath(&m.Keys[0])) {
		t.Errorf("a bad key was kept")
	}
}

func TestPlaylistKeys(t *testing.T) {
	const head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:9\n"
	seg := func(n int) string { return fmt.Sprintf("#EXTINF:4,\ns%d.ts\n", n) }
	k := func(name string) plan.Key { return plan.Key{Method: MethodAES128, URI: "https://cdn.test/v/" + name} }
	tests := []struct {
		name     string
		body     string
		wantKeys []plan.Key
		wantSeg  []int    // each segment's key, 1-based; 0 clear
		wantIVs  []string // each segment's explicit IV
		wantErr  string   // "" = no error
	}{
		{"clear", head + seg(0) + seg(1), nil, []int{0, 0}, []string{"", ""}, ""},
		{"METHOD=NONE", head + "#EXT-X-KEY:METHOD=NONE\n" + seg(0) + seg(1), nil, []int{0, 0}, []string{"", ""}, ""},
		{"one key", head + `#EXT-X-KEY:METHOD=AES-128,URI="k.key"` + "\n" + seg(0) + seg(1),
			[]plan.Key{k("k.key")}, []int{1, 1}, []string{"", ""}, ""},
		{"one key with IV", head + `#EXT-X-KEY:METHOD=AES-128,URI="k.key",IV=0x0F` + "\n" + seg(0) + seg(1),
			[]plan.Key{k("k.key")}, []int{1, 1}, []string{"0x0F", "0x0F"}, ""},
		{"same key repeated, IVs differ", head + `#EXT-X-KEY:METHOD=AES-128,URI="k.key",IV=0x1` + "\n" + seg(0) +
			`#EXT-X-KEY:METHOD=AES-128,URI="k.key",IV=0x2` + "\n" + seg(1),
			[]plan.Key{k("k.key")}, []int{1, 1}, []string{"0x1", "0x2"}, ""},
		{"key rotation", head + `#EXT-X-KEY:METHOD=AES-128,URI="a.key"` + "\n" + seg(0) +
			`#EXT-X-KEY:METHOD=AES-128,URI="b.key"` + "\n" + seg(1), []plan.Key{k("a.key"), k("b.key")}, []int{1, 2}, []string{"", ""}, ""},
		{"clear then encrypted", head + seg(0) + `#EXT-X-KEY:METHOD=AES-128,URI="a.key"` + "\n" + seg(1),
			[]plan.Key{k("a.key")}, []int{0, 1}, []string{"", ""}, ""},
		{"SAMPLE-AES", head + `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://x"` + "\n" + seg(0), nil, nil, nil, "SAMPLE-AES encryption is not supported"},
		{"encrypted fMP4", head + `#EXT-X-MAP:URI="init.mp4"` + "\n" + `#EXT-X-KEY:METHOD=AES-128,URI="a.key",IV=0x1` + "\n" + "#EXTINF:4,\ns0.m4s\n",
			nil, nil, nil, "encrypted fMP4"},
	}
	base, _ := url.Parse("https://cdn.test/v/index.m3u8")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := playlist.Parse([]byte(tt.body), base)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := plan.FromMedia(pl.Media, base.String(), "video", plan.Video)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromMedia: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromMedia: %v", err)
			}
			if fmt.Sprint(tr.Keys) != fmt.Sprint(tt.wantKeys) {
				t.Errorf("FromMedia: keys %+v, want %+v", tr.Keys, tt.wantKeys)
			}
			var keys []int
			var ivs []string
			for _, sg := range tr.Segments {
				keys, ivs = append(keys, sg.Key), append(ivs, sg.IV)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.wantSeg) || fmt.Sprint(ivs) != fmt.Sprint(tt.wantIVs) {
				t.Errorf("FromMedia: segment keys %v IVs %q, want %v %q", keys, ivs, tt.wantSeg, tt.wantIVs)
			}
			if tr.Segments[0].Sequence != 9 {
				t.Errorf("FromMedia: media sequence %d, want 9", tr.Segments[0].Sequence)
			}
		})
	}
}

func TestTrackIV(t *testing.T) {
	seg := func(seq int64, iv string) *Track {
		return &Track{Track: plan.Track{Keys: []plan.Key{{Method: MethodAES128, URI: "k"}},
			Segments: []plan.Segment{{URL: "a", Key: 1, Sequence: seq, IV: iv}}}}
	}
	tests := []struct {
		name string
		t    *Track
		want string
	}{
		{"sequence 0", seg(0, ""), "00000000000000000000000000000000"},
		{"sequence 257", seg(257, ""), "00000000000000000000000000000101"},
		{"explicit", seg(5, testIVHex), "000102030405060708090a0b0c0d0e0f"},
		{"short explicit", seg(5, "0xabc"), "00000000000000000000000000000abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv, err := tt.t.IV(0)
			if err != nil || fmt.Sprintf("%x", iv) != tt.want {
				t.Errorf("IV(0) = %x, %v; want %s", iv, err, tt.want)
			}
		})
	}
}

// decryptAll feeds ct to a decryptWriter in writes of size n (0 = all at once).
func decryptAll(key []byte, iv [keySize]byte, ct []byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	d := newDecryptWriter(&out, block, iv)
	if n == 0 {
		n = max(len(ct), 1)
	}
	for len(ct) > 0 {
		k := min(n, len(ct))
		if w, err := d.Write(ct[:k]); err != nil || w != k {
			return nil, fmt.Errorf("Write(%d bytes) = %d, %v", k, w, err)
		}
		ct = ct[k:]
	}
	err = d.Close() // writes the last block: before reading out
	return out.Bytes(), err
}

func TestDecryptWriter(t *testing.T) {
	iv, _ := parseIV(testIVHex)
	plain := make([]byte, 3*decryptChunk+37)
	for i := range plain {
		plain[i] = byte(i * 7)
	}
	for _, size := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, decryptChunk - 1, decryptChunk + 1} {
		for _, writes := range []int{1, 15, 16, 17, 4096, 0} {
			t.Run(fmt.Sprintf("plain %d in writes of %d", size, writes), func(t *testing.T) {
				ct := encrypt(t, testKey, iv, plain[:size])
				got, err := decryptAll(testKey, iv, ct, writes)
				if err != nil {
					t.Fatalf("decrypt: %v", err)
				}
				if !bytes.Equal(got, plain[:size]) {
					t.Fatalf("decrypt: got %d bytes, want the %d plain bytes", len(got), size)
				}
			})
		}
	}
}

func TestDecryptWriterRefuses(t *testing.T) {
	iv, _ := parseIV(testIVHex)
	good := encrypt(t, testKey, iv, []byte("seventeen bytes!!"))
	// A block whose padding is wrong: encrypt raw blocks without padding.
	rawEnc := func(plain []byte) []byte {
		block, _ := aes.NewCipher(testKey)
		out := bytes.Clone(plain)
		cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out, out)
		return out
	}
	tests := []struct {
		name string
		key  []byte
		ct   []byte
	}{
		{"empty", testKey, nil},
		{"partial block", testKey, good[:len(good)-1]},
		{"whole blocks plus one byte", testKey, append(bytes.Clone(good), 0)},
		{"padding byte 0", testKey, rawEnc(append(bytes.Repeat([]byte{'a'}, 15), 0))},
		{"padding byte 17", testKey, rawEnc(append(bytes.Repeat([]byte{'a'}, 15), 17))},
		{"padding bytes differ", testKey, rawEnc(append(bytes.Repeat([]byte{'a'}, 13), 1, 3, 3))},
		{"wrong key", wrongKey, encrypt(t, testKey, iv, bytes.Repeat([]byte{0x47}, 16*50+3))},
	}
	for _, tt := range tests {
		for _, writes := range []int{1, 16, 0} {
			t.Run(fmt.Sprintf("%s/writes of %d", tt.name, writes), func(t *testing.T) {
				got, err := decryptAll(tt.key, iv, tt.ct, writes)
				if tt.name == "wrong key" && err == nil {
					// Valid padding by chance (about 1 in 256): the content is still wrong.
					if bytes.Equal(got, bytes.Repeat([]byte{0x47}, 16*50+3)) {
						t.Fatal("decrypted with the wrong key")
					}
					return
				}
				if !errors.Is(err, ErrDecrypt) {
					t.Fatalf("decrypt: %v, want ErrDecrypt", err)
				}
			})
		}
	}
}

// A browser plays an encrypted playlist through the proxy: the key it fetched
// is kept (the origin never serves it to the backfill), its encrypted segments
// are neither tee'd nor answered from the decrypted copies on disk, and the
// recording is the clear media.
func TestCaptureEncryptedPlaylist(t *testing.T) {
	fx, u := newEncFixture(t, encOrigin{seq: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCapture(ctx, fx.store, CaptureOptions{OutDir: t.TempDir(), Run: fastOpts(), Merge: MergeOptions{KeepSegments: true}})
	defer c.Wait()
	defer cancel()

	// The playlist request carries no cookie, so the backfill cannot fetch
	// the key itself: only the browser's copy can make the recording work.
	body := fetchBody(t, fx, u)
	browse(t, c, u, body, map[string]string{"Referer": testReferer})
	s := onlySession(t, fx.store)
	if m := s.Main(); m == nil || len(m.Keys) == 0 {
		t.Fatalf("captured session has no key")
	}

	exchange := func(url, ctype string, n int) *proxy.Exchange {
		req := httptest.NewRequest(http.MethodGet, url, nil)
		for k, v := range fx.headers() {
			req.Header.Set(k, v)
		}
		return &proxy.Exchange{Req: req, Status: http.StatusOK, RespHeader: http.Header{"Content-Type": {ctype}},
			ContentLength: int64(n), Received: time.Now()}
	}
	keyURL := fx.origin.URL + "keys/video.key"
	tap := c.Observe(exchange(keyURL, "application/octet-stream", len(testKey)))
	if tap == nil {
		t.Fatalf("Observe(key %s) = nil, want a tap keeping the key", keyURL)
	}
	if _, err := tap.Write(testKey); err != nil {
		t.Fatal(err)
	}
	tap.Close(nil)

	// The browser's first segment: encrypted bytes, not tee'd.
	seg0 := fx.origin.URL + "enc_00000.ts"
	if tap := c.Observe(exchange(seg0, "video/mp2t", 100)); tap != nil {
		t.Errorf("Observe(encrypted segment) tees it; want nil (the backfill fetches and decrypts)")
		tap.Close(errors.New("test: not used"))
	}

	done := waitState(t, fx.store, s.ID, StateDone)
	fx.checkOutput(t, done.Output)
	if n := fx.origin.Completed("keys/video.key"); n != 0 {
		t.Errorf("the origin served the key %d times; want 0 (the browser's copy is kept)", n)
	}
	if got, err := os.ReadFile(done.Main().KeyPath(&done.Main().Keys[0])); err != nil || !bytes.Equal(got, testKey) {
		t.Errorf("kept key %x (%v), want %x", got, err, testKey)
	}
	if !done.Main().Have(0) {
		t.Fatalf("segment 0 not kept")
	}
	if resp := c.Respond(httptest.NewRequest(http.MethodGet, seg0, nil)); resp != nil {
		resp.Body.Close()
		t.Errorf("Respond answered an encrypted stream's segment from the decrypted copy")
	}
}

// fetchBody gets a file from the fixture's origin as the browser would.
func fetchBody(t *testing.T, fx *fixture, u string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range fx.headers() {
		req.Header.Set(k, v)
	}
	resp, err := fx.origin.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}
