package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// RunRow is one recorded run, for listings.
type RunRow struct {
	ID          int64     `json:"id"`
	Dir         string    `json:"dir"`
	Kind        string    `json:"kind"` // run, series, step
	Job         string    `json:"job,omitempty"`
	Step        string    `json:"step,omitempty"`
	Started     time.Time `json:"started"`
	WallSeconds float64   `json:"wall_seconds"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	Kernel      string    `json:"kernel,omitempty"`
	Release     string    `json:"release,omitempty"`
	Suite       string    `json:"suite,omitempty"`
	Tests       int       `json:"tests"`
	Failed      int       `json:"failed"`
	Crashes     []string  `json:"crashes"` // bug titles
}

// BugRow is one bug, for listings.
type BugRow struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	AltTitles []string  `json:"alt_titles"`
	Type      string    `json:"type"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int       `json:"count"`
	Status    string    `json:"status"`
	Job       string    `json:"job,omitempty"` // the job that saw it last
	// Runs are the run directories that showed it, oldest first.
	Runs []string `json:"runs"`
}

// Runs lists the recorded runs of job (all when empty), oldest first.
func (h *DB) Runs(ctx context.Context, job string) ([]RunRow, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT r.id, r.dir, r.kind, coalesce(j.name, ''), r.step, r.started, r.wall_seconds, r.status, r.reason,
		r.kernel, r.release, r.suite,
		(SELECT count(*) FROM tests t WHERE t.run_id = r.id),
		(SELECT count(*) FROM tests t WHERE t.run_id = r.id AND t.status IN ('fail', 'timeout', 'crash'))
		FROM runs r LEFT JOIN jobs j ON j.id = r.job_id
		WHERE (? = '' OR j.name = ?) ORDER BY r.started, r.id`, job, job)
	if err != nil {
		return nil, fmt.Errorf("history: list runs: %w", err)
	}
	defer rows.Close()
	out := []RunRow{}
	for rows.Next() {
		var r RunRow
		var started string
		if err := rows.Scan(&r.ID, &r.Dir, &r.Kind, &r.Job, &r.Step, &started, &r.WallSeconds, &r.Status, &r.Reason,
			&r.Kernel, &r.Release, &r.Suite, &r.Tests, &r.Failed); err != nil {
			return nil, fmt.Errorf("history: list runs: %w", err)
		}
		r.Started, _ = time.Parse(time.RFC3339Nano, started)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list runs: %w", err)
	}
	for i := range out {
		titles, err := h.strings(ctx, `SELECT b.title FROM crashes c JOIN bugs b ON b.id = c.bug_id WHERE c.run_id = ? ORDER BY c.id`, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Crashes = titles
	}
	return out, nil
}

// Bugs lists the bugs whose title or alternative titles contain title
// (all when empty) and, when job is set, that job's runs showed; newest
// sighting first.
func (h *DB) Bugs(ctx context.Context, job, title string) ([]BugRow, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT b.id, b.title, b.base_title, b.alt_titles, b.type, b.first_seen, b.last_seen, b.count, b.status, coalesce(j.name, '')
		FROM bugs b LEFT JOIN jobs j ON j.id = b.last_job
		WHERE (? = '' OR instr(lower(b.title), lower(?)) > 0 OR instr(lower(b.alt_titles), lower(?)) > 0)
		AND (? = '' OR EXISTS (SELECT 1 FROM crashes c JOIN runs r ON r.id = c.run_id JOIN jobs jj ON jj.id = r.job_id WHERE c.bug_id = b.id AND jj.name = ?))
		ORDER BY b.last_seen DESC, b.id DESC`, title, title, title, job, job)
	if err != nil {
		return nil, fmt.Errorf("history: list bugs: %w", err)
	}
	defer rows.Close()
	out := []BugRow{}
	for rows.Next() {
		var b BugRow
		var base, alts, first, last string
		if err := rows.Scan(&b.ID, &b.Title, &base, &alts, &b.Type, &first, &last, &b.Count, &b.Status, &b.Job); err != nil {
			return nil, fmt.Errorf("history: list bugs: %w", err)
		}
		var all []string
		json.Unmarshal([]byte(alts), &all)
		b.AltTitles = []string{}
		for _, a := range all {
			if a != base {
				b.AltTitles = append(b.AltTitles, a)
			}
		}
		b.FirstSeen, _ = time.Parse(time.RFC3339Nano, first)
		b.LastSeen, _ = time.Parse(time.RFC3339Nano, last)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: list bugs: %w", err)
	}
	for i := range out {
		dirs, err := h.strings(ctx, `SELECT r.dir FROM crashes c JOIN runs r ON r.id = c.run_id WHERE c.bug_id = ? ORDER BY r.started, r.id`, out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Runs = dirs
	}
	return out, nil
}

// PreviousRun returns the directory of job's latest top-level run (a run
// or a series) started before the run in dir, "" when there is none.
func (h *DB) PreviousRun(ctx context.Context, job, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("history: %w", err)
	}
	prev, err := h.strings(ctx, `SELECT r.dir FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE j.name = ? AND r.parent_id IS NULL AND r.dir != ?
		AND r.started < coalesce((SELECT started FROM runs WHERE dir = ?), '9999')
		ORDER BY r.started DESC, r.id DESC LIMIT 1`, job, abs, abs)
	if err != nil || len(prev) == 0 {
		return "", err
	}
	return prev[0], nil
}

func (h *DB) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := h.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// roots returns the directories holding the recorded top-level runs.
func (h *DB) roots(ctx context.Context) ([]string, error) {
	dirs, err := h.strings(ctx, `SELECT dir FROM runs WHERE parent_id IS NULL`)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, d := range dirs {
		set[filepath.Dir(d)] = true
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

// Rebuild makes the database at path again from run directories: those
// in the folders that hold the runs it records now and in each of
// extraRoots, up to three folders down. Each run keeps the job its directory names
// (JobFile). Runs are recorded in the order they started, so bug states
// come out as they were. The new database replaces the old one only once
// it is complete. It returns how many run directories it recorded.
func Rebuild(ctx context.Context, path string, extraRoots []string) (int, error) {
	var roots []string
	if _, err := os.Stat(path); err == nil {
		old, err := Open(ctx, path)
		if err != nil {
			return 0, err
		}
		roots, err = old.roots(ctx)
		if err == nil {
			_, err = old.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		}
		old.Close()
		if err != nil {
			return 0, fmt.Errorf("history: rebuild %s: %w", path, err)
		}
	}
	for _, r := range extraRoots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return 0, fmt.Errorf("history: %w", err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return 0, fmt.Errorf("history: rebuild: run folder %s: not a directory", r)
		}
		roots = append(roots, abs)
	}
	type found struct {
		dir, job string
		started  time.Time
	}
	var dirs []found
	seen := map[string]bool{}
	// A folder without result.json is looked into, three levels down
	// (nightly keeps <out>/<night>/<run>); a run or series directory is
	// not (a series holds its steps' runs).
	var walk func(dir string, depth int) error
	walk = func(root string, depth int) error {
		ents, err := os.ReadDir(root)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("history: rebuild: %w", err)
		}
		for _, e := range ents {
			d := filepath.Join(root, e.Name())
			if !e.IsDir() || seen[d] {
				continue
			}
			rd, err := Load(d)
			if err != nil {
				if _, statErr := os.Stat(filepath.Join(d, "result.json")); statErr != nil && depth < 3 {
					if err := walk(d, depth+1); err != nil {
						return err
					}
				}
				continue // not a run directory, or an unfinished one
			}
			seen[d] = true
			f := found{dir: d}
			if rd.Run != nil {
				f.started = rd.Run.Started
			} else {
				f.started = rd.Series.Started
			}
			if b, err := os.ReadFile(filepath.Join(d, JobFile)); err == nil {
				f.job = strings.TrimSpace(string(b))
			}
			dirs = append(dirs, f)
		}
		return nil
	}
	for _, root := range roots {
		if err := walk(root, 1); err != nil {
			return 0, err
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		if !dirs[i].started.Equal(dirs[j].started) {
			return dirs[i].started.Before(dirs[j].started)
		}
		return dirs[i].dir < dirs[j].dir
	})
	tmp := path + ".rebuild"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	nw, err := Open(ctx, tmp)
	if err != nil {
		return 0, err
	}
	for _, f := range dirs {
		if err := nw.Record(ctx, f.job, f.dir); err != nil {
			nw.Close()
			return 0, err
		}
	}
	_, err = nw.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	if cerr := nw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("history: rebuild %s: %w", path, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(path + suffix)
		os.Remove(tmp + suffix)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("history: rebuild: %w", err)
	}
	return len(dirs), nil
}
