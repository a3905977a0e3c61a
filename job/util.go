package job

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/kregress/kregress/agent"
	"github.com/kregress/kregress/results/triage"
)

func sortStrings(s []string) { sort.Strings(s) }

func parseLog(data []byte) []triage.Report { return triage.Parse(data) }

// metricsCapture keeps the workload's metrics line out of its output.
type metricsCapture struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (m *metricsCapture) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf.Len() < 1<<20 {
		m.buf.Write(p)
	}
	return len(p), nil
}

func (m *metricsCapture) parse() map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range strings.Split(m.buf.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, agent.MetricsPrefix); ok {
			var v map[string]any
			if json.Unmarshal([]byte(rest), &v) == nil {
				return v
			}
		}
	}
	return nil
}
