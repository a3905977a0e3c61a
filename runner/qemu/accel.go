package qemu

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kregress/kregress/internal/proc"
	"github.com/kregress/kregress/results"
	"github.com/kregress/kregress/runner"
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

// ProbeAccel decides between KVM and TCG. KVM is chosen only if /dev/kvm
// opens and a short boot of kernel under `-accel kvm -cpu host` prints the
// kernel banner within a few seconds; QEMU aborting, an error, or silence
// all mean TCG.
//
// The probe boots the distribution's kernel in /boot when there is one
// (referenceKernel), not the kernel under test: it boots under any working
// KVM, so its answer is the host's. Answers are cached in cacheDir/accel
// for a while, per host and QEMU binary. A yes holds for every kernel, and
// so does a no from the reference kernel: a host whose KVM is broken pays
// the probe's timeout once, not once for each kernel a series or
// bisection builds. Without a reference kernel the kernel under test is
// booted, and its no holds only for itself: it may be the kernel's fault
// (one that prints nothing under any accelerator), so it must not send
// later runs of other kernels to TCG. A /dev/kvm that does not open is
// not cached.
func ProbeAccel(ctx context.Context, kernel, cacheDir string) ProbeResult {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return ProbeResult{Accel: runner.AccelTCG, Reason: fmt.Sprintf("/dev/kvm: %v", err)}
	}
	f.Close()
	host, _ := os.Hostname()
	qemuID := qemuIdentity()
	dir := filepath.Join(cacheDir, "accel")
	yes := filepath.Join(dir, "kvm.json")
	probed, no := kernel, filepath.Join(dir, "no-kvm-"+kernelIdentity(kernel)+".json")
	ref := referenceKernel()
	hostNo := ""
	if ref != "" {
		probed, hostNo = ref, filepath.Join(dir, "no-kvm-host.json")
	}
	if cacheDir != "" {
		for _, path := range []string{yes, hostNo, no} {
			if path == "" {
				continue
			}
			if r, ok := readProbe(path, host, qemuID); ok {
				return r
			}
		}
	}
	r := probeBoot(ctx, probed)
	if ref != "" {
		r.Reason += ", on the reference kernel " + ref
	}
	r.When, r.Host, r.QEMU = time.Now(), host, qemuID
	if ctx.Err() == nil && cacheDir != "" {
		path := no
		switch {
		case r.Accel == runner.AccelKVM:
			path = yes
		case hostNo != "":
			path = hostNo
		}
		if data, err := json.Marshal(r); err == nil {
			os.MkdirAll(dir, 0o755)
			results.WriteAtomic(path, data)
		}
	}
	return r
}

// referenceKernel is the kernel the probe boots when there is one: the
// newest /boot/vmlinuz-* (a distribution kernel), "" when there is none. A
// variable for tests.
var referenceKernel = func() string {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	newest, newestTime := "", time.Time{}
	for _, k := range ks {
		st, err := os.Stat(k)
		if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			continue
		}
		if f, err := os.Open(k); err != nil {
			continue
		} else {
			f.Close()
		}
		if newest == "" || st.ModTime().After(newestTime) {
			newest, newestTime = k, st.ModTime()
		}
	}
	return newest
}

// readProbe returns the cached answer at path if it is for this host and
// QEMU and recent enough.
func readProbe(path, host, qemuID string) (ProbeResult, bool) {
	var r ProbeResult
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &r) != nil {
		return r, false
	}
	if r.Host != host || r.QEMU != qemuID || time.Since(r.When) >= probeCacheTTL || (r.Accel != runner.AccelKVM && r.Accel != runner.AccelTCG) {
		return r, false
	}
	r.Cached = true
	return r, true
}

// kernelIdentity names a kernel file by path, size and mtime.
func kernelIdentity(kernel string) string {
	id := kernel
	if st, err := os.Stat(kernel); err == nil {
		id = fmt.Sprintf("%s:%d:%d", kernel, st.Size(), st.ModTime().UnixNano())
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
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

// probeBoot boots kernel briefly under KVM; a variable for tests.
var probeBoot = func(ctx context.Context, kernel string) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := proc.Command(ctx, qemuBinary, "-nodefaults", "-no-user-config", "-display", "none",
		"-no-reboot", "-accel", "kvm", "-cpu", "host", "-m", "256",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1", "-serial", "stdio")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return ProbeResult{Accel: runner.AccelTCG, Reason: err.Error()}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return ProbeResult{Accel: runner.AccelTCG, Reason: fmt.Sprintf("start %s: %v", qemuBinary, err)}
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
			return ProbeResult{Accel: runner.AccelKVM, Reason: "a KVM boot printed the kernel banner"}
		}
		return ProbeResult{Accel: runner.AccelTCG, Reason: "KVM boot failed: " + orSilent(lastLine(stderr.String()))}
	case <-ctx.Done():
		return ProbeResult{Accel: runner.AccelTCG, Reason: fmt.Sprintf("KVM boot printed nothing within %v", probeTimeout)}
	}
}

func orSilent(s string) string {
	if s == "" {
		return "QEMU exited without a word"
	}
	return s
}
