// Command streamsnatcher records streaming video: it learns how a stream numbers
// its segments, fetches every one of them concurrently and merges them with ffmpeg.
package main

import "os"

func main() { os.Exit(Main(os.Args[1:])) }
