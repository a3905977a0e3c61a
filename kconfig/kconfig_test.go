package kconfig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata")

func readFrag(t *testing.T, path string) *Fragment {
	t.Helper()
	f, err := ReadFragment(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMerge pins merge_config.sh semantics on a base and two fragments:
// the later assignment wins, "# CONFIG_X is not set" replaces a set value,
// new symbols are appended, comments of the base stay.
func TestMerge(t *testing.T) {
	base, err := os.ReadFile("testdata/merge/base.config")
	if err != nil {
		t.Fatal(err)
	}
	first := readFrag(t, "testdata/merge/first.config")
	second := readFrag(t, "testdata/merge/second.config")
	merged, requested := Merge(base, first, second)

	golden := "testdata/merge/merged.golden"
	if *update {
		if err := os.WriteFile(golden, merged, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(merged, want) {
		t.Errorf("merged config differs from %s:\n%s", golden, merged)
	}

	var got []string
	for _, o := range requested {
		got = append(got, o.Line()+" @"+filepath.Base(o.Source))
	}
	wantReq := []string{
		"CONFIG_SMP=y @first.config:2",
		"# CONFIG_PROVE_LOCKING is not set @second.config:2",
		"CONFIG_SLUB=y @first.config:4",
		"# CONFIG_SLOB is not set @first.config:5",
		"CONFIG_LOG_BUF_SHIFT=18 @second.config:4",
		"CONFIG_DEFAULT_HOSTNAME=\"kregress\" @second.config:3",
		"CONFIG_NEW_SYMBOL=m @second.config:5",
	}
	if !reflect.DeepEqual(got, wantReq) {
		t.Errorf("requested options:\n got %q\nwant %q", got, wantReq)
	}

	// The merged text parses, and each symbol appears once.
	f, err := ParseFragment("merged", merged)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, o := range f.Options {
		if seen[o.Name] {
			t.Errorf("%s appears twice in the merged config", o.Name)
		}
		seen[o.Name] = true
	}
}

func TestParseFragmentErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CONFIG_A=y\nCONFIG_B\n", "bad.config:2"},
		{"CONFIG_A=yes\n", `bad value "yes" for CONFIG_A`},
		{"CONFIG_A=\"unterminated\n", "bad value"},
		{"PROVE_LOCKING=y\n", "bad.config:1"},
	} {
		_, err := ParseFragment("bad.config", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFragment(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	if _, err := Load("no-such-preset-or-file"); err == nil || !strings.Contains(err.Error(), "qemu-minimal") {
		t.Errorf("Load of a missing name: %v, want an error listing the presets", err)
	}
	if _, err := Preset("../kconfig_test"); err == nil {
		t.Error("Preset accepted a path")
	}
}

// TestPresets checks that every shipped preset parses and that qemu-minimal
// asks for what the kregress guest needs.
func TestPresets(t *testing.T) {
	want := []string{"debug-info", "debug-vm", "kasan", "lockdep", "lustre-client", "nfs-client", "qemu-minimal"}
	if got := Presets(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Presets() = %q, want %q", got, want)
	}
	for _, name := range want {
		f, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Options) == 0 {
			t.Errorf("preset %s is empty", name)
		}
	}
	f, _ := Preset("qemu-minimal")
	set := map[string]string{}
	for _, o := range f.Options {
		set[o.Name] = o.Value
	}
	for _, s := range strings.Fields(`64BIT PRINTK BUG TTY SERIAL_8250 SERIAL_8250_CONSOLE
		BLK_DEV_INITRD RD_GZIP BINFMT_ELF BINFMT_SCRIPT DEVTMPFS DEVTMPFS_MOUNT PROC_FS
		SYSFS TMPFS SHMEM MULTIUSER FUTEX EPOLL EVENTFD TIMERFD SIGNALFD POSIX_TIMERS NET
		INET UNIX PCI VIRTIO_PCI VIRTIO_NET NETDEVICES MODULES MODULE_UNLOAD KALLSYMS
		KALLSYMS_ALL STACKTRACE UNWINDER_ORC`) {
		if set["CONFIG_"+s] != "y" {
			t.Errorf("qemu-minimal: CONFIG_%s = %q, want y", s, set["CONFIG_"+s])
		}
	}
	if set["CONFIG_UNWINDER_GUESS"] != "n" {
		t.Error("qemu-minimal must turn the guess unwinder off")
	}
	if v, ok := set["CONFIG_PANIC_ON_OOPS"]; ok && v != "n" {
		t.Error("qemu-minimal must not panic on oops")
	}
}

// TestCheck runs the dropped-option check against a small Kconfig tree.
func TestCheck(t *testing.T) {
	final := Config{
		"CONFIG_NET":     "y",
		"CONFIG_INET":    "y",
		"CONFIG_MODULES": "y",
		"CONFIG_DEMO_FS": "m",
	}
	requested := []Option{
		{Name: "CONFIG_NET", Value: "y", Source: "f:1"},
		{Name: "CONFIG_NFS_FS", Value: "y", Source: "f:2"},
		{Name: "CONFIG_NFS_V4", Value: "m", Source: "f:3"},
		{Name: "CONFIG_HIDDEN_HELPER", Value: "y", Source: "f:4"},
		{Name: "CONFIG_NO_SUCH", Value: "y", Source: "f:5"},
		{Name: "CONFIG_SMP", Value: "n", Source: "f:6"},
		{Name: "CONFIG_DEMO_FS", Value: "y", Source: "f:7"},
	}
	dropped, err := Check(final, requested, "testdata/tree", "x86")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range dropped {
		got = append(got, d.String())
	}
	want := []string{
		`CONFIG_NFS_FS=y (f:2) dropped, got n: depends on NET && INET && MULTIUSER (unmet: MULTIUSER)`,
		`CONFIG_NFS_V4=m (f:3) dropped, got n: depends on NET && NFS_FS && (!NFS_DISABLE_V4 || (INET && NET)) (unmet: NFS_FS)`,
		`CONFIG_HIDDEN_HELPER=y (f:4) dropped, got n: it has no prompt: only a select can set it`,
		`CONFIG_NO_SUCH=y (f:5) dropped, got n: no such symbol in this tree's Kconfig files`,
		`CONFIG_DEMO_FS=y (f:7) dropped, got m: depends on NET && MODULES: Kconfig chose m (a select, a choice or a range overrode the request; defined at fs/demo/Kconfig:3)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dropped:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestEvalExpr(t *testing.T) {
	cfg := Config{"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_S": `"abc"`, "CONFIG_N": "17"}
	for expr, want := range map[string]int{
		"A":                   2,
		"B":                   1,
		"C":                   0,
		"!C":                  2,
		"A && B":              1,
		"C || B":              1,
		"!(A && C)":           2,
		`S = "abc"`:           2,
		`S != "abc"`:          0,
		"N >= 16":             2,
		"N < 16":              0,
		"A && (B || C) && !C": 1,
		"X86_64 || (A && !B)": 1,
		"m":                   1,
		"B = m":               2,
		"!B":                  1,
		"A=y && N=17":         2,
	} {
		got, err := evalExpr(expr, cfg)
		if err != nil || got != want {
			t.Errorf("evalExpr(%q) = %d, %v; want %d", expr, got, err, want)
		}
	}
	for _, bad := range []string{"A &&", "(A", `S = "abc`, "A B"} {
		if _, err := evalExpr(bad, cfg); err == nil {
			t.Errorf("evalExpr(%q) gave no error", bad)
		}
	}
}
