package build

import (
	"strings"
	"testing"
)

func TestConfigureReason(t *testing.T) {
	log := `checking whether CONFIG_FHANDLE is enabled... no
configure:41234: error: 

Lustre fid handling requires that CONFIG_FHANDLE is enabled in your kernel.

## ---------------- ##
## Cache variables. ##
## ---------------- ##
configure:41000: result: yes
configure:41235: error: second
  continued here

## x ##
`
	if got, want := configureReason([]byte(log)), "second continued here"; got != want {
		t.Errorf("last error: got %q, want %q", got, want)
	}
	// An error whose text is on the following lines.
	log = "configure:7: error: \nLustre fid handling requires that CONFIG_FHANDLE is enabled in your kernel.\n\n## a ##\n"
	if got, want := configureReason([]byte(log)), "Lustre fid handling requires that CONFIG_FHANDLE is enabled in your kernel."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := configureReason([]byte("checking x... yes\n")); got != "" {
		t.Errorf("no error: got %q", got)
	}
}

func TestDistroKernelMissingHeaders(t *testing.T) {
	_, err := DistroKernel("0.0.0-kregress-none")
	if err == nil || !strings.Contains(err.Error(), "linux-headers-0.0.0-kregress-none") {
		t.Fatalf("got %v, want an error naming linux-headers-0.0.0-kregress-none", err)
	}
}

func TestChangesBuildSystem(t *testing.T) {
	for f, want := range map[string]bool{
		"lustre/llite/namei.c": false, "config/lustre-core.m4": true, "configure.ac": true,
		"lustre/autoMakefile.am": true, "lnet/Kbuild.in": true, "lustre/llite/Makefile.in": true,
	} {
		if got := changesBuildSystem(f); got != want {
			t.Errorf("%s: %v, want %v", f, got, want)
		}
	}
}
