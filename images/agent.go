package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kregress/kregress/internal/proc"
)

// AgentName is the file name of the guest agent binary, installed beside
// the kregress binary by `make`.
const AgentName = "kregress-agent"

// AgentBinary returns the path of a static guest agent binary. It looks, in
// order, at $KREGRESS_AGENT, at AgentName beside the running executable,
// and finally builds the agent from this module's source with the go
// command (CGO_ENABLED=0) into cacheDir, which is what tests and `go run`
// use.
func AgentBinary(ctx context.Context, cacheDir string) (string, error) {
	if p := os.Getenv("KREGRESS_AGENT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("images: $KREGRESS_AGENT: %w", err)
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), AgentName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("images: no %s beside the kregress binary and %w; run `make` or set KREGRESS_AGENT", AgentName, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, ".agent-*")
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := proc.Command(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), "./cmd/kregress-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("images: build guest agent in %s: %v\n%s", root, err, out.Bytes())
	}
	dst := filepath.Join(cacheDir, AgentName)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	return dst, nil
}

// moduleRoot finds this module's source tree by walking up from the working
// directory to a go.mod that declares it.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/kregress/kregress\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the kregress source tree is not above the working directory")
		}
		dir = parent
	}
}
