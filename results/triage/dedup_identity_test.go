package triage

import "testing"

// TestSameCrash pins the one "is this the same crash" rule that dedup,
// series verdicts, bisection and history share.
func TestSameCrash(t *testing.T) {
	oops := Identity{Title: "BUG: unable to handle kernel NULL pointer dereference in ll_lookup_it_finish",
		AltTitles: []string{"BUG: unable to handle kernel NULL pointer dereference in ll_splice_alias"}}
	for _, c := range []struct {
		name string
		a, b Identity
		same bool
	}{
		{"same title", oops, Identity{Title: oops.Title}, true},
		{"title meets an alternative title", oops, Identity{Title: oops.AltTitles[0]}, true},
		{"alternative titles meet", oops, Identity{Title: "other", AltTitles: []string{oops.AltTitles[0]}}, true},
		{"different", oops, Identity{Title: "WARNING in ll_splice_alias"}, false},
		// A corrupted report's alternatives come from an untrusted stack:
		// they never make another crash the same, on either side.
		{"corrupted alternatives do not count",
			Identity{Title: "BUG: unable to handle kernel NULL pointer dereference in corrupted", Corrupted: true, AltTitles: []string{oops.Title}},
			oops, false},
		{"corrupted alternatives do not count, other side",
			oops,
			Identity{Title: "BUG: unable to handle kernel NULL pointer dereference in corrupted", Corrupted: true, AltTitles: []string{oops.Title}},
			false},
		{"a corrupted report is matched by its title",
			Identity{Title: oops.Title, Corrupted: true}, oops, true},
		// A "... in corrupted" title is only a name when nothing else is.
		{"corrupted titles meet each other",
			Identity{Title: "BUG: soft lockup in corrupted", Corrupted: true},
			Identity{Title: "BUG: soft lockup in corrupted", Corrupted: true}, true},
		{"a corrupted title never meets a sound report's alternative",
			Identity{Title: "BUG: soft lockup in corrupted", Corrupted: true},
			Identity{Title: "BUG: soft lockup in foo", AltTitles: []string{"BUG: soft lockup in corrupted"}}, false},
		{"empty", Identity{}, Identity{}, false},
	} {
		if got := SameCrash(c.a, c.b); got != c.same {
			t.Errorf("%s: SameCrash = %v, want %v", c.name, got, c.same)
		}
		if got := SameCrash(c.b, c.a); got != c.same {
			t.Errorf("%s (swapped): SameCrash = %v, want %v", c.name, got, c.same)
		}
	}
}

// TestDeduperAgreesWithSameCrash: two reports merge into one bug exactly
// when SameCrash says they are the same.
func TestDeduperAgreesWithSameCrash(t *testing.T) {
	reps := []Report{
		{Title: "A in f", AltTitles: []string{"A in g"}},
		{Title: "A in g"},
		{Title: "A in corrupted", Corrupted: true, AltTitles: []string{"A in f"}},
		{Title: "B in h"},
		{Title: "A in corrupted", Corrupted: true},
	}
	for i := range reps {
		for j := i + 1; j < len(reps); j++ {
			var d Deduper
			b1 := d.Add(reps[i], Sighting{Line: 1})
			b2 := d.Add(reps[j], Sighting{Line: 2})
			if merged, same := b1 == b2, SameCrash(IdentityOf(reps[i]), IdentityOf(reps[j])); merged != same {
				t.Errorf("%q and %q: Deduper merged %v, SameCrash %v", reps[i].Title, reps[j].Title, merged, same)
			}
		}
	}
}
