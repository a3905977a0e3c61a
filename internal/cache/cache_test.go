package cache

import (
	"path/filepath"
	"testing"
)

func TestRoot(t *testing.T) {
	abs, _ := filepath.Abs("rel/cache")
	for _, c := range []struct{ kc, xdg, home, want string }{
		{"/k", "/x", "/h", "/k"},
		{"rel/cache", "", "/h", abs},
		{"", "/x", "/h", "/x/kregress"},
		{"", "", "/h", "/h/.cache/kregress"},
	} {
		t.Setenv("KREGRESS_CACHE", c.kc)
		t.Setenv("XDG_CACHE_HOME", c.xdg)
		t.Setenv("HOME", c.home)
		if got, err := Root(); err != nil || got != c.want {
			t.Errorf("KREGRESS_CACHE=%q XDG_CACHE_HOME=%q HOME=%q: %q, %v; want %q", c.kc, c.xdg, c.home, got, err, c.want)
		}
	}
	t.Setenv("KREGRESS_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if got, err := Root(); err == nil {
		t.Errorf("no variable set: %q, want an error", got)
	}
}
