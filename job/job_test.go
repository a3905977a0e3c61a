package job

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/internal/testkernel"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

// TestWorkloadsOnTmpfs runs every shipped tmpfs workload suite in one real
// guest and checks each workload's own verdict and figures, plus one test
// whose workload must fail.
func TestWorkloadsOnTmpfs(t *testing.T) {
	kernel := testkernel.Debian(t)
	all := &suites.Suite{Name: "workloads", Target: suites.TargetTmpfs}
	for _, n := range []string{"stat", "lookup", "readdir", "racer", "mount-cycle"} {
		s, err := suites.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		all.Tests = append(all.Tests, s.Tests...)
	}
	// A stat storm over a name that does not exist must fail its verdict.
	bad, err := suites.Parse("bad.yaml", []byte("name: bad\ntests:\n  - name: stat-of-missing-must-fail\n    workload: stat\n    duration: 1s\n    args: {use: no-such-file}\n    expect: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	all.Tests = append(all.Tests, bad.Tests...)
	res, dir, err := Run(context.Background(), Spec{Kernel: kernel, Suite: all, Out: t.TempDir(), CacheDir: filepath.Join(t.TempDir(), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run dir %s: %s %s", dir, res.Status, res.Reason)
	if res.Status != results.StatusPass {
		t.Errorf("status %s: %s", res.Status, res.Reason)
	}
	for _, tt := range res.Tests {
		t.Logf("%-28s %s %.1fs ops/s=%v verdict=%v unexpected=%v", tt.Name, tt.Status, tt.Seconds, tt.Metrics["ops_per_sec"], tt.Metrics["verdict"], tt.Metrics["unexpected_errors"])
		if tt.Status != results.StatusPass {
			t.Errorf("%s: %s (%s)", tt.Name, tt.Status, tt.Message)
		}
	}
	for _, tt := range res.Tests {
		if tt.Name == "lookup-after-mkdir" || tt.Name == "ls-lR" {
			continue // shell tests
		}
		want := "pass"
		if tt.Name == "stat-of-missing-must-fail" {
			want = "fail"
		}
		if tt.Metrics == nil || tt.Metrics["verdict"] != want {
			t.Errorf("%s: metrics %v, want verdict %s", tt.Name, tt.Metrics, want)
			continue
		}
		if ops, _ := tt.Metrics["ops"].(float64); ops <= 0 {
			t.Errorf("%s: no operations counted", tt.Name)
		}
	}
}

// TestLustreSanityRealClient mounts the simulated Lustre server from a
// real Lustre client in the guest. The client's modules are not part of
// this repository (build lustre-release's client against the guest
// kernel's headers); point KREGRESS_LUSTRE_MODULES at their folder.
func TestLustreSanityRealClient(t *testing.T) {
	mods := os.Getenv("KREGRESS_LUSTRE_MODULES")
	if mods == "" {
		t.Skip("KREGRESS_LUSTRE_MODULES is not set: no real Lustre client modules to test with")
	}
	kernel := testkernel.Debian(t)
	kos, _ := filepath.Glob(filepath.Join(mods, "*.ko"))
	if len(kos) == 0 {
		t.Fatalf("no .ko files in %s", mods)
	}
	s, err := suites.Load("lustre-sanity")
	if err != nil {
		t.Fatal(err)
	}
	res, dir, err := Run(context.Background(), Spec{Kernel: kernel, Suite: s, Out: t.TempDir(),
		Lustre: LustreSpec{Modules: kos}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range res.Tests {
		t.Logf("%-20s %s %.1fs %s", tt.Name, tt.Status, tt.Seconds, tt.Message)
	}
	if res.Status != results.StatusPass {
		t.Fatalf("status %s: %s (run dir %s)", res.Status, res.Reason, dir)
	}
	rpcs, _ := os.ReadFile(filepath.Join(dir, "lustre-rpcs.log"))
	for _, op := range []string{"MGS_CONNECT", "MDS_CONNECT", "MDS_GET_ROOT", "LDLM_ENQUEUE", "MDS_READPAGE", "MDS_DISCONNECT"} {
		if !strings.Contains(string(rpcs), "rpc "+op+" ") {
			t.Errorf("the server never saw %s", op)
		}
	}
}

// A boolean workload argument reaches the workload: "-mix true" would end
// the flags at "true" and leave the ones after it unset.
func TestWorkloadCommandBoolArgs(t *testing.T) {
	got := workloadCommand(suites.Test{Workload: "server-churn", Threads: 2, Args: map[string]string{"mix": "true", "names": "a,b"}})
	want := "/init server-churn -threads 2 -mix='true' -names='a,b'"
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
