package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// PatchStatus says what happened to one patch of the series.
type PatchStatus string

// Patch outcomes.
const (
	// Applied: the patch applied cleanly.
	Applied PatchStatus = "applied"
	// AlreadyApplied: the base already has the patch's changes (it
	// applies in reverse and not forward); it was skipped.
	AlreadyApplied PatchStatus = "already applied"
)

// PatchResult is one patch of the series and what became of it.
type PatchResult struct {
	Number, Total int
	Subject       string
	Status        PatchStatus
	Files         []string
}

// ApplyError is a patch of the series that does not apply. The work tree is
// back at the base when it is returned.
type ApplyError struct {
	Patch Patch
	// File is the file that failed, "" when git did not name one.
	File string
	// Hunk is the 1-based number of the failing hunk within File, 0 when
	// unknown; HunkHeader is its "@@ ... @@" line.
	Hunk       int
	HunkHeader string
	// Detail is what git apply said.
	Detail string
}

func (e *ApplyError) Error() string {
	where := ""
	switch {
	case e.File != "" && e.Hunk > 0:
		where = fmt.Sprintf(": %s hunk #%d (%s)", e.File, e.Hunk, e.HunkHeader)
	case e.File != "":
		where = ": " + e.File
	}
	return fmt.Sprintf("build: %s (%s) does not apply%s: %s", e.Patch.Label(), e.Patch.Origin, where, e.Detail)
}

var (
	failedAtRe = regexp.MustCompile(`error: patch failed: (\S+):(\d+)`)
	fileErrRe  = regexp.MustCompile(`error: (\S+): (does not exist in index|No such file or directory|already exists in working directory|patch does not apply|does not match index)`)
)

// applySeries applies the patches in order to the work tree with git
// apply. A patch that is already in the tree is skipped and said. On the
// first patch that does not apply, the tree is reset to the base and an
// *ApplyError is returned.
func applySeries(ctx context.Context, s *source, tmpDir string, patches []Patch, st *status) ([]PatchResult, error) {
	var results []PatchResult
	for _, p := range patches {
		st.phase("apply", p.Label())
		f, err := os.CreateTemp(tmpDir, "patch-*.patch")
		if err != nil {
			return nil, fmt.Errorf("build: writing %s: %w", p.Label(), err)
		}
		name := f.Name()
		_, werr := f.Write(p.Data)
		f.Close()
		if werr != nil {
			os.Remove(name)
			return nil, fmt.Errorf("build: writing %s: %w", p.Label(), werr)
		}
		status, aerr := applyOne(ctx, s.dir, name, p, s.keep)
		os.Remove(name)
		if aerr != nil {
			if rerr := s.reset(ctx); rerr != nil {
				return nil, fmt.Errorf("%w (and then: %v)", aerr, rerr)
			}
			return nil, aerr
		}
		if status == AlreadyApplied {
			st.note(fmt.Sprintf("%s is already applied in the base; skipped", p.Label()))
		}
		results = append(results, PatchResult{Number: p.Number, Total: p.Total, Subject: p.Subject, Status: status, Files: p.Files})
	}
	return results, nil
}

// applyOne applies one patch file in dir; with index, to the index too
// (so that a reset to the base removes the files it adds).
func applyOne(ctx context.Context, dir, file string, p Patch, index bool) (PatchStatus, error) {
	apply := []string{"git", "apply"}
	if index {
		apply = append(apply, "--index")
	}
	_, checkErr := run(ctx, dir, nil, append(apply, "--check", file)...)
	if checkErr == nil {
		if _, err := run(ctx, dir, nil, append(apply, "--whitespace=nowarn", file)...); err != nil {
			return "", &ApplyError{Patch: p, Detail: err.Error()}
		}
		return Applied, nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("build: applying %s: %w", p.Label(), ended(ctx))
	}
	if _, err := run(ctx, dir, nil, append(apply, "--check", "--reverse", file)...); err == nil {
		return AlreadyApplied, nil
	}
	return "", newApplyError(p, checkErr.Error())
}

// newApplyError finds the failing file and hunk in git apply's message.
func newApplyError(p Patch, msg string) *ApplyError {
	e := &ApplyError{Patch: p}
	if i := strings.Index(msg, "error:"); i >= 0 {
		e.Detail = strings.Join(strings.Fields(strings.ReplaceAll(msg[i:], "\n", "; ")), " ")
	} else {
		e.Detail = msg
	}
	if m := failedAtRe.FindStringSubmatch(msg); m != nil {
		e.File = m[1]
		line, _ := strconv.Atoi(m[2])
		for _, h := range hunks(p.Data) {
			if h.file == e.File && h.oldStart == line {
				e.Hunk, e.HunkHeader = h.index, h.header
				break
			}
		}
		return e
	}
	if m := fileErrRe.FindStringSubmatch(msg); m != nil {
		e.File = filepath.Clean(m[1])
	}
	return e
}
