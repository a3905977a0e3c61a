package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Modules load one at a time in the list's order, with their parameters,
// each after between (which brings the network up once its NIC exists),
// and between runs once more after the last; a failed load stops the list.
func TestLoadModulesInOrderBetweenEach(t *testing.T) {
	list := filepath.Join(t.TempDir(), "modules")
	os.WriteFile(list, []byte("/m/a.ko\n\n/m/b.ko p=1 q=2\n/m/c.ko\n"), 0o644)
	var events []string
	between := func() error { events = append(events, "between"); return nil }
	load := func(path, params string) error {
		events = append(events, strings.TrimSpace("load "+filepath.Base(path)+" "+params))
		if filepath.Base(path) == "c.ko" && len(events) > 100 {
			return errors.New("unreachable")
		}
		return nil
	}
	if err := loadModules(list, between, load); err != nil {
		t.Fatal(err)
	}
	want := "between,load a.ko,between,load b.ko p=1 q=2,between,load c.ko,between"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("events %s\nwant   %s", got, want)
	}
	events = nil
	err := loadModules(list, between, func(path, params string) error {
		events = append(events, "load "+filepath.Base(path))
		if filepath.Base(path) == "b.ko" {
			return errors.New("load module b.ko: bad signature")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "b.ko") || strings.Contains(strings.Join(events, ","), "c.ko") {
		t.Errorf("after a failed load: %v, events %v", err, events)
	}
	if err := loadModules(filepath.Join(t.TempDir(), "none"), between, load); err != nil {
		t.Errorf("no list: %v", err)
	}
}
