// Package cache names kregress's cache root, the one folder every part of
// kregress keeps its caches under (builds, source trees, ccache, the guest
// agent, images, the accelerator probe). It is shared by all checkouts and
// protected by flocks where it is written.
package cache

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root returns the cache root, absolute: $KREGRESS_CACHE, else
// $XDG_CACHE_HOME/kregress, else ~/.cache/kregress. It is the only
// function that reads those variables.
func Root() (string, error) {
	if d := os.Getenv("KREGRESS_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Abs(filepath.Join(d, "kregress"))
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache: no cache folder: KREGRESS_CACHE, XDG_CACHE_HOME and HOME are all unset: %w", err)
	}
	return filepath.Join(home, ".cache", "kregress"), nil
}
