package agent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeControl serves the control API calls server-churn makes by changing
// dir itself, as a coherent client would see the server's changes. With
// swap set, a rename back puts a different file in place (a wrong inode
// behind a name).
func fakeControl(t *testing.T, dir string, swap bool) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := func(k string) string { return filepath.Join(dir, q.Get(k)) }
		var err error
		switch r.URL.Path {
		case "/revoke":
			_, err = os.Lstat(p("path"))
		case "/rename":
			if swap && !strings.HasSuffix(q.Get("to"), ".moved") {
				// A new file first, so its inode number is not
				// the one the removal frees.
				err = os.WriteFile(p("to")+".new", nil, 0o644)
				if err == nil {
					err = os.Rename(p("to")+".new", p("to"))
				}
				os.Remove(p("from"))
			} else {
				err = os.Rename(p("from"), p("to"))
			}
		case "/unlink":
			err = os.Remove(p("path"))
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			w.WriteHeader(409)
			w.Write([]byte(`{"error": "` + err.Error() + `"}`))
			return
		}
		w.Write([]byte(`{"asts": 1}`))
	}))
}

func churnTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "sub/c", "sub/d", "gone1", "sub/gone2"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(n)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runChurn(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	rc := runWorkload(append([]string{"server-churn", "-dir", dir, "-duration", "500ms", "-threads", "3",
		"-pause", "1ms", "-settle", "1s"}, args...), &out, &errb)
	return rc, out.String() + errb.String()
}

func TestServerChurnPassesOnACoherentFilesystem(t *testing.T) {
	for _, mode := range []string{"-mix=false", "-mix=true"} {
		dir := churnTree(t)
		srv := fakeControl(t, dir, false)
		rc, out := runChurn(t, dir, mode, "-ctl", srv.URL, "-names", "a,b,sub/c,sub/d,sub", "-unlink", "gone1,sub/gone2")
		srv.Close()
		if rc != 0 || !strings.Contains(out, "verdict pass") {
			t.Fatalf("%s: exit %d, want 0:\n%s", mode, rc, out)
		}
		if !strings.Contains(out, `"server_changes":`) || strings.Contains(out, `"server_changes":0`) {
			t.Errorf("%s: no server-side change counted:\n%s", mode, out)
		}
		for _, n := range []string{"gone1", "sub/gone2"} {
			if _, err := os.Lstat(filepath.Join(dir, n)); !os.IsNotExist(err) {
				t.Errorf("%s: %s was not unlinked: %v", mode, n, err)
			}
		}
	}
}

func TestServerChurnFailsOnAWrongInode(t *testing.T) {
	dir := churnTree(t)
	srv := fakeControl(t, dir, true)
	defer srv.Close()
	rc, out := runChurn(t, dir, "-ctl", srv.URL, "-names", "a,b")
	if rc != 1 || !strings.Contains(out, "but a was inode") && !strings.Contains(out, "but b was inode") {
		t.Fatalf("exit %d, want 1 with a wrong-inode failure:\n%s", rc, out)
	}
}

func TestServerChurnFailsWhenTheServerRefuses(t *testing.T) {
	dir := churnTree(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(409)
		w.Write([]byte(`{"error": "no"}`))
	}))
	defer srv.Close()
	rc, out := runChurn(t, dir, "-ctl", srv.URL, "-names", "a")
	if rc != 1 || !strings.Contains(out, "server side: control API POST") || !strings.Contains(out, "409") {
		t.Fatalf("exit %d, want 1 naming the refused call:\n%s", rc, out)
	}
}

func TestServerChurnBadFlags(t *testing.T) {
	dir := churnTree(t)
	t.Setenv("KREGRESS_LUSTRE_CTL", "")
	if rc, out := runChurn(t, dir, "-names", "a"); rc != 2 || !strings.Contains(out, "control API") {
		t.Errorf("no -ctl: exit %d, want 2:\n%s", rc, out)
	}
	if rc, out := runChurn(t, dir, "-ctl", "http://127.0.0.1:1"); rc != 2 || !strings.Contains(out, "-names is empty") {
		t.Errorf("no -names: exit %d, want 2:\n%s", rc, out)
	}
}
