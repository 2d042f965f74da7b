package dash_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"

	"github.com/streamsnatcher/streamsnatcher/dash"
)

// An on-demand manifest lists each representation as one file whose
// segments are in its sidx box: Plan says which bytes to fetch, and
// PlanIndexed finishes the plan with them.
func ExampleMPD_PlanIndexed() {
	manifest := `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT4S">
	  <Period><AdaptationSet mimeType="video/mp4">
	    <Representation id="v" bandwidth="900000" width="640" height="360"><BaseURL>v360.mp4</BaseURL>
	      <SegmentBase indexRange="800-855"><Initialization range="0-799"/></SegmentBase>
	    </Representation>
	  </AdaptationSet></Period></MPD>`
	base, _ := url.Parse("https://cdn.example.com/movie/manifest.mpd")
	m, err := dash.Parse([]byte(manifest), base)
	if err != nil {
		panic(err)
	}
	_, err = m.Plan(dash.Selection{})
	var need *dash.NeedsIndexError
	if !errors.As(err, &need) {
		panic(err)
	}
	index := map[dash.IndexRef][]byte{}
	for _, ref := range need.Refs {
		fmt.Println("fetch", ref.URL, ref.Range.Header())
		index[ref] = fetch(ref) // the caller's HTTP client, with the Range header
	}
	p, err := m.PlanIndexed(dash.Selection{}, index)
	if err != nil {
		panic(err)
	}
	for _, t := range p.Tracks {
		fmt.Println(t.ID, "init", t.Inits[0].Range.Header())
		for _, s := range t.Segments {
			fmt.Printf("%s %s %.1fs\n", t.ID, s.Range.Header(), s.Duration)
		}
	}
	// Output:
	// fetch https://cdn.example.com/movie/v360.mp4 bytes=800-855
	// video init bytes=0-799
	// video bytes=856-50855 2.0s
	// video bytes=50856-90855 2.0s
}

// fetch stands in for a ranged GET: a 56-byte sidx of two 2-second references.
func fetch(dash.IndexRef) []byte {
	b := binary.BigEndian.AppendUint32(nil, 56)
	b = append(b, "sidx"...)
	b = append(b, 0, 0, 0, 0)                     // version 0, flags
	b = binary.BigEndian.AppendUint32(b, 1)       // reference_ID
	b = binary.BigEndian.AppendUint32(b, 1000)    // timescale
	b = binary.BigEndian.AppendUint32(b, 0)       // earliest_presentation_time
	b = binary.BigEndian.AppendUint32(b, 0)       // first_offset
	b = binary.BigEndian.AppendUint32(b, 2)       // reserved, reference_count
	for _, size := range []uint32{50000, 40000} { // references
		b = binary.BigEndian.AppendUint32(b, size)
		b = binary.BigEndian.AppendUint32(b, 2000)
		b = binary.BigEndian.AppendUint32(b, 1<<31)
	}
	return b
}
