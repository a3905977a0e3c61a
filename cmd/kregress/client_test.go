package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Client-series bad input: one clear error, exit 2, before anything is
// built or booted.
func TestClientFlagsBadInput(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	os.WriteFile(kernel, []byte("not a kernel"), 0o644)
	mods := t.TempDir()
	os.WriteFile(filepath.Join(mods, "lustre.ko"), []byte("not a module"), 0o644)
	series := filepath.Join(dir, "s.patch")
	os.WriteFile(series, []byte("Subject: [PATCH] x\n\n---\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"test", "--source", dir, "--series", series, "--client", dir, "--client-series", series}, "not both"},
		{[]string{"test", "--source", dir, "--client-series", series}, "need the client tree"},
		{[]string{"test", "--kernel", kernel, "--source", dir, "--client", dir, "--client-series", series, "--suite", "lustre-sanity"}, "not both"},
		{[]string{"test", "--kernel", kernel, "--series", series, "--suite", "smoke"}, "must target the client tree"},
		{[]string{"test", "--kernel", kernel, "--client", dir, "--client-series", series, "--suite", "smoke"}, "no suite mounts Lustre"},
		{[]string{"run", "--kernel", kernel, "--lustre-modules", mods, "--suite", "smoke"}, "no suite has target lustre"},
		{[]string{"run", "--build", "--kernel", kernel, "--client", dir, "--suite", "smoke"}, "no suite among smoke mounts Lustre"},
		{[]string{"run", "--build", "--client", dir, "--suite", "lustre-sanity"}, "give it with --kernel"},
		{[]string{"run", "--kernel", kernel, "--client", dir, "--suite", "lustre-sanity"}, "--client is built with --build"},
		{[]string{"run", "--build", "--kernel", kernel, "--client", dir, "--lustre-modules", mods, "--suite", "lustre-sanity"}, "not both"},
	} {
		code, _, stderr := runMain(t, append(tc.args, "--out", t.TempDir())...)
		if code != exitInfra || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, exitInfra, tc.want)
		}
	}
}
