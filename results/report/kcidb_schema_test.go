package report

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"testing"
	"time"
)

// The facts of KCIDB's I/O schema v5.3 (kcidb-io, kcidb_io/schema/
// v05_03.py) that kregress's output must satisfy, written down as data:
// which properties each object may have (additionalProperties is false
// everywhere), their JSON types, patterns, enums and limits, and which
// are required. The official validator (kcidb-io, a PyPI package) cannot
// be installed by make setup: PyPI is not reachable. By hand, on
// 2026-11-26, kcidb-io's own validator from its source (commit 8971c02,
// outside this repository) with Debian's python3-jsonschema 4.10.3 passed
// every testdata/golden/*.kcidb.json:
//
//	PYTHONPATH=kcidb-io /usr/bin/python3 -c 'import kcidb_io, json, sys
//	for f in sys.argv[1:]: kcidb_io.schema.V5_3.validate_exactly(json.load(open(f)))' \
//	    testdata/golden/*.kcidb.json
//
// (it rejects a status "OK"; without rfc3339-validator, not in Debian 12,
// it does not check date-time formats, which this checker does).
type field struct {
	typ     string // string, number, integer, boolean, object, array
	pattern string // for strings
	enum    []string
	maxLen  int
	format  string // date-time, uri
	items   string // for arrays: string (with pattern), or an object kind
	itemPat string
	min     *float64
	object  string // for objects: a kind below, or "" for free-form misc
}

type kind struct {
	fields   map[string]field
	required []string
}

var (
	zero           = 0.0
	originPattern  = `^[a-z0-9_]+$`
	originIDPat    = `^[a-z0-9_]+:[^\x00]*$`
	noNUL          = `^[^\x00]*$`
	pathPattern    = `^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$`
	statusEnum     = []string{"FAIL", "ERROR", "MISS", "PASS", "DONE", "SKIP"}
	resourceFields = map[string]field{"name": {typ: "string", pattern: `^[^/\x00]+$`}, "url": {typ: "string", format: "uri"}}
)

var kcidbKinds = map[string]kind{
	"root": {fields: map[string]field{
		"version":   {typ: "object", object: "version"},
		"checkouts": {typ: "array", items: "checkout"},
		"builds":    {typ: "array", items: "build"},
		"tests":     {typ: "array", items: "test"},
		"issues":    {typ: "array", items: "issue"},
		"incidents": {typ: "array", items: "incident"},
	}, required: []string{"version"}},
	"version": {fields: map[string]field{
		"major": {typ: "integer", enum: []string{"5"}},
		"minor": {typ: "integer", enum: []string{"0", "1", "2", "3"}},
	}, required: []string{"major"}},
	"resource": {fields: resourceFields, required: []string{"name", "url"}},
	"checkout": {fields: map[string]field{
		"_timestamp": {typ: "string", format: "date-time"}, "id": {typ: "string", pattern: originIDPat},
		"origin": {typ: "string", pattern: originPattern}, "tree_name": {typ: "string", pattern: noNUL},
		"git_repository_url": {typ: "string", format: "uri", pattern: `^https://[^\x00]*$`},
		"git_commit_hash":    {typ: "string", pattern: `^[0-9a-f]{40}$`}, "git_commit_name": {typ: "string", pattern: noNUL},
		"git_commit_tags": {typ: "array", items: "string", itemPat: noNUL}, "git_commit_message": {typ: "string", pattern: noNUL},
		"git_repository_branch": {typ: "string", pattern: noNUL}, "git_repository_branch_tip": {typ: "boolean"},
		"patchset_files": {typ: "array", items: "resource"}, "patchset_hash": {typ: "string", pattern: `^$|^[0-9a-f]{64}$`},
		"message_id": {typ: "string", format: "email"}, "comment": {typ: "string", pattern: noNUL},
		"start_time": {typ: "string", format: "date-time"}, "origin_builds_finish_time": {typ: "string", format: "date-time"},
		"origin_tests_finish_time": {typ: "string", format: "date-time"}, "log_url": {typ: "string", format: "uri"},
		"log_excerpt": {typ: "string", pattern: noNUL, maxLen: 16384}, "valid": {typ: "boolean"}, "misc": {typ: "object"},
	}, required: []string{"id", "origin"}},
	"build": {fields: map[string]field{
		"_timestamp": {typ: "string", format: "date-time"}, "checkout_id": {typ: "string", pattern: originIDPat},
		"id": {typ: "string", pattern: originIDPat}, "origin": {typ: "string", pattern: originPattern},
		"comment": {typ: "string", pattern: noNUL}, "start_time": {typ: "string", format: "date-time"},
		"duration": {typ: "number"}, "architecture": {typ: "string", pattern: `^[a-z0-9_]*$`},
		"command": {typ: "string", pattern: noNUL}, "compiler": {typ: "string", pattern: noNUL},
		"input_files": {typ: "array", items: "resource"}, "output_files": {typ: "array", items: "resource"},
		"config_name": {typ: "string", pattern: noNUL}, "config_url": {typ: "string", format: "uri"},
		"log_url": {typ: "string", format: "uri"}, "log_excerpt": {typ: "string", pattern: noNUL, maxLen: 16384},
		"status": {typ: "string", enum: statusEnum}, "misc": {typ: "object"},
	}, required: []string{"checkout_id", "id", "origin"}},
	"environment": {fields: map[string]field{
		"compatible": {typ: "array", items: "string", itemPat: `^[^ \x00]+(,[^ \x00]+)*$`},
		"comment":    {typ: "string", pattern: noNUL}, "misc": {typ: "object"},
	}},
	"test": {fields: map[string]field{
		"_timestamp": {typ: "string", format: "date-time"}, "build_id": {typ: "string", pattern: originIDPat},
		"id": {typ: "string", pattern: originIDPat}, "origin": {typ: "string", pattern: originPattern},
		"environment": {typ: "object", object: "environment"}, "path": {typ: "string", pattern: pathPattern},
		"comment": {typ: "string", pattern: noNUL}, "log_url": {typ: "string", format: "uri"},
		"log_excerpt": {typ: "string", pattern: noNUL, maxLen: 16384}, "status": {typ: "string", enum: statusEnum},
		"number": {typ: "object", object: "number"}, "start_time": {typ: "string", format: "date-time"},
		"duration": {typ: "number"}, "input_files": {typ: "array", items: "resource"},
		"output_files": {typ: "array", items: "resource"}, "misc": {typ: "object"},
	}, required: []string{"build_id", "id", "origin"}},
	"number": {fields: map[string]field{
		"value": {typ: "number"}, "unit": {typ: "string", pattern: noNUL}, "prefix": {typ: "string", enum: []string{"metric", "binary"}},
	}, required: []string{"value"}},
	"culprit": {fields: map[string]field{"code": {typ: "boolean"}, "tool": {typ: "boolean"}, "harness": {typ: "boolean"}}},
	"issue": {fields: map[string]field{
		"_timestamp": {typ: "string", format: "date-time"}, "id": {typ: "string", pattern: originIDPat},
		"version": {typ: "integer", min: &zero}, "origin": {typ: "string", pattern: originPattern},
		"categories": {typ: "array", items: "string", itemPat: pathPattern}, "report_url": {typ: "string", format: "uri"},
		"report_subject": {typ: "string", pattern: noNUL}, "culprit": {typ: "object", object: "culprit"},
		"comment": {typ: "string", pattern: noNUL}, "misc": {typ: "object"},
	}, required: []string{"id", "version", "origin"}},
	"incident": {fields: map[string]field{
		"_timestamp": {typ: "string", format: "date-time"}, "id": {typ: "string", pattern: originIDPat},
		"origin": {typ: "string", pattern: originPattern}, "issue_id": {typ: "string", pattern: originIDPat},
		"issue_version": {typ: "integer", min: &zero}, "build_id": {typ: "string", pattern: originIDPat},
		"test_id": {typ: "string", pattern: originIDPat}, "present": {typ: "boolean"},
		"comment": {typ: "string", pattern: noNUL}, "misc": {typ: "object"},
	}, required: []string{"id", "origin", "issue_id", "issue_version"}},
}

// checkKCIDB returns every way data breaks the v5.3 facts above, plus
// the links the schema's description asks for (ids unique per type,
// *_id naming an object present in the same data).
func checkKCIDB(data []byte) []string {
	var root map[string]any
	dec := json.NewDecoder(bytesReader(data))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	var errs []string
	checkObject("", "root", root, &errs)
	ids := map[string]map[string]bool{}
	for _, list := range []string{"checkouts", "builds", "tests", "issues", "incidents"} {
		ids[list] = map[string]bool{}
		arr, _ := root[list].([]any)
		for i, o := range arr {
			obj, _ := o.(map[string]any)
			id, _ := obj["id"].(string)
			if ids[list][id] {
				errs = append(errs, fmt.Sprintf("%s[%d]: duplicate id %q", list, i, id))
			}
			ids[list][id] = true
		}
	}
	link := func(list, key, target string) {
		arr, _ := root[list].([]any)
		for i, o := range arr {
			obj, _ := o.(map[string]any)
			if v, ok := obj[key].(string); ok && !ids[target][v] {
				errs = append(errs, fmt.Sprintf("%s[%d].%s: %q names no object in %s", list, i, key, v, target))
			}
		}
	}
	link("builds", "checkout_id", "checkouts")
	link("tests", "build_id", "builds")
	link("incidents", "issue_id", "issues")
	link("incidents", "test_id", "tests")
	link("incidents", "build_id", "builds")
	return errs
}

func checkObject(at, kindName string, obj map[string]any, errs *[]string) {
	k := kcidbKinds[kindName]
	for _, r := range k.required {
		if _, ok := obj[r]; !ok {
			*errs = append(*errs, fmt.Sprintf("%s: required %q missing", at, r))
		}
	}
	keys := make([]string, 0, len(obj))
	for key := range obj {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		f, ok := k.fields[key]
		where := at + "." + key
		if !ok {
			*errs = append(*errs, fmt.Sprintf("%s: not a property of %s", where, kindName))
			continue
		}
		checkValue(where, f, obj[key], errs)
	}
}

func checkValue(where string, f field, v any, errs *[]string) {
	bad := func(format string, args ...any) { *errs = append(*errs, where+": "+fmt.Sprintf(format, args...)) }
	switch f.typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			bad("want a string, got %T", v)
			return
		}
		if f.pattern != "" && !regexp.MustCompile(f.pattern).MatchString(s) {
			bad("%q does not match %s", s, f.pattern)
		}
		if f.maxLen > 0 && len([]rune(s)) > f.maxLen {
			bad("%d characters, at most %d", len([]rune(s)), f.maxLen)
		}
		if f.enum != nil && !inList(f.enum, s) {
			bad("%q is not one of %v", s, f.enum)
		}
		switch f.format {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				bad("%q is not a date-time: %v", s, err)
			}
		case "email":
			if !regexp.MustCompile(`^[^@\s<>]+@[^@\s<>]+$`).MatchString(s) {
				bad("%q is not an email address", s)
			}
		case "uri":
			if !regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$`).MatchString(s) {
				bad("%q is not a URI", s)
			}
		}
	case "number", "integer":
		n, ok := v.(json.Number)
		if !ok {
			bad("want a %s, got %T", f.typ, v)
			return
		}
		if f.typ == "integer" {
			if _, err := n.Int64(); err != nil {
				bad("%s is not an integer", n)
			}
		}
		x, _ := n.Float64()
		if f.min != nil && x < *f.min {
			bad("%s below %v", n, *f.min)
		}
		if f.enum != nil && !inList(f.enum, n.String()) {
			bad("%s is not one of %v", n, f.enum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %T", v)
		}
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %T", v)
			return
		}
		if f.object != "" {
			checkObject(where, f.object, o, errs)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("want an array, got %T", v)
			return
		}
		for i, x := range a {
			w := fmt.Sprintf("%s[%d]", where, i)
			if f.items == "string" {
				checkValue(w, field{typ: "string", pattern: f.itemPat}, x, errs)
				continue
			}
			o, ok := x.(map[string]any)
			if !ok {
				*errs = append(*errs, fmt.Sprintf("%s: want an object, got %T", w, x))
				continue
			}
			checkObject(w, f.items, o, errs)
		}
	}
}

func inList(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestKCIDBChecker makes sure the checker itself catches what it must.
func TestKCIDBChecker(t *testing.T) {
	bad := []struct{ json, want string }{
		{`{}`, `required "version"`},
		{`{"version":{"major":4}}`, `not one of`},
		{`{"version":{"major":5},"tests":[{"id":"x","build_id":"kregress:b","origin":"kregress"}]}`, `does not match`},
		{`{"version":{"major":5},"tests":[{"id":"kregress:t","build_id":"kregress:b","origin":"kregress","status":"OK"}]}`, `not one of`},
		{`{"version":{"major":5},"tests":[{"id":"kregress:t","build_id":"kregress:b","origin":"kregress","path":"a..b"}]}`, `does not match`},
		{`{"version":{"major":5},"tests":[{"id":"kregress:t","origin":"kregress"}]}`, `required "build_id"`},
		{`{"version":{"major":5},"builds":[{"id":"kregress:b","checkout_id":"kregress:c","origin":"kregress","valid":true}]}`, `not a property`},
		{`{"version":{"major":5},"issues":[{"id":"kregress:i","origin":"kregress","version":-1}]}`, `below`},
		{`{"version":{"major":5},"incidents":[{"id":"kregress:n","origin":"kregress","issue_id":"kregress:i","issue_version":1}]}`, `names no object`},
		{`{"version":{"major":5},"checkouts":[{"id":"kregress:c","origin":"kregress","start_time":"yesterday"}]}`, `not a date-time`},
		{`{"version":{"major":5},"checkouts":[{"id":"kregress:c","origin":"kregress","log_excerpt":"a\u0000b"}]}`, `does not match`},
	}
	for _, b := range bad {
		errs := checkKCIDB([]byte(b.json))
		found := false
		for _, e := range errs {
			if regexp.MustCompile(regexp.QuoteMeta(b.want)).MatchString(e) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want an error with %q, got %v", b.json, b.want, errs)
		}
	}
}
