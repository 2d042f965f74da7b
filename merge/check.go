package merge

import (
	"fmt"
	"path/filepath"
)

// Check reports, before anything is downloaded, what would stop a merge into
// output: ffmpeg or ffprobe missing (ErrNoFFmpeg), or an output directory that
// is missing or unwritable.
func Check(opts Options, output string) error {
	if _, _, err := lookTools(opts.FFmpeg, opts.FFprobe); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := checkDir(filepath.Dir(output)); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return nil
}
