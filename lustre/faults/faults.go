// Package faults describes the faults the simulated Lustre server injects:
// per opcode and/or per name, a delay, an error status, a dropped reply or
// an eviction of the client, optionally only a number of times.
//
// YAML (a list, or a mapping with key "faults"):
//
//   - op: MDS_GETATTR       # opcode name as in ptlrpc.OpName; empty = any
//     name: victim          # the request's NAME field (lookup component, llog or xattr name); empty = any
//     delay: 500ms          # wait before answering
//     error: ESTALE         # answer with this errno
//     drop: true            # send no reply: a lost reply (the client reconnects and resends)
//     evict: true           # evict the client (it gets ENOTCONN and reconnects)
//     count: 2              # apply to this many matching requests, then retire (0 = always)
package faults

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Rule is one fault.
type Rule struct {
	Op    string        `yaml:"op" json:"op,omitempty"`
	Name  string        `yaml:"name" json:"name,omitempty"`
	Delay time.Duration `yaml:"delay" json:"delay,omitempty"`
	Error string        `yaml:"error" json:"error,omitempty"`
	Drop  bool          `yaml:"drop" json:"drop,omitempty"`
	Evict bool          `yaml:"evict" json:"evict,omitempty"`
	Count int           `yaml:"count" json:"count,omitempty"`
	opc   uint32
	errno int32
	used  int
}

// Action is what to do to one request.
type Action struct {
	Delay time.Duration
	Errno int32 // positive errno, 0 for none
	Drop  bool
	Evict bool
	Rule  string // description of the rule that fired
}

// Validate checks a rule and resolves its names.
func (r *Rule) Validate() error {
	if r.Op != "" {
		opc, ok := ptlrpc.OpByName(r.Op)
		if !ok {
			return fmt.Errorf("faults: unknown opcode name %q", r.Op)
		}
		r.opc = opc
	}
	if r.Error != "" {
		e, ok := ptlrpc.Errno(strings.ToUpper(r.Error))
		if !ok {
			return fmt.Errorf("faults: unknown errno name %q", r.Error)
		}
		r.errno = e
	}
	if r.Delay < 0 || r.Delay > time.Hour {
		return fmt.Errorf("faults: delay %v out of range", r.Delay)
	}
	if r.Count < 0 {
		return fmt.Errorf("faults: negative count %d", r.Count)
	}
	if r.Delay == 0 && r.errno == 0 && !r.Drop && !r.Evict {
		return fmt.Errorf("faults: rule for op %q name %q does nothing", r.Op, r.Name)
	}
	return nil
}

func (r *Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "op=%s", or(r.Op, "*"))
	if r.Name != "" {
		fmt.Fprintf(&b, " name=%s", r.Name)
	}
	if r.Delay > 0 {
		fmt.Fprintf(&b, " delay=%v", r.Delay)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, " error=%s", r.Error)
	}
	if r.Drop {
		b.WriteString(" drop")
	}
	if r.Evict {
		b.WriteString(" evict")
	}
	return b.String()
}

func or(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// Parse reads rules from YAML (or JSON, a subset of YAML).
func Parse(data []byte) ([]Rule, error) {
	var rules []Rule
	var probe yaml.Node
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("faults: parsing YAML: %w", err)
	}
	if len(probe.Content) == 0 {
		return nil, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var err error
	if probe.Content[0].Kind == yaml.MappingNode {
		var wrap struct {
			Faults []Rule `yaml:"faults"`
		}
		err = dec.Decode(&wrap)
		rules = wrap.Faults
	} else {
		err = dec.Decode(&rules)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("faults: parsing YAML: %w", err)
	}
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	return rules, nil
}

// Load reads rules from a YAML file.
func Load(file string) ([]Rule, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// Set is the active rules; safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	rules []*Rule
	n     int // len(rules), read without the lock as a fast path hint
}

// Add validates and appends rules.
func (s *Set) Add(rules ...Rule) error {
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rules {
		r := rules[i]
		s.rules = append(s.rules, &r)
	}
	s.n = len(s.rules)
	return nil
}

// Clear removes every rule.
func (s *Set) Clear() {
	s.mu.Lock()
	s.rules, s.n = nil, 0
	s.mu.Unlock()
}

// Rules returns a copy of the active rules.
func (s *Set) Rules() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = *r
	}
	return out
}

// Match returns the action for a request with opcode opc carrying names
// (the first matching rule wins), or nil.
func (s *Set) Match(opc uint32, names ...string) *Action {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return nil
	}
	for i, r := range s.rules {
		if r.Op != "" && r.opc != opc {
			continue
		}
		if r.Name != "" && !contains(names, r.Name) {
			continue
		}
		r.used++
		if r.Count > 0 && r.used >= r.Count {
			s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
			s.n = len(s.rules)
		}
		return &Action{Delay: r.Delay, Errno: r.errno, Drop: r.Drop, Evict: r.Evict, Rule: r.String()}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
