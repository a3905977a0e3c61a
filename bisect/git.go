package bisect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kregress/kregress/internal/proc"
)

// Git bisects the range good..bad of the git repository at repo. The
// search runs git's own bisection (`git bisect start --no-checkout`, then
// good/bad/skip per step) in a private bare clone made under scratch,
// which shares the repository's objects and writes nothing into it; the
// user's checkout is never touched. Step IDs handed to t are full commit
// hashes. The bisect log is kept in the result.
func Git(ctx context.Context, repo, good, bad, scratch string, t Tester, opt Options) (*Result, error) {
	goodHash, err := revParse(ctx, repo, good)
	if err != nil {
		return nil, err
	}
	badHash, err := revParse(ctx, repo, bad)
	if err != nil {
		return nil, err
	}
	if _, err := git(ctx, repo, "merge-base", "--is-ancestor", goodHash, badHash); err != nil {
		return nil, fmt.Errorf("bisect %s..%s in %s: %s is not an ancestor of %s", good, bad, repo, good, bad)
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, err
	}
	priv, err := os.MkdirTemp(scratch, "bisect-*.git")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(priv)
	abs, err := filepath.Abs(repo)
	if err != nil {
		return nil, err
	}
	if out, err := proc.Command(ctx, "git", "clone", "--quiet", "--bare", "--shared", "--no-tags", abs, priv).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bisect: clone %s: %v: %s", repo, err, bytes.TrimSpace(out))
	}

	s := newSession(t, opt.Runs)
	v, err := s.test(ctx, badHash)
	if err != nil {
		return s.finish(), err
	}
	if v != Bad {
		return s.finish(), fmt.Errorf("bad end %s is %s: %w", short(badHash), v, ErrEndpoint)
	}
	if opt.VerifyGood {
		v, err := s.test(ctx, goodHash)
		if err != nil {
			return s.finish(), err
		}
		if v != Good {
			return s.finish(), fmt.Errorf("good end %s is %s: %w", short(goodHash), v, ErrEndpoint)
		}
	}
	out, err := git(ctx, priv, "bisect", "start", "--no-checkout", badHash, goodHash)
	if err != nil {
		return s.finish(), err
	}
	for {
		if done, cands := bisectDone(out); done {
			if len(cands) == 1 {
				s.res.Culprit = cands[0]
			} else {
				s.res.Candidates = cands
			}
			break
		}
		if err := ctx.Err(); err != nil {
			return s.finish(), err
		}
		head, err := revParse(ctx, priv, "BISECT_HEAD")
		if err != nil {
			return s.finish(), err
		}
		v, err := s.test(ctx, head)
		if err != nil {
			return s.finish(), err
		}
		// git exits non-zero when only skipped commits are left; what it
		// printed says so.
		if out, err = git(ctx, priv, "bisect", string(v)); err != nil {
			if done, _ := bisectDone(out); !done {
				return s.finish(), err
			}
		}
	}
	log, _ := git(ctx, priv, "bisect", "log")
	s.res.Log = log
	r := s.finish()
	if r.Culprit != "" {
		if info, err := git(ctx, repo, "log", "-1", "--format=%s%n%an <%ae>", r.Culprit); err == nil {
			lines := strings.SplitN(strings.TrimSpace(info), "\n", 2)
			r.Subject = lines[0]
			if len(lines) > 1 {
				r.Author = lines[1]
			}
		}
	}
	return r, nil
}

var (
	firstBadRE = regexp.MustCompile(`(?m)^([0-9a-f]{40}) is the first bad commit`)
	hashLineRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// bisectDone reads what a git bisect command printed: whether the search
// is over and, if so, the first bad commit or the candidates that only
// skipped commits left.
func bisectDone(out string) (bool, []string) {
	if m := firstBadRE.FindStringSubmatch(out); m != nil {
		return true, []string{m[1]}
	}
	if !strings.Contains(out, "only 'skip'ped commits left") {
		return false, nil
	}
	var cands []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); hashLineRE.MatchString(l) {
			cands = append(cands, l)
		}
	}
	return true, cands
}

func revParse(ctx context.Context, repo, rev string) (string, error) {
	out, err := git(ctx, repo, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("bisect: %q is not a commit in %s", rev, repo)
	}
	return strings.TrimSpace(out), nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := proc.Command(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
