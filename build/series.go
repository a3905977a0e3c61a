package build

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kregress/kregress/internal/proc"
)

// Patch is one patch of a series.
type Patch struct {
	// Number and Total are the patch's place in the series, from 1: from
	// the "[PATCH n/m]" subject tag when there is one, else file order.
	Number, Total int
	// Subject is the subject line without its "[PATCH ...]" tag.
	Subject string
	// From is the author as the mail header has it.
	From string
	// Origin names where the patch came from: "file" or "file, message k".
	Origin string
	// Data is the whole message, headers and diff, as git am and git apply
	// accept it.
	Data []byte
	// Files are the paths the diff touches (new names), in diff order.
	Files []string
	// MessageID is the mail's Message-ID ("<...>"), References its
	// References (else In-Reply-To) header: what a reply threads under.
	// Empty for a patch without a mail header.
	MessageID, References string
}

// Label renders the patch for messages: `patch 2/3 "subject"`.
func (p Patch) Label() string {
	return fmt.Sprintf("patch %d/%d %q", p.Number, p.Total, p.Subject)
}

var (
	mboxFromRe = regexp.MustCompile(`^From \S+ +\w{3} \w{3} [ 0-9]\d \d\d:\d\d:\d\d \d{4}`)
	tagRe      = regexp.MustCompile(`^\s*\[([^\]]*)\]\s*`)
	numRe      = regexp.MustCompile(`(\d+)/(\d+)`)
	coverRe    = regexp.MustCompile(`(?m)^Subject:\s*\[[^\]]*\b0+/\d+\]`)
	diffFileRe = regexp.MustCompile(`^\+\+\+ (?:b/)?(\S+)`)
	gitDiffRe  = regexp.MustCompile(`^diff --git a/(\S+) b/(\S+)`)
)

// SeriesKind is what a series argument names.
type SeriesKind int

// Series kinds.
const (
	// SeriesNone: no series ("").
	SeriesNone SeriesKind = iota
	// SeriesPath: an mbox file or a folder of *.patch files.
	SeriesPath
	// SeriesGitRange: a range of commits (A..B) in a git source.
	SeriesGitRange
)

// KindOfSeries decides what series names for a build of source: a path
// that exists is a file or folder series; otherwise, with a git source
// (a folder) and a "..", a git range in it; anything else is bad input.
// It is the one place that decides, for every command.
func KindOfSeries(source, series string) (SeriesKind, error) {
	if series == "" {
		return SeriesNone, nil
	}
	if _, err := os.Stat(series); err == nil {
		return SeriesPath, nil
	}
	if fi, err := os.Stat(source); err == nil && fi.IsDir() && strings.Contains(series, "..") && !strings.HasPrefix(series, "-") {
		return SeriesGitRange, nil
	}
	return SeriesNone, badInput("build: series %q is not a file, a folder, or a git range in a git source", series)
}

// LoadSeries reads the series that series names for a build of source (see
// KindOfSeries); nil for "". An unreadable or empty series is an
// *InputError.
func LoadSeries(ctx context.Context, source, series string) ([]Patch, error) {
	kind, err := KindOfSeries(source, series)
	if err != nil {
		return nil, err
	}
	var patches []Patch
	switch kind {
	case SeriesNone:
		return nil, nil
	case SeriesPath:
		patches, err = ReadSeries(series)
	case SeriesGitRange:
		patches, err = SeriesFromGit(ctx, source, series)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &InputError{Err: err}
	}
	return patches, nil
}

// ReadSeries reads a patch series from path: an mbox file (as b4 am or git
// format-patch --stdout write it; a cover letter, a message without a diff,
// is skipped) or a directory of *.patch files applied in name order. In a
// directory every *.patch file must hold a diff, or be a cover letter
// ("[PATCH 0/n]", as git format-patch --cover-letter writes it): any
// other is an error that names it, never silently dropped.
func ReadSeries(path string) ([]Patch, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("build: reading series: %w", err)
	}
	var msgs []message
	if st.IsDir() {
		names, err := filepath.Glob(filepath.Join(path, "*.patch"))
		if err != nil {
			return nil, fmt.Errorf("build: listing %s: %w", path, err)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("build: series directory %s has no *.patch files", path)
		}
		sort.Strings(names)
		for _, n := range names {
			data, err := os.ReadFile(n)
			if err != nil {
				return nil, fmt.Errorf("build: reading series: %w", err)
			}
			ms := splitMbox(data)
			if len(ms) != 1 {
				// A .patch file may also be a bare diff with no mail header.
				ms = []message{{data: data}}
			}
			ms[0].origin = n
			ms[0].mustDiff = true
			msgs = append(msgs, ms[0])
		}
	} else {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("build: reading series: %w", err)
		}
		msgs = splitMbox(data)
		for i := range msgs {
			msgs[i].origin = fmt.Sprintf("%s, message %d", path, i+1)
		}
	}
	return parseMessages(path, msgs)
}

// SeriesFromGit returns the commits of rng (e.g. "v6.1..mybranch") in the
// git repository repo as a series, as git format-patch writes them.
func SeriesFromGit(ctx context.Context, repo, rng string) ([]Patch, error) {
	if strings.HasPrefix(rng, "-") {
		return nil, fmt.Errorf("build: bad git range %q", rng)
	}
	cmd := proc.Command(ctx, "git", "-C", repo, "format-patch", "--stdout", "--no-signature", rng)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("build: git format-patch %s in %s: %w: %s", rng, repo, err, strings.TrimSpace(stderr.String()))
	}
	msgs := splitMbox(out)
	for i := range msgs {
		msgs[i].origin = fmt.Sprintf("%s %s, commit %d", repo, rng, i+1)
	}
	return parseMessages(repo+" "+rng, msgs)
}

type message struct {
	data   []byte
	origin string
	// mustDiff: a message without a diff is an error unless it is a
	// cover letter (a file of a series folder).
	mustDiff bool
}

// splitMbox splits data at mbox "From " separator lines. Data without any
// separator is one message.
func splitMbox(data []byte) []message {
	var msgs []message
	var cur []byte
	started := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if mboxFromRe.MatchString(line) {
			if started || len(bytes.TrimSpace(cur)) > 0 {
				msgs = append(msgs, message{data: cur})
			}
			cur, started = nil, true
		}
		cur = append(cur, line...)
		cur = append(cur, '\n')
	}
	if len(bytes.TrimSpace(cur)) > 0 {
		msgs = append(msgs, message{data: cur})
	}
	return msgs
}

func parseMessages(what string, msgs []message) ([]Patch, error) {
	var patches []Patch
	for _, m := range msgs {
		p, err := parseMessage(m)
		if err != nil {
			return nil, err
		}
		if len(p.Files) == 0 {
			if m.mustDiff && !coverRe.Match(m.data) {
				return nil, fmt.Errorf("build: %s in series %s is not a patch: it holds no diff (no \"+++ b/FILE\" or \"diff --git\" line) and is no [PATCH 0/n] cover letter", m.origin, what)
			}
			continue // cover letter or a reply without a diff
		}
		patches = append(patches, p)
	}
	if len(patches) == 0 {
		return nil, fmt.Errorf("build: series %s contains no patches", what)
	}
	numbered := true
	for _, p := range patches {
		if p.Number == 0 {
			numbered = false
		}
	}
	if numbered {
		sort.SliceStable(patches, func(i, j int) bool { return patches[i].Number < patches[j].Number })
		for i := 1; i < len(patches); i++ {
			if patches[i].Number == patches[i-1].Number {
				return nil, fmt.Errorf("build: series %s has two patches numbered %d/%d (%s and %s)",
					what, patches[i].Number, patches[i].Total, patches[i-1].Origin, patches[i].Origin)
			}
		}
	}
	for i := range patches {
		patches[i].Number = i + 1
		patches[i].Total = len(patches)
	}
	return patches, nil
}

func parseMessage(m message) (Patch, error) {
	p := Patch{Origin: m.origin, Data: m.data}
	body := m.data
	// Skip an mbox separator line before parsing the header.
	if i := bytes.IndexByte(body, '\n'); i >= 0 && mboxFromRe.Match(body[:i]) {
		body = body[i+1:]
	}
	if msg, err := mail.ReadMessage(bytes.NewReader(body)); err == nil && msg.Header.Get("Subject") != "" {
		dec := new(mime.WordDecoder)
		subj, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			subj = msg.Header.Get("Subject")
		}
		p.From, _ = dec.DecodeHeader(msg.Header.Get("From"))
		p.Subject, p.Number = cleanSubject(subj)
		p.MessageID = strings.TrimSpace(msg.Header.Get("Message-ID"))
		p.References = strings.Join(strings.Fields(msg.Header.Get("References")), " ")
		if p.References == "" {
			p.References = strings.TrimSpace(msg.Header.Get("In-Reply-To"))
		}
		rest, _ := io.ReadAll(msg.Body)
		p.Files = diffFiles(rest)
	} else {
		p.Files = diffFiles(body)
		p.Subject = filepath.Base(m.origin)
	}
	return p, nil
}

// cleanSubject strips the "[PATCH v2 3/7]" tags and returns the patch
// number from them (0 when there is none).
func cleanSubject(s string) (string, int) {
	s = strings.Join(strings.Fields(s), " ")
	num := 0
	for {
		m := tagRe.FindStringSubmatch(s)
		if m == nil {
			break
		}
		if n := numRe.FindStringSubmatch(m[1]); n != nil && num == 0 {
			num, _ = strconv.Atoi(n[1])
		}
		s = s[len(m[0]):]
	}
	return s, num
}

// diffFiles returns the files a unified or git diff touches, in order.
func diffFiles(body []byte) []string {
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		if f != "/dev/null" && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := gitDiffRe.FindStringSubmatch(line); m != nil {
			add(m[2])
		} else if m := diffFileRe.FindStringSubmatch(line); m != nil {
			add(m[1])
		}
	}
	return files
}

// hunk is one "@@ -a,b +c,d @@" section of a file's diff.
type hunk struct {
	file     string
	index    int // 1-based within the file
	oldStart int
	header   string
}

var hunkRe = regexp.MustCompile(`^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@`)

// hunks lists the hunks of a patch with their files.
func hunks(data []byte) []hunk {
	var out []hunk
	file, idx := "", 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var prev string
	for sc.Scan() {
		line := sc.Text()
		if m := diffFileRe.FindStringSubmatch(line); m != nil && strings.HasPrefix(prev, "--- ") {
			file, idx = m[1], 0
		}
		if m := hunkRe.FindStringSubmatch(line); m != nil && file != "" {
			idx++
			n, _ := strconv.Atoi(m[1])
			out = append(out, hunk{file: file, index: idx, oldStart: n, header: line})
		}
		prev = line
	}
	return out
}
