package job

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/suites"
)

// losingExec is the fake executor whose series directory disappears
// after the last run, as if the disk had filled: result.json cannot be
// written.
type losingExec struct{ *fakeExec }

func (l losingExec) Run(ctx context.Context, spec Spec) (*results.Result, string, error) {
	r, dir, err := l.fakeExec.Run(ctx, spec)
	if filepath.Base(spec.Out) != "base" {
		os.RemoveAll(filepath.Dir(spec.Out))
	}
	return r, dir, err
}

// TestSeriesRecordLost: when the series' result.json cannot be written,
// TestSeries still returns the verdict, with an error saying the record
// is missing (it was dropped without a word).
func TestSeriesRecordLost(t *testing.T) {
	f := &fakeExec{t: t, n: 1}
	res, dir, err := TestSeries(t.Context(), SeriesSpec{
		Build:  build.Request{Source: "/src/linux", Series: writeSeries(t, 1)},
		Suites: []*suites.Suite{{Name: "s1"}}, Out: t.TempDir(), Executor: losingExec{f},
	})
	if res == nil || res.Status != results.StatusPass || dir == "" {
		t.Fatalf("result %+v, dir %q: the verdict was lost with the record", res, dir)
	}
	if err == nil || !strings.Contains(err.Error(), "result.json") {
		t.Errorf("err %v, want one naming result.json", err)
	}
}
