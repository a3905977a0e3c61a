package job

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/kregress/kregress/agent/protocol"
	"github.com/kregress/kregress/results"
)

// writeJSON writes v as dir's result.json, atomically.
func writeJSON(dir *results.Dir, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return dir.WriteFile("result.json", append(data, '\n'))
}

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
		if rest, ok := strings.CutPrefix(l, protocol.MetricsPrefix); ok {
			var v map[string]any
			if json.Unmarshal([]byte(rest), &v) == nil {
				return v
			}
		}
	}
	return nil
}
