package agent

import (
	"slices"
	"testing"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/suites"
)

// TestWorkloadsAreTheProtocols ties the agent's workload table to the
// names the protocol (and so the suite format) lists.
func TestWorkloadsAreTheProtocols(t *testing.T) {
	have := workloadNames()
	want := slices.Sorted(slices.Values(protocol.Workloads))
	if !slices.Equal(have, want) {
		t.Errorf("the agent implements %q; protocol.Workloads lists %q", have, want)
	}
	if !slices.Equal(suites.Workloads, protocol.Workloads) {
		t.Errorf("suites accept %q, the protocol lists %q", suites.Workloads, protocol.Workloads)
	}
}
