package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/results"
)

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// probeTimeout bounds the KVM probe boot. A working KVM prints the first
// kernel line well within a second; a broken one aborts or hangs.
const probeTimeout = 4 * time.Second

// probeCacheTTL is how long a probe's answer is trusted.
const probeCacheTTL = 12 * time.Hour

// ProbeResult is the accelerator the probe chose and why.
type ProbeResult struct {
	Accel  string    `json:"accel"`
	Reason string    `json:"reason"`
	When   time.Time `json:"when"`
	Host   string    `json:"host"`
	QEMU   string    `json:"qemu"`
	Cached bool      `json:"-"`
}

// ProbeAccel decides between KVM and TCG. KVM is chosen only if
// /dev/kvm opens and a short boot of kernel under `-accel kvm -cpu host`
// prints its first console line within a few seconds; QEMU aborting, an
// error, or silence all mean TCG. The answer is cached in cacheDir per
// host and QEMU binary for a while.
func ProbeAccel(ctx context.Context, kernel, cacheDir string) ProbeResult {
	host, _ := os.Hostname()
	qemuID := qemuIdentity()
	cachePath := filepath.Join(cacheDir, "accel-probe.json")
	if data, err := os.ReadFile(cachePath); err == nil {
		var r ProbeResult
		if json.Unmarshal(data, &r) == nil && r.Host == host && r.QEMU == qemuID && time.Since(r.When) < probeCacheTTL && (r.Accel == AccelKVM || r.Accel == AccelTCG) {
			r.Cached = true
			return r
		}
	}
	r := probe(ctx, kernel)
	r.When, r.Host, r.QEMU = time.Now(), host, qemuID
	if ctx.Err() == nil {
		if data, err := json.Marshal(r); err == nil {
			os.MkdirAll(cacheDir, 0o755)
			results.WriteAtomic(cachePath, data)
		}
	}
	return r
}

// qemuIdentity names the QEMU binary by path, size and mtime, so that an
// upgrade invalidates the cached probe.
func qemuIdentity() string {
	p, err := exec.LookPath(qemuBinary)
	if err != nil {
		return "none"
	}
	st, err := os.Stat(p)
	if err != nil {
		return p
	}
	return fmt.Sprintf("%s:%d:%d", p, st.Size(), st.ModTime().Unix())
}

func probe(ctx context.Context, kernel string) ProbeResult {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return ProbeResult{Accel: AccelTCG, Reason: fmt.Sprintf("/dev/kvm: %v", err)}
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := proc.Command(ctx, qemuBinary, "-nodefaults", "-no-user-config", "-display", "none",
		"-no-reboot", "-accel", "kvm", "-cpu", "host", "-m", "256",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1", "-serial", "stdio")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return ProbeResult{Accel: AccelTCG, Reason: err.Error()}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return ProbeResult{Accel: AccelTCG, Reason: fmt.Sprintf("start %s: %v", qemuBinary, err)}
	}
	defer func() {
		cmd.Kill()
		cmd.Wait()
	}()
	got := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Linux version") {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if ok {
			return ProbeResult{Accel: AccelKVM, Reason: "a KVM boot printed the kernel banner"}
		}
		return ProbeResult{Accel: AccelTCG, Reason: "KVM boot failed: " + lastLine(stderr.String())}
	case <-ctx.Done():
		return ProbeResult{Accel: AccelTCG, Reason: fmt.Sprintf("KVM boot printed nothing within %v", probeTimeout)}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "QEMU exited without a word"
	}
	return s
}
