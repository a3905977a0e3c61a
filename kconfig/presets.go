package kconfig

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed presets/*.config
var presetFS embed.FS

// Presets returns the names of the shipped presets, sorted: qemu-minimal,
// lockdep, kasan, debug-vm, debug-info, lustre-client, nfs-client.
func Presets() []string {
	ents, err := fs.ReadDir(presetFS, "presets")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".config"))
	}
	sort.Strings(names)
	return names
}

// Preset returns the shipped preset called name, e.g. "lockdep".
func Preset(name string) (*Fragment, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("kconfig: no preset %q (presets: %s)", name, strings.Join(Presets(), ", "))
	}
	data, err := presetFS.ReadFile("presets/" + name + ".config")
	if err != nil {
		return nil, fmt.Errorf("kconfig: no preset %q (presets: %s)", name, strings.Join(Presets(), ", "))
	}
	return ParseFragment("preset "+name, data)
}
