package history

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kregress/kregress/results"
)

func TestCompare(t *testing.T) {
	a := results.Crash{Title: "possible deadlock in seedfs_find"}
	b := results.Crash{Title: "BUG: unable to handle kernel NULL pointer dereference in f", AltTitles: []string{"bad-access in f"}}
	bAlt := results.Crash{Title: "KASAN: null-ptr-deref Read in f", AltTitles: []string{"bad-access in f"}}
	corrupt := results.Crash{Title: "INFO: rcu detected stall in corrupted", AltTitles: []string{"bad-access in f"}, Corrupted: true}
	type cc struct{ change, title string }
	type tc struct{ change, test string }
	tests := []struct {
		name      string
		prev, cur *Snapshot
		wantCrash []cc
		wantTests []tc
	}{
		{"first run", nil, &Snapshot{Crashes: []results.Crash{a}, Tests: map[string]string{"s/x": "fail", "s/y": "pass"}},
			[]cc{{ChangeNew, a.Title}}, []tc{{ChangeRegressed, "s/x"}}},
		{"still", &Snapshot{Crashes: []results.Crash{a}}, &Snapshot{Crashes: []results.Crash{a}},
			[]cc{{ChangeStill, a.Title}}, nil},
		{"fixed", &Snapshot{Crashes: []results.Crash{a}}, &Snapshot{},
			[]cc{{ChangeFixed, a.Title}}, nil},
		{"infra cannot fix", &Snapshot{Crashes: []results.Crash{a}, Tests: map[string]string{"s/x": "fail"}}, &Snapshot{Infra: true},
			[]cc{{ChangeUnknown, a.Title}}, []tc{{ChangeUnknown, "s/x"}}},
		{"alt title is the same crash", &Snapshot{Crashes: []results.Crash{b}}, &Snapshot{Crashes: []results.Crash{bAlt}},
			[]cc{{ChangeStill, bAlt.Title}}, nil},
		{"corrupted matches by title only", &Snapshot{Crashes: []results.Crash{b}}, &Snapshot{Crashes: []results.Crash{corrupt}},
			[]cc{{ChangeNew, corrupt.Title}, {ChangeFixed, b.Title}}, nil},
		{"new and fixed at once", &Snapshot{Crashes: []results.Crash{a}}, &Snapshot{Crashes: []results.Crash{b}},
			[]cc{{ChangeNew, b.Title}, {ChangeFixed, a.Title}}, nil},
		{"tests", &Snapshot{Tests: map[string]string{"s/p2f": "pass", "s/f2f": "fail", "s/f2p": "timeout", "s/p2p": "pass", "s/f2skip": "fail"}},
			&Snapshot{Tests: map[string]string{"s/p2f": "crash", "s/f2f": "timeout", "s/f2p": "pass", "s/p2p": "pass", "s/f2skip": "skip", "s/new": "fail"}},
			nil, []tc{{ChangeStillFailing, "s/f2f"}, {ChangeFixed, "s/f2p"}, {ChangeUnknown, "s/f2skip"}, {ChangeRegressed, "s/new"}, {ChangeRegressed, "s/p2f"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(tt.prev, tt.cur)
			var gc []cc
			for _, c := range got.Crashes {
				gc = append(gc, cc{c.Change, c.Title})
			}
			var gt []tc
			for _, c := range got.Tests {
				gt = append(gt, tc{c.Change, c.Test})
			}
			if !reflect.DeepEqual(gc, tt.wantCrash) {
				t.Errorf("crashes %v, want %v", gc, tt.wantCrash)
			}
			if !reflect.DeepEqual(gt, tt.wantTests) {
				t.Errorf("tests %v, want %v", gt, tt.wantTests)
			}
		})
	}
}

// TestSeriesMatchesJob decodes what job.TestSeries writes (results.SeriesResult) into Series: the
// two types must not drift apart.
func TestSeriesMatchesJob(t *testing.T) {
	c := results.Crash{Title: "possible deadlock in seedfs_find", Type: "LOCKDEP", StartLine: 3, EndLine: 9}
	js := results.SeriesResult{Status: "regression", Reason: "r", Source: "src", BaseRef: "v6.1", Series: "s", Configs: []string{"lockdep"},
		Suites: []string{"seedfs"}, Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), WallSeconds: 7,
		Base: &results.Step{Verdict: "pass", BuildKey: "k0", Kernel: "/o/base/bzImage", Runs: []string{"/o/base/r"}, Tests: map[string]results.Status{"seedfs/mount": "pass"}, Crashes: []results.SeriesCrash{}},
		Patches: []*results.PatchVerdict{{Index: 3, Subject: "seedfs: x", Step: results.Step{Verdict: "crash", BuildSeconds: 4, Incremental: true,
			Crashes: []results.SeriesCrash{{Crash: c, Status: "new", Run: "/o/patch-03/r"}}}}},
		FirstBad: &results.FirstBad{Index: 3, Subject: "seedfs: x", Verdict: "crash", Title: c.Title, Reproduce: "kregress run"},
	}
	data, _ := json.Marshal(js)
	var s Series
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	back, _ := json.Marshal(s)
	var m1, m2 map[string]any
	json.Unmarshal(data, &m1)
	json.Unmarshal(back, &m2)
	// Every field Series has must come back as job wrote it; fields
	// Series leaves out (compiled, warnings) are the only difference.
	for _, st := range []map[string]any{m1["base"].(map[string]any), m1["patches"].([]any)[0].(map[string]any)} {
		delete(st, "compiled")
		delete(st, "warnings")
	}
	if !reflect.DeepEqual(m1, m2) {
		t.Errorf("results.SeriesResult and history.Series differ:\njob     %s\nhistory %s", data, back)
	}
}
