package urltemplate_test

import (
	"fmt"

	"github.com/streamsnatcher/streamsnatcher/urltemplate"
)

func ExampleLearn() {
	t, err := urltemplate.Learn([]string{
		"https://cdn.example.com/v/abc/720p/000013.ts?token=T",
		"https://cdn.example.com/v/abc/720p/000012.ts?token=T",
		"https://cdn.example.com/v/abc/720p/000015.ts?token=T",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(t)
	fmt.Println(t.URL(100))
	fmt.Println(t.MatchLoose("https://cdn.example.com/v/abc/720p/000042.ts?token=NEW"))

	_, err = urltemplate.Learn([]string{
		"https://cdn.example.com/v/seg1.ts?sig=Qx7", "https://cdn.example.com/v/seg2.ts?sig=Zk9",
	})
	fmt.Println(err)
	// Output:
	// https://cdn.example.com/v/abc/720p/{index:06d}.ts?token=T (step 1, seen 12..15)
	// https://cdn.example.com/v/abc/720p/000100.ts?token=T
	// 42 true
	// no numbering template: query parameter "sig" changes between segments ("https://cdn.example.com/v/seg1.ts?sig=Qx7" vs "https://cdn.example.com/v/seg2.ts?sig=Zk9")
}

func ExamplePlaceholder() {
	t, err := urltemplate.Placeholder("https://cdn.example.com/v/seg(*).ts", 4)
	if err != nil {
		panic(err)
	}
	fmt.Println(t)
	fmt.Println(t.URL(7))
	_, err = urltemplate.Placeholder("https://cdn.example.com/v/seg.ts", 0)
	fmt.Println(err)
	// Output:
	// https://cdn.example.com/v/seg{index:04d}.ts (step 1, none seen)
	// https://cdn.example.com/v/seg0007.ts
	// need exactly one (*) placeholder: none in "https://cdn.example.com/v/seg.ts"
}
