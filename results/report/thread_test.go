package report

import (
	"net/mail"
	"testing"
)

// checkThread checks the threading of a reply to a patch; a report on a
// single run has no patch to thread under.
func checkThread(t *testing.T, name string, msg *mail.Message) {
	t.Helper()
	if msg.Header.Get("In-Reply-To") != "" || msg.Header.Get("References") != "" {
		t.Errorf("%s: a report on a run with no patch has threading headers", name)
	}
}
