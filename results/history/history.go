// Package history is kregress's record: every run directory it is given,
// with its kernel build, tests and crashes, and the bugs those crashes
// belong to across runs, in one SQLite file (pure Go, WAL). Run
// directories stay the source of truth: Rebuild makes the database again
// from them. Each run is recorded in one transaction, so a kregress killed
// mid-write leaves the run recorded whole or not at all.
//
// Crash identity across runs is triage.SameCrash (title, then alternative
// titles), the rule every part of kregress shares. A bug is open until a later run of the job that saw it shows it
// no more; a crash that matches only fixed bugs opens a new bug whose title
// carries a counter, "title (2)", as syzbot names recurrences.
package history

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/results/triage"
)

// FileName is the database's file name under the data directory.
const FileName = "history.db"

// JobFile is the file a run directory keeps its job name in, written by
// Record, so Rebuild gives the run back to its job.
const JobFile = "job"

// Bug statuses.
const (
	BugOpen  = "open"
	BugFixed = "fixed"
)

// excerptMax bounds a crash's stored log excerpt.
const excerptMax = 16 << 10

// DataDir returns the directory the history database lives in:
// $KREGRESS_DATA, else $XDG_DATA_HOME/kregress, else
// ~/.local/share/kregress.
func DataDir() (string, error) {
	if d := os.Getenv("KREGRESS_DATA"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kregress"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("history: data dir: %w", err)
	}
	return filepath.Join(home, ".local", "share", "kregress"), nil
}

// migrations are the schema's versions: migrations[i] takes the database
// from version i to i+1 (PRAGMA user_version). Append; never edit one that
// has shipped.
var migrations = []string{
	`CREATE TABLE jobs (
		id   INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE
	);
	CREATE TABLE builds (
		id              INTEGER PRIMARY KEY,
		tree            TEXT NOT NULL,
		commit_ref      TEXT NOT NULL,
		series          TEXT NOT NULL,
		config_digest   TEXT NOT NULL,
		image_signature TEXT NOT NULL,
		UNIQUE (tree, commit_ref, series, config_digest, image_signature)
	);
	CREATE TABLE runs (
		id           INTEGER PRIMARY KEY,
		dir          TEXT NOT NULL UNIQUE,
		kind         TEXT NOT NULL,
		parent_id    INTEGER REFERENCES runs(id) ON DELETE CASCADE,
		job_id       INTEGER REFERENCES jobs(id),
		build_id     INTEGER REFERENCES builds(id),
		step         TEXT NOT NULL DEFAULT '',
		started      TEXT NOT NULL,
		wall_seconds REAL NOT NULL,
		status       TEXT NOT NULL,
		reason       TEXT NOT NULL,
		kernel       TEXT NOT NULL,
		release      TEXT NOT NULL,
		suite        TEXT NOT NULL
	);
	CREATE INDEX runs_job ON runs(job_id, started);
	CREATE TABLE tests (
		id      INTEGER PRIMARY KEY,
		run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name    TEXT NOT NULL,
		status  TEXT NOT NULL,
		seconds REAL NOT NULL,
		message TEXT NOT NULL
	);
	CREATE INDEX tests_run ON tests(run_id);
	CREATE TABLE bugs (
		id         INTEGER PRIMARY KEY,
		title      TEXT NOT NULL UNIQUE,
		base_title TEXT NOT NULL,
		alt_titles TEXT NOT NULL,
		type       TEXT NOT NULL,
		first_seen TEXT NOT NULL,
		last_seen  TEXT NOT NULL,
		count      INTEGER NOT NULL,
		status     TEXT NOT NULL,
		last_job   INTEGER REFERENCES jobs(id),
		fixed_run  INTEGER REFERENCES runs(id)
	);
	CREATE TABLE crashes (
		id         INTEGER PRIMARY KEY,
		run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		bug_id     INTEGER NOT NULL REFERENCES bugs(id),
		title      TEXT NOT NULL,
		start_line INTEGER NOT NULL,
		end_line   INTEGER NOT NULL,
		excerpt    TEXT NOT NULL
	);
	CREATE INDEX crashes_run ON crashes(run_id);
	CREATE INDEX crashes_bug ON crashes(bug_id);`,
}

// SchemaVersion is the schema version this kregress writes.
var SchemaVersion = len(migrations)

// testHookBetweenWrites, when set (by tests), runs between the statements
// of a run's transaction.
var testHookBetweenWrites func()

// DB is an open history database.
type DB struct {
	db   *sql.DB
	path string
}

// Open opens (creating it when missing) the history database at path,
// in WAL mode, and brings its schema up to SchemaVersion. A database of a
// newer schema is refused.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	h := &DB{db: db, path: path}
	if err := h.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return h, nil
}

// Close closes the database.
func (h *DB) Close() error { return h.db.Close() }

// Path is the database file.
func (h *DB) Path() string { return h.path }

func (h *DB) migrate(ctx context.Context) error {
	var mode string
	if err := h.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("history: %s: %w", h.path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("history: %s: journal mode is %q, want wal", h.path, mode)
	}
	for {
		tx, err := h.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("history: %s: %w", h.path, err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			tx.Rollback()
			return fmt.Errorf("history: %s: schema version: %w", h.path, err)
		}
		if v > len(migrations) {
			tx.Rollback()
			return fmt.Errorf("history: %s has schema version %d, this kregress knows up to %d", h.path, v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Rollback()
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("history: %s: migration %d: %w", h.path, v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("history: %s: migration %d: %w", h.path, v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("history: %s: migration %d: %w", h.path, v+1, err)
		}
	}
}

// Version returns the database's schema version.
func (h *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := h.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// Check runs SQLite's integrity and foreign-key checks and the record's
// own invariants (each bug's count is its crashes), and returns what is
// wrong, or nil.
func (h *DB) Check(ctx context.Context) error {
	var ok string
	if err := h.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil {
		return fmt.Errorf("history: integrity check: %w", err)
	}
	if ok != "ok" {
		return fmt.Errorf("history: integrity check: %s", ok)
	}
	rows, err := h.db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("history: foreign key check: %w", err)
	}
	bad := rows.Next()
	rows.Close()
	if bad {
		return errors.New("history: foreign key check: dangling references")
	}
	var n int
	err = h.db.QueryRowContext(ctx, `SELECT count(*) FROM bugs b WHERE b.count != (SELECT count(*) FROM crashes c WHERE c.bug_id = b.id)`).Scan(&n)
	if err != nil {
		return fmt.Errorf("history: bug counts: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("history: %d bugs whose count is not their number of crashes", n)
	}
	return nil
}

// Recorded reports whether dir is in the record.
func (h *DB) Recorded(ctx context.Context, dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, fmt.Errorf("history: %w", err)
	}
	var n int
	err = h.db.QueryRowContext(ctx, "SELECT count(*) FROM runs WHERE dir = ?", abs).Scan(&n)
	return n > 0, err
}

// Record adds the run directory dir (a single run or a series with its
// steps' runs) to the record as a run of job (may be empty: no job), in
// one transaction. The job's name is also written into the directory
// (JobFile), so that Rebuild finds it. A directory already recorded is
// left as it is.
func (h *DB) Record(ctx context.Context, job, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if done, err := h.Recorded(ctx, abs); err != nil || done {
		return err
	}
	rd, err := Load(abs)
	if err != nil {
		return err
	}
	if job != "" {
		if err := writeJob(abs, job); err != nil {
			return err
		}
	}
	return h.record(ctx, job, rd)
}

func writeJob(dir, job string) error {
	if old, err := os.ReadFile(filepath.Join(dir, JobFile)); err == nil && strings.TrimSpace(string(old)) == job {
		return nil
	}
	return results.WriteAtomic(filepath.Join(dir, JobFile), []byte(job+"\n"))
}

func (h *DB) record(ctx context.Context, job string, rd *RunDir) error {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: record %s: %w", rd.Path, err)
	}
	w := &writer{ctx: ctx, tx: tx}
	if err := w.runDir(job, rd); err != nil {
		tx.Rollback()
		return fmt.Errorf("history: record %s: %w", rd.Path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: record %s: %w", rd.Path, err)
	}
	return nil
}

// writer records one run directory inside a transaction.
type writer struct {
	ctx context.Context
	tx  *sql.Tx
}

func (w *writer) exec(q string, args ...any) (int64, error) {
	if testHookBetweenWrites != nil {
		testHookBetweenWrites()
	}
	res, err := w.tx.ExecContext(w.ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (w *writer) id(q string, args ...any) (int64, bool, error) {
	var id int64
	err := w.tx.QueryRowContext(w.ctx, q, args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

func (w *writer) jobID(name string) (any, error) {
	if name == "" {
		return nil, nil
	}
	if id, ok, err := w.id("SELECT id FROM jobs WHERE name = ?", name); err != nil || ok {
		return id, err
	}
	return w.exec("INSERT INTO jobs(name) VALUES (?)", name)
}

// build identifies the kernel a run booted.
type build struct {
	tree, commit, series, configDigest, imageSignature string
}

func (w *writer) buildID(b build) (int64, error) {
	if id, ok, err := w.id(`SELECT id FROM builds WHERE tree = ? AND commit_ref = ? AND series = ? AND config_digest = ? AND image_signature = ?`,
		b.tree, b.commit, b.series, b.configDigest, b.imageSignature); err != nil || ok {
		return id, err
	}
	return w.exec(`INSERT INTO builds(tree, commit_ref, series, config_digest, image_signature) VALUES (?, ?, ?, ?, ?)`,
		b.tree, b.commit, b.series, b.configDigest, b.imageSignature)
}

// imageSignature is the sha256 of a kernel image, "" when it is gone.
func imageSignature(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (w *writer) runDir(job string, rd *RunDir) error {
	jobID, err := w.jobID(job)
	if err != nil {
		return err
	}
	if rd.Run != nil {
		bid, err := w.buildID(build{imageSignature: imageSignature(rd.Run.Kernel)})
		if err != nil {
			return err
		}
		_, err = w.run(rd.Path, "run", nil, jobID, bid, "", rd.Run)
		return err
	}
	s := rd.Series
	sid, err := w.exec(`INSERT INTO runs(dir, kind, job_id, started, wall_seconds, status, reason, kernel, release, suite)
		VALUES (?, 'series', ?, ?, ?, ?, ?, '', '', ?)`,
		rd.Path, jobID, s.Started.UTC().Format(time.RFC3339Nano), s.WallSeconds, s.Status, s.Reason, strings.Join(s.Suites, ","))
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		st   *results.Step
	}{}
	if s.Base != nil {
		steps = append(steps, struct {
			name string
			st   *results.Step
		}{"base", s.Base})
	}
	for _, p := range s.Patches {
		steps = append(steps, struct {
			name string
			st   *results.Step
		}{fmt.Sprintf("patch %d", p.Index), &p.Step})
	}
	for i, x := range steps {
		if len(x.st.Runs) == 0 {
			continue // nothing booted: no build to remember
		}
		b := build{tree: s.Source, commit: s.BaseRef, configDigest: x.st.BuildKey, imageSignature: imageSignature(rd.Resolve(x.st.Kernel))}
		if i > 0 || s.Base == nil {
			b.series = fmt.Sprintf("%s@%s", s.Series, strings.TrimPrefix(x.name, "patch "))
		}
		bid, err := w.buildID(b)
		if err != nil {
			return err
		}
		for _, run := range x.st.Runs {
			r := rd.Steps[run]
			if r == nil {
				continue
			}
			if _, err := w.run(rd.Resolve(run), "step", sid, jobID, bid, x.name, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// run inserts one run with its tests and crashes, attaching each crash to
// its bug, and closes the bugs the job's previous run showed and this one
// does not.
func (w *writer) run(dir, kind string, parent, jobID any, buildID int64, step string, r *results.Result) (int64, error) {
	started := r.Started.UTC().Format(time.RFC3339Nano)
	rid, err := w.exec(`INSERT INTO runs(dir, kind, parent_id, job_id, build_id, step, started, wall_seconds, status, reason, kernel, release, suite)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		dir, kind, parent, jobID, buildID, step, started, r.WallSeconds, r.Status, r.Reason, r.Kernel, r.Release, r.Suite)
	if err != nil {
		return 0, err
	}
	for _, t := range r.Tests {
		if _, err := w.exec(`INSERT INTO tests(run_id, name, status, seconds, message) VALUES (?, ?, ?, ?, ?)`,
			rid, r.Suite+"/"+t.Name, t.Status, t.Seconds, t.Message); err != nil {
			return 0, err
		}
	}
	seen := map[int64]bool{}
	for _, c := range r.Crashes {
		bid, err := w.bugFor(c, started, jobID, dir)
		if err != nil {
			return 0, err
		}
		seen[bid] = true
		excerpt := c.Report
		if len(excerpt) > excerptMax {
			excerpt = excerpt[:excerptMax]
		}
		if _, err := w.exec(`INSERT INTO crashes(run_id, bug_id, title, start_line, end_line, excerpt) VALUES (?, ?, ?, ?, ?, ?)`,
			rid, bid, c.Title, c.StartLine, c.EndLine, excerpt); err != nil {
			return 0, err
		}
		if _, err := w.exec(`UPDATE bugs SET count = count + 1 WHERE id = ?`, bid); err != nil {
			return 0, err
		}
	}
	if kind == "run" && jobID != nil && !(r.Status == results.StatusInfra && len(r.Crashes) == 0) {
		if err := w.closeFixed(rid, jobID, started, r.Suite, seen); err != nil {
			return 0, err
		}
	}
	return rid, nil
}

// closeFixed marks fixed the open bugs that the job's previous run of the
// same suite showed and run rid does not.
func (w *writer) closeFixed(rid int64, jobID any, started, suite string, seen map[int64]bool) error {
	prev, ok, err := w.id(`SELECT id FROM runs WHERE job_id = ? AND kind = 'run' AND suite = ? AND id != ? AND started <= ?
		AND NOT (status = 'infra' AND NOT EXISTS (SELECT 1 FROM crashes WHERE run_id = runs.id))
		ORDER BY started DESC, id DESC LIMIT 1`, jobID, suite, rid, started)
	if err != nil || !ok {
		return err
	}
	rows, err := w.tx.QueryContext(w.ctx, `SELECT DISTINCT b.id FROM crashes c JOIN bugs b ON b.id = c.bug_id WHERE c.run_id = ? AND b.status = 'open'`, prev)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if seen[id] {
			continue
		}
		if _, err := w.exec(`UPDATE bugs SET status = 'fixed', fixed_run = ? WHERE id = ?`, rid, id); err != nil {
			return err
		}
	}
	return nil
}

// bugFor returns the open bug crash c (seen by the run in dir) belongs
// to, creating it (with a counter in its title when fixed bugs of that
// title exist). A bug that a run in the same folder as dir called fixed
// is open again instead: the repeats of one night live in one folder, and
// a flaky crash missing from one repeat is no fix.
func (w *writer) bugFor(c results.Crash, seen string, jobID any, dir string) (int64, error) {
	rows, err := w.tx.QueryContext(w.ctx, `SELECT b.id, b.base_title, b.alt_titles, b.status, coalesce(r.dir, '')
		FROM bugs b LEFT JOIN runs r ON r.id = b.fixed_run ORDER BY b.id`)
	if err != nil {
		return 0, err
	}
	type cand struct {
		id     int64
		status string
		alts   []string
	}
	var open *cand
	fixed := 0
	for rows.Next() {
		var x cand
		var base, alts, fixedBy string
		if err := rows.Scan(&x.id, &base, &alts, &x.status, &fixedBy); err != nil {
			rows.Close()
			return 0, err
		}
		json.Unmarshal([]byte(alts), &x.alts)
		if !triage.SameCrash(triage.Identity{Title: base, AltTitles: x.alts}, c.Identity()) {
			continue
		}
		switch {
		case x.status == BugOpen, fixedBy != "" && filepath.Dir(fixedBy) == filepath.Dir(dir):
			if open == nil || open.status != BugOpen {
				open = &x
			}
		default:
			fixed++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if open != nil {
		alts := mergeAlts(open.alts, c)
		data, _ := json.Marshal(alts)
		_, err := w.exec(`UPDATE bugs SET alt_titles = ?, last_seen = max(last_seen, ?), first_seen = min(first_seen, ?), last_job = coalesce(?, last_job),
			status = 'open', fixed_run = NULL WHERE id = ?`,
			string(data), seen, seen, jobID, open.id)
		return open.id, err
	}
	title := c.Title
	for n := fixed + 1; ; n++ {
		if n > 1 {
			title = fmt.Sprintf("%s (%d)", c.Title, n)
		}
		_, taken, err := w.id(`SELECT id FROM bugs WHERE title = ?`, title)
		if err != nil {
			return 0, err
		}
		if !taken {
			break
		}
	}
	data, _ := json.Marshal(mergeAlts(nil, c))
	return w.exec(`INSERT INTO bugs(title, base_title, alt_titles, type, first_seen, last_seen, count, status, last_job)
		VALUES (?, ?, ?, ?, ?, ?, 0, 'open', ?)`, title, c.Title, string(data), c.Type, seen, seen, jobID)
}

func mergeAlts(alts []string, c results.Crash) []string {
	set := map[string]bool{}
	for _, a := range alts {
		set[a] = true
	}
	for _, a := range c.Identity().Names() {
		set[a] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
