package history

import (
	"reflect"
	"testing"

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
