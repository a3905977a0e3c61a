package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeList writes a module list and a modules.dep beside the modules, as
// package images does, and returns the list's path and the modules' dir.
func writeList(t *testing.T, list, dep string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib", "modules", "r")
	os.MkdirAll(mods, 0o755)
	if dep != "" {
		os.WriteFile(filepath.Join(mods, "modules.dep"), []byte(dep), 0o644)
	}
	l := filepath.Join(dir, "modules")
	os.WriteFile(l, []byte(strings.ReplaceAll(list, "M/", mods+"/")), 0o644)
	return l, mods
}

// The NIC's drivers (before the empty line) load concurrently, each after
// what it depends on; the others one at a time after them, each after
// between, with their parameters.
func TestLoadModulesNetGroupConcurrentRestInOrder(t *testing.T) {
	list, mods := writeList(t,
		"M/a.ko\nM/b.ko\nM/c.ko\nM/d.ko\n\nM/e.ko p=1 q=2\nM/f.ko\n",
		"a.ko:\nb.ko:\nc.ko: a.ko\nd.ko: b.ko c.ko a.ko\ne.ko: a.ko\nf.ko: e.ko\n")
	var mu sync.Mutex
	var events []string
	loaded := map[string]bool{}
	running, most := 0, 0
	load := func(path, params string) error {
		name := strings.TrimSuffix(filepath.Base(path), ".ko")
		if filepath.Dir(path) != mods {
			t.Errorf("module path %s", path)
		}
		mu.Lock()
		running++
		if running > most {
			most = running
		}
		events = append(events, strings.TrimSpace("load "+name+" "+params))
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		loaded[name] = true
		mu.Unlock()
		return nil
	}
	betweens := 0
	between := func() error {
		mu.Lock()
		defer mu.Unlock()
		betweens++
		events = append(events, "between")
		return nil
	}
	check := func(name string, after ...string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, a := range after {
			if !loaded[a] {
				t.Errorf("%s loaded before %s", name, a)
			}
		}
	}
	wrapped := func(path, params string) error {
		switch n := strings.TrimSuffix(filepath.Base(path), ".ko"); n {
		case "c":
			check(n, "a")
		case "d":
			check(n, "a", "b", "c")
		case "e", "f":
			check(n, "a", "b", "c", "d")
		}
		return load(path, params)
	}
	if err := loadModules(list, between, wrapped); err != nil {
		t.Fatal(err)
	}
	if most < 2 {
		t.Errorf("at most %d modules loaded at once: a and b are independent", most)
	}
	// between: before the group, before e, before f, after f.
	want := []string{"load e p=1 q=2", "between", "load f", "between"}
	if got := events[len(events)-4:]; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events end %v, want %v (all: %v)", got, want, events)
	}
	if events[0] != "between" || betweens != 4 {
		t.Errorf("between %d times, events %v", betweens, events)
	}
}

// A list without an empty line is loaded one module at a time, in order;
// so is the group when no modules.dep says what depends on what.
func TestLoadModulesInOrderWithoutGroupOrDeps(t *testing.T) {
	for _, list := range []string{"M/a.ko\nM/b.ko\nM/c.ko\n", "M/a.ko\nM/b.ko\nM/c.ko\n\n"} {
		l, _ := writeList(t, list, "")
		var got []string
		running := false
		err := loadModules(l, func() error { return nil }, func(path, _ string) error {
			if running {
				t.Errorf("%q: two modules at once", list)
			}
			running = true
			got = append(got, filepath.Base(path))
			time.Sleep(time.Millisecond)
			running = false
			return nil
		})
		if err != nil || strings.Join(got, " ") != "a.ko b.ko c.ko" {
			t.Errorf("%q: loaded %v, %v", list, got, err)
		}
	}
}

// A module that fails to load fails the group, and nothing that needs it
// is loaded.
func TestLoadModulesGroupFailure(t *testing.T) {
	l, _ := writeList(t, "M/a.ko\nM/b.ko\n\nM/c.ko\n", "a.ko:\nb.ko: a.ko\nc.ko:\n")
	var mu sync.Mutex
	var got []string
	err := loadModules(l, func() error { return nil }, func(path, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, filepath.Base(path))
		if filepath.Base(path) == "a.ko" {
			return errors.New("load module a.ko: bad signature")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "a.ko") {
		t.Errorf("error %v", err)
	}
	if strings.Join(got, " ") != "a.ko" {
		t.Errorf("loaded %v after a failure", got)
	}
}
