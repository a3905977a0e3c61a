package report

import (
	"mime"
	"net/mail"
	"strings"
	"testing"
)

// checkThread checks the threading of a mail report: a reply to the
// failing patch of the (composed) seed series (testdata/seed-series.mbox holds the
// thread: a cover letter and four patches, each In-Reply-To the cover),
// and no threading for a single run, which has no patch.
func checkThread(t *testing.T, name string, msg *mail.Message) {
	t.Helper()
	h := msg.Header
	if name != "composed-series" {
		if h.Get("In-Reply-To") != "" || h.Get("References") != "" {
			t.Errorf("%s: a report on a run with no patch has threading headers", name)
		}
		return
	}
	const cover, patch3 = "<20261117094000.cover.seedfs@example.org>", "<20261117094000.3.seedfs@example.org>"
	if got := h.Get("In-Reply-To"); got != patch3 {
		t.Errorf("In-Reply-To %q, want %q", got, patch3)
	}
	if got := strings.Fields(h.Get("References")); len(got) != 2 || got[0] != cover || got[1] != patch3 {
		t.Errorf("References %q, want %s %s", h.Get("References"), cover, patch3)
	}
	subj, err := new(mimeDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Re: [PATCH 3/4] seedfs: return from the lookup loop as soon as the name is found"; subj != want {
		t.Errorf("Subject %q, want %q", subj, want)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "ada@example.org" {
		t.Errorf("To %q (%v), want the patch's author", h.Get("To"), err)
	}
}

type mimeDecoder = mime.WordDecoder
