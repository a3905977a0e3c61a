package triage

import (
	"sort"
	"strings"
	"time"
)

// Bug is one bug: the reports whose titles or alternative titles meet.
type Bug struct {
	// Title is the title of the first sound (not corrupted) report, or of
	// the first report when all are corrupted.
	Title     string   `json:"title"`
	AltTitles []string `json:"alt_titles"`
	Type      string   `json:"type"`
	// Count is how many reports were merged into this bug.
	Count int `json:"count"`
	// Corrupted is set while every report of the bug is corrupted.
	Corrupted bool `json:"corrupted"`
	// FirstSeen and LastSeen are the earliest and latest sightings.
	FirstSeen Sighting `json:"first_seen"`
	LastSeen  Sighting `json:"last_seen"`
}

// Sighting is where and when a report was seen.
type Sighting struct {
	// Source names the log or run, e.g. a run directory.
	Source string `json:"source,omitempty"`
	// Line is the report's start line in that log.
	Line int `json:"line"`
	// Time is when it was seen; zero when unknown.
	Time time.Time `json:"time,omitzero"`
}

func (s Sighting) before(o Sighting) bool {
	if !s.Time.IsZero() && !o.Time.IsZero() && !s.Time.Equal(o.Time) {
		return s.Time.Before(o.Time)
	}
	if s.Source != o.Source {
		return s.Source < o.Source
	}
	return s.Line < o.Line
}

// Deduper merges reports into bugs as they arrive. The zero value is ready
// to use; it is not safe for concurrent use.
type Deduper struct {
	bugs  []*Bug
	names map[string]*Bug
}

// Identity is what tells one crash from another: its title, its
// alternative titles and whether its report is corrupted. Reports, result
// entries and stored bugs all reduce to one, so that every part of kregress
// (dedup within a log, new-or-pre-existing in a series, bisection, history)
// answers "is this the same crash" with the one rule of SameCrash.
type Identity struct {
	Title     string
	AltTitles []string
	Corrupted bool
}

// IdentityOf returns the report's identity.
func IdentityOf(r Report) Identity {
	return Identity{Title: r.Title, AltTitles: r.AltTitles, Corrupted: r.Corrupted}
}

// Names lists the titles that identify a crash: its title and, for a sound
// report, its alternative titles. A corrupted report is matched by its
// title only, since its alternatives are built from an untrusted stack;
// titles ending in " corrupted" are left out unless nothing else is left.
func (id Identity) Names() []string {
	if id.Title == "" {
		return nil
	}
	names := []string{id.Title}
	if !id.Corrupted {
		names = append(names, id.AltTitles...)
	}
	out := names[:0]
	for _, n := range names {
		if n != "" && !strings.HasSuffix(n, " corrupted") {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = append(out, id.Title)
	}
	return out
}

// SameCrash reports whether a and b are the same bug: whether their Names
// meet. A corrupted report's alternative titles never count, on either
// side, so a corrupted crash on a base cannot make a new crash look
// pre-existing through its untrusted stack.
func SameCrash(a, b Identity) bool {
	an := a.Names()
	for _, n := range b.Names() {
		if contains(an, n) {
			return true
		}
	}
	return false
}

// Add merges r, seen at s, into its bug and returns that bug. When r's
// names join two bugs that were distinct so far, they become one.
func (d *Deduper) Add(r Report, s Sighting) *Bug {
	if d.names == nil {
		d.names = map[string]*Bug{}
	}
	names := IdentityOf(r).Names()
	var b *Bug
	for _, n := range names {
		other := d.names[n]
		if other == nil || other == b {
			continue
		}
		if b == nil {
			b = other
			continue
		}
		d.merge(b, other)
	}
	if b == nil {
		b = &Bug{Title: r.Title, Type: r.Type, Corrupted: r.Corrupted, FirstSeen: s, LastSeen: s}
		d.bugs = append(d.bugs, b)
	} else {
		if b.Corrupted && !r.Corrupted {
			b.Title, b.Type, b.Corrupted = r.Title, r.Type, false
		}
		if s.before(b.FirstSeen) {
			b.FirstSeen = s
		}
		if b.LastSeen.before(s) {
			b.LastSeen = s
		}
	}
	b.Count++
	for _, n := range names {
		d.names[n] = b
		if n != b.Title && !contains(b.AltTitles, n) {
			b.AltTitles = append(b.AltTitles, n)
		}
	}
	b.AltTitles = without(b.AltTitles, b.Title)
	sort.Strings(b.AltTitles)
	return b
}

// merge folds other into b.
func (d *Deduper) merge(b, other *Bug) {
	b.Count += other.Count
	if other.FirstSeen.before(b.FirstSeen) {
		b.FirstSeen = other.FirstSeen
	}
	if b.LastSeen.before(other.LastSeen) {
		b.LastSeen = other.LastSeen
	}
	if b.Corrupted && !other.Corrupted {
		b.Title, b.Type, b.Corrupted = other.Title, other.Type, false
	}
	for _, n := range append([]string{other.Title}, other.AltTitles...) {
		if !contains(b.AltTitles, n) {
			b.AltTitles = append(b.AltTitles, n)
		}
	}
	for n, x := range d.names {
		if x == other {
			d.names[n] = b
		}
	}
	for i, x := range d.bugs {
		if x == other {
			d.bugs = append(d.bugs[:i], d.bugs[i+1:]...)
			break
		}
	}
}

// Bugs returns the bugs in the order they were first added.
func (d *Deduper) Bugs() []Bug {
	out := make([]Bug, len(d.bugs))
	for i, b := range d.bugs {
		out[i] = *b
		out[i].AltTitles = without(append([]string{}, b.AltTitles...), b.Title)
	}
	return out
}

// Dedup merges the reports of one log into bugs, sighted by start line.
func Dedup(reports []Report) []Bug {
	var d Deduper
	for _, r := range reports {
		d.Add(r, Sighting{Line: r.StartLine})
	}
	return d.Bugs()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func without(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
