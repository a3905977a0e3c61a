package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kregress/kregress/internal/proc"
)

// source is a private work tree in the cache, locked for one build.
type source struct {
	id     string // "tar-<digest>" or "git-<digest>"
	dir    string // the work tree: make's srctree
	base   string // base commit in dir's repository
	baseID string // what the cache key names: tarball digest or commit id
	repo   string // the user's git repository, "" for a tarball
	lk     *lockFile
	// keep marks a configured client copy (BuildClient): patches go into
	// the index too, and a reset keeps untracked files (configure's output
	// and the objects), removing only what the patches changed or added.
	keep bool
}

const completeMarker = ".kregress-complete"

// prepareSource returns the locked private work tree for req's source at
// its base, clean: a private clone of the user's repository that borrows
// its objects (their tree, index, branches and .git untouched: no worktree
// is registered there) or the tarball extracted once into the cache and
// committed to a private repository. A source that is not a kernel tree is
// an *InputError, found before anything is made.
func prepareSource(ctx context.Context, root string, req *Request, st *status) (*source, error) {
	fi, err := os.Stat(req.Source)
	if err != nil {
		return nil, badInput("build: source: %w", err)
	}
	if fi.IsDir() {
		return prepareGit(ctx, root, req, st)
	}
	if req.Base != "" {
		return nil, badInput("build: --base %q given with tarball %s: a tarball is its own base", req.Base, req.Source)
	}
	return prepareTarball(ctx, root, req.Source, st)
}

func prepareTarball(ctx context.Context, root, tarball string, st *status) (*source, error) {
	st.phase("source", "hashing "+filepath.Base(tarball))
	sum, err := fileDigest(tarball)
	if err != nil {
		return nil, fmt.Errorf("build: source tarball: %w", err)
	}
	s := &source{id: "tar-" + sum[:16], baseID: "sha256:" + sum}
	s.dir = filepath.Join(root, "src", s.id)
	s.lk, err = lock(ctx, s.dir+".lock", st)
	if err != nil {
		return nil, err
	}
	ctx = s.lk.held(ctx)
	marker := filepath.Join(s.dir, ".git", completeMarker)
	if data, err := os.ReadFile(marker); err == nil {
		s.base = strings.TrimSpace(string(data))
	} else {
		if err := extractTarball(ctx, tarball, sum, s.dir, true, st); err != nil {
			s.lk.unlock()
			return nil, err
		}
		data, err := os.ReadFile(marker)
		if err != nil {
			s.lk.unlock()
			return nil, fmt.Errorf("build: extracted %s but its marker is missing: %w", tarball, err)
		}
		s.base = strings.TrimSpace(string(data))
	}
	if err := s.reset(ctx); err != nil {
		s.lk.unlock()
		return nil, err
	}
	return s, nil
}

// extractTarball unpacks tarball into dir (through dir.partial, so that an
// interrupted extraction is redone) and commits it to a private repository.
func extractTarball(ctx context.Context, tarball, sum, dir string, kernel bool, st *status) error {
	tmp := dir + ".partial"
	os.RemoveAll(tmp)
	os.RemoveAll(dir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("build: creating %s: %w", tmp, err)
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return err
	}
	st.phase("source", "extracting "+filepath.Base(tarball))
	if _, err := run(ctx, tmp, nil, "tar", "-xf", tarball, "--strip-components=1"); err != nil {
		return fail(fmt.Errorf("build: extracting %s: %w", tarball, err))
	}
	// A client tree (BuildClient) is not a kernel: its configure says
	// whether it is what it claims.
	if kernel {
		mk, err := os.ReadFile(filepath.Join(tmp, "Makefile"))
		if err != nil {
			return fail(badInput("build: %s does not hold a kernel tree in one top folder (no Makefile after extraction)", tarball))
		}
		if !isKernelMakefile(mk) {
			return fail(badInput("build: %s is not a kernel source tarball: its top Makefile sets no VERSION and PATCHLEVEL", tarball))
		}
	}
	st.phase("source", "committing the extracted tree to a private repository")
	env := gitEnv()
	steps := [][]string{
		{"git", "init", "-q"},
		{"git", "config", "gc.auto", "0"},
		{"git", "add", "-A", "-f"},
		{"git", "commit", "-q", "--no-verify", "-m", "kregress: " + filepath.Base(tarball) + " sha256:" + sum},
	}
	for _, c := range steps {
		if _, err := run(ctx, tmp, env, c...); err != nil {
			return fail(fmt.Errorf("build: preparing private repository for %s: %w", tarball, err))
		}
	}
	head, err := run(ctx, tmp, env, "git", "rev-parse", "HEAD")
	if err != nil {
		return fail(fmt.Errorf("build: preparing private repository for %s: %w", tarball, err))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".git", completeMarker), []byte(strings.TrimSpace(head)+"\n"), 0o644); err != nil {
		return fail(fmt.Errorf("build: writing marker: %w", err))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fail(fmt.Errorf("build: moving extracted tree into place: %w", err))
	}
	return nil
}

func prepareGit(ctx context.Context, root string, req *Request, st *status) (*source, error) {
	repo, err := filepath.Abs(req.Source)
	if err != nil {
		return nil, fmt.Errorf("build: source: %w", err)
	}
	common, err := run(ctx, repo, nil, "git", "rev-parse", "--path-format=absolute", "--git-common-dir")
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build: source %s: %w", repo, ended(ctx))
		}
		return nil, badInput("build: source %s is neither a tarball nor a git tree: %w", repo, err)
	}
	base := req.Base
	if base == "" {
		base = "HEAD"
	}
	if strings.HasPrefix(base, "-") {
		return nil, badInput("build: bad base ref %q", base)
	}
	commit, err := run(ctx, repo, nil, "git", "rev-parse", "--verify", "--quiet", base+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build: source %s: %w", repo, ended(ctx))
		}
		return nil, badInput("build: base %q is not a commit in %s", base, repo)
	}
	commit = strings.TrimSpace(commit)
	// Read-only look at the base's top Makefile: a tree that is not a
	// kernel is bad input before anything is cloned.
	mk, err := run(ctx, repo, nil, "git", "cat-file", "blob", commit+":Makefile")
	if err != nil || !isKernelMakefile([]byte(mk)) {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("build: source %s: %w", repo, ended(ctx))
		}
		return nil, badInput("build: source %s is not a kernel tree: %s has no top Makefile setting VERSION and PATCHLEVEL", repo, base)
	}
	s := &source{id: "clone-" + digest(strings.TrimSpace(common))[:16], base: commit, baseID: commit, repo: repo}
	s.dir = filepath.Join(root, "src", s.id)
	s.lk, err = lock(ctx, s.dir+".lock", st)
	if err != nil {
		return nil, err
	}
	ctx = s.lk.held(ctx)
	if _, err := os.Stat(filepath.Join(s.dir, ".git", completeMarker)); err != nil {
		st.phase("source", "creating a private clone of "+repo)
		if err := cloneShared(ctx, repo, s.dir); err != nil {
			s.lk.unlock()
			return nil, err
		}
	}
	if err := s.reset(ctx); err != nil {
		s.lk.unlock()
		return nil, err
	}
	return s, nil
}

// cloneShared makes dir a private clone of repo that borrows repo's
// objects (git clone --shared: an alternates file in the clone) without
// writing anything into repo: no worktree is registered there, no object,
// ref or config is added. It goes through dir.partial, so an interrupted
// clone is redone; the marker says it is complete.
func cloneShared(ctx context.Context, repo, dir string) error {
	tmp := dir + ".partial"
	os.RemoveAll(tmp)
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("build: creating %s: %w", filepath.Dir(dir), err)
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return err
	}
	if _, err := run(ctx, "", nil, "git", "clone", "--shared", "--no-checkout", "--quiet", repo, tmp); err != nil {
		return fail(fmt.Errorf("build: cloning %s into %s: %w", repo, tmp, err))
	}
	if _, err := run(ctx, tmp, nil, "git", "config", "gc.auto", "0"); err != nil {
		return fail(fmt.Errorf("build: configuring private clone of %s: %w", repo, err))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".git", completeMarker), []byte(repo+"\n"), 0o644); err != nil {
		return fail(fmt.Errorf("build: writing marker: %w", err))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fail(fmt.Errorf("build: moving private clone into place: %w", err))
	}
	return nil
}

// isKernelMakefile reports whether a top Makefile is a Linux kernel's: it
// sets VERSION and PATCHLEVEL.
func isKernelMakefile(data []byte) bool {
	var version, patchlevel bool
	for _, l := range strings.Split(string(data), "\n") {
		k, _, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "VERSION":
			version = true
		case "PATCHLEVEL":
			patchlevel = true
		}
	}
	return version && patchlevel
}

// reset puts the work tree back to the base commit, removing every change
// and every untracked file. Git rewrites only the files that differ, so
// unchanged files keep their times and the next build stays incremental.
func (s *source) reset(ctx context.Context) error {
	if s.keep {
		if _, err := run(ctx, s.dir, nil, "git", "reset", "-q", "--hard", s.base); err != nil {
			return fmt.Errorf("build: resetting client copy %s to %s: %w", s.dir, s.base, err)
		}
		return nil
	}
	for _, c := range [][]string{
		{"git", "checkout", "-q", "--detach", "-f", s.base},
		{"git", "clean", "-ffdxq"},
	} {
		if _, err := run(ctx, s.dir, nil, c...); err != nil {
			return fmt.Errorf("build: resetting work tree %s to %s: %w", s.dir, s.base, err)
		}
	}
	return nil
}

func (s *source) release() { s.lk.unlock() }

// gitEnv fixes the identity and dates of the private commits kregress makes.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_AUTHOR_NAME=kregress", "GIT_AUTHOR_EMAIL=kregress@localhost",
		"GIT_COMMITTER_NAME=kregress", "GIT_COMMITTER_EMAIL=kregress@localhost",
		"GIT_AUTHOR_DATE=2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2000-01-01T00:00:00Z")
}

// run runs a short command in dir and returns its stdout; the error
// carries the command and its stderr.
func run(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := proc.Command(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
