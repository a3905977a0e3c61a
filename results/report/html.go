package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// HTML writes m as one self-contained page: inline CSS, no script, no
// external resource.
func HTML(w io.Writer, m *Model, opt Options) error {
	var buf bytes.Buffer
	err := htmlTemplate.Execute(&buf, struct {
		M   *Model
		Opt Options
	}{m, opt})
	if err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"secs": func(s float64) string {
		if s == 0 {
			return "-"
		}
		if s >= 100 {
			return fmt.Sprintf("%.0f s", s)
		}
		return fmt.Sprintf("%.1f s", s)
	},
	"link":      func(o Options, file string, line int) string { return o.SourceLink(file, line) },
	"lockchain": LockChain,
	"join":      strings.Join,
	"verdictClass": func(v string) string {
		switch v {
		case "pass":
			return "ok"
		case "crash", "fail", "regression", "timeout", "no-apply", "no-build", "no-boot":
			return "bad"
		case "skip":
			return "skip"
		}
		return "infra"
	},
	"counts": func(ts []Test) string {
		n := map[string]int{}
		for _, t := range ts {
			n[t.Status]++
		}
		var parts []string
		for _, s := range []string{"pass", "fail", "timeout", "crash", "skip"} {
			if n[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
			}
		}
		return strings.Join(parts, ", ")
	},
	"shownTests": shownTests,
	"hasTests": func(m *Model) bool {
		for _, st := range m.Steps {
			if len(st.Tests) > 0 {
				return true
			}
		}
		return false
	},
	"anchor": func(st *Step, i int) string { return fmt.Sprintf("%s-crash-%d", st.ID, i+1) },
	"build": func(st *Step) string {
		if st.BuildKey == "" {
			if st.BuildSeconds > 0 {
				return fmt.Sprintf("%.0f s, no kernel", st.BuildSeconds)
			}
			return "-"
		}
		how := "clean"
		if st.Incremental {
			how = "incremental"
		}
		return fmt.Sprintf("%.0f s %s", st.BuildSeconds, how)
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kregress: {{.M.Headline}}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; padding: 0 16px; color: #1b1f24; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 600; color: #fff; }
.ok { background: #1a7f37; } .bad { background: #cf222e; } .infra { background: #9a6700; } .skip { background: #6e7781; }
td .ok, td .bad, td .infra, td .skip { padding: 1px 7px; border-radius: 3px; color: #fff; font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; font-size: 13px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 8px 0; }
dl.facts dt { color: #57606a; } dl.facts dd { margin: 0; font-family: ui-monospace, monospace; font-size: 13px; word-break: break-all; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
td.mono { white-space: nowrap; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; margin: 6px 0; }
.stack td { padding: 1px 8px; border: 0; font-family: ui-monospace, monospace; font-size: 13px; }
.stack tr.guilty td { background: #fff8c5; font-weight: 600; }
.stack td.inl { color: #57606a; }
.chain { font-family: ui-monospace, monospace; font-size: 13px; background: #fff1f0; border-left: 3px solid #cf222e; padding: 6px 10px; margin: 6px 0; }
.console { background: #0d1117; color: #c9d1d9; padding: 6px 0; overflow-x: auto; font-family: ui-monospace, monospace; font-size: 12px; line-height: 1.35; }
.console .lines { display: inline-block; min-width: 100%; }
.console .lines div { white-space: pre; padding: 0 10px; }
.console .n { display: inline-block; width: 4.5em; color: #6e7681; text-align: right; margin-right: 10px; user-select: none; }
.console .r { background: #3d1d20; }
.muted { color: #57606a; }
a { color: #0969da; }
</style>
</head>
<body>
<h1>kregress {{.M.Kind}} report</h1>
<p><span class="verdict {{verdictClass .M.Status}}">{{upper .M.Status}}</span> {{.M.Headline}}</p>
<dl class="facts">
{{- if .M.Tree}}<dt>{{if .M.Client}}kernel tree{{else}}tree{{end}}</dt><dd>{{.M.Tree}}{{if .M.Base}} @ {{.M.Base}}{{end}}</dd>{{end}}
{{- if .M.Kernel}}<dt>kernel</dt><dd>{{.M.Kernel}}</dd>{{end}}
{{- if .M.Client}}<dt>client tree</dt><dd>{{.M.Client}}</dd>{{end}}
{{- if .M.Series}}<dt>series</dt><dd>{{.M.Series}}{{if eq .M.Target "client"}} (applied to the client tree){{else if .M.Client}} (applied to the kernel tree){{end}}</dd>{{end}}
{{- if .M.Configs}}<dt>configs</dt><dd>{{join .M.Configs ", "}}</dd>{{end}}
<dt>suites</dt><dd>{{join .M.Suites ", "}}</dd>
<dt>started</dt><dd>{{.M.Started.UTC.Format "2006-01-02 15:04:05 UTC"}}</dd>
<dt>wall time</dt><dd>{{secs .M.Wall}}</dd>
<dt>run directory</dt><dd>{{.M.Dir}}</dd>
{{- if .M.Reproduce}}<dt>reproduce</dt><dd>{{.M.Reproduce}}</dd>{{end}}
</dl>

<h2>{{if eq .M.Kind "series"}}Per patch{{else}}Run{{end}}</h2>
<table>
<tr><th>step</th>{{if eq .M.Kind "series"}}<th>patch</th><th>build</th>{{end}}<th>boot</th><th>wall</th><th>tests</th><th>verdict</th><th>crashes</th></tr>
{{- range .M.Steps}}{{$st := .}}
<tr><td class="mono">{{.Label}}</td>{{if eq $.M.Kind "series"}}<td>{{.Subject}}</td><td class="mono">{{build .}}</td>{{end}}<td class="mono">{{secs .BootSeconds}}</td><td class="mono">{{secs .WallSeconds}}</td><td>{{counts .Tests}}</td><td><span class="{{verdictClass .Verdict}}">{{.Verdict}}</span></td>
<td>{{range $i, $c := .Crashes}}<a href="#{{anchor $st $i}}">{{$c.Title}}</a>{{if $c.Status}} <span class="muted">[{{$c.Status}}]</span>{{end}}<br>{{else}}{{if and (ne .Verdict "pass") .Message}}<span class="muted">{{.Message}}</span>{{else}}<span class="muted">-</span>{{end}}{{end}}</td></tr>
{{- end}}
</table>

{{- $shown := shownTests .M}}
<h2>Tests</h2>
{{- if $shown}}
{{- if eq .M.Kind "series"}}
<p class="muted">The tests that did not pass; the per-patch table counts the rest.</p>{{end}}
<table>
<tr>{{if eq .M.Kind "series"}}<th>step</th>{{end}}<th>suite</th><th>test</th><th>status</th><th>time</th><th>message</th></tr>
{{- range $shown}}
<tr>{{if eq $.M.Kind "series"}}<td class="mono">{{.Step.Label}}</td>{{end}}<td>{{.Suite}}</td>{{if .Names}}<td>{{len .Names}} tests<br><span class="mono muted">{{join .Names ", "}}</span></td>{{else}}<td class="mono">{{.Name}}</td>{{end}}<td><span class="{{verdictClass .Status}}">{{.Status}}</span></td><td class="mono">{{if not .Names}}{{printf "%.2f s" .Seconds}}{{end}}</td><td>{{.Message}}</td></tr>
{{- end}}
</table>
{{- else}}
<p class="muted">{{if hasTests .M}}Every test passed at every step.{{else}}No test ran.{{end}}</p>
{{- end}}

{{- range .M.Steps}}{{$st := .}}{{range $i, $c := .Crashes}}
<h2 id="{{anchor $st $i}}">{{$st.Label}}: {{$c.Title}}</h2>
<dl class="facts">
<dt>type</dt><dd>{{$c.Type}}{{if $c.Corrupted}} (corrupted report){{end}}</dd>
{{- if $c.Status}}<dt>against the base</dt><dd>{{$c.Status}}</dd>{{end}}
{{- if $c.AltTitles}}<dt>also known as</dt><dd>{{join $c.AltTitles "; "}}</dd>{{end}}
<dt>kernel</dt><dd>{{$st.Kernel}}{{if $st.Release}} ({{$st.Release}}){{end}}</dd>
<dt>console</dt><dd>{{$c.RunDir}}/console.log lines {{$c.StartLine}}-{{$c.EndLine}}{{if gt $c.Count 1}}, seen {{$c.Count}} times{{end}}</dd>
{{- if $c.Also}}<dt>also seen in</dt><dd>{{range $j, $a := $c.Also}}{{if $j}}<br>{{end}}{{$a.RunDir}}/console.log lines {{$a.StartLine}}-{{$a.EndLine}}{{end}}</dd>{{end}}
</dl>
{{- with $c.Lockdep}}
<h3>Lockdep: {{.Kind}}</h3>
<p>{{.Summary}}{{if .Task}} <span class="muted">(task {{.Task}})</span>{{end}}</p>
<div class="chain">{{range lockchain .}}<div>{{.}}</div>{{end}}</div>
{{- if .HeldLocks}}
<table><tr><th>#</th><th>held lock</th><th>state</th><th>taken at</th></tr>
{{- range .HeldLocks}}<tr><td class="mono">{{.Index}}</td><td class="mono">{{.Class}}</td><td class="mono">{{.State}}</td><td class="mono">{{.At}}</td></tr>{{end}}
</table>{{end}}
{{- end}}
{{- with $c.LockSites}}
<h3>Lock sites</h3>
<table class="stack">
{{- range .}}
<tr><td{{if .Inlined}} class="inl"{{end}}>{{.Func}}{{.Offset}}{{if .Module}} [{{.Module}}]{{end}}{{if .Inlined}} (inlined){{end}}</td><td>{{if .File}}{{with link $.Opt .File .Line}}<a href="{{.}}">{{end}}{{.File}}:{{.Line}}{{if link $.Opt .File .Line}}</a>{{end}}{{end}}</td></tr>
{{- end}}
</table>
{{- end}}
<h3>Stack</h3>
<table class="stack">
{{- range $c.Stack}}
<tr{{if .Guilty}} class="guilty"{{end}}><td{{if .Inlined}} class="inl"{{end}}>{{.Func}}{{.Offset}}{{if .Module}} [{{.Module}}]{{end}}{{if .Inlined}} (inlined){{end}}</td><td>{{if .File}}{{with link $.Opt .File .Line}}<a href="{{.}}">{{end}}{{.File}}:{{.Line}}{{if link $.Opt .File .Line}}</a>{{end}}{{end}}</td></tr>
{{- end}}
</table>
<h3>Console</h3>
<div class="console"><div class="lines">
{{- range $c.Console}}<div{{if .Report}} class="r"{{end}}><span class="n">{{.N}}</span>{{.Text}}</div>{{end}}
</div></div>
{{- end}}{{end}}
<p class="muted">Made by kregress report from {{.M.Dir}}.</p>
</body>
</html>
`))

// stepTest is a test with the step it ran at. Names, when set, are the
// tests of one row standing for several skipped ones.
type stepTest struct {
	Test
	Step  *Step
	Names []string
}

// shownTests are the tests the page lists: every test of a single run;
// for a series, those that did not pass.
func shownTests(m *Model) []stepTest {
	var out []stepTest
	for _, st := range m.Steps {
		for _, t := range st.Tests {
			if m.Kind == "series" && t.Status == "pass" {
				continue
			}
			// Skipped tests after a crash all say the same ("not run:
			// the VM had ended: ..."): one row for them.
			if n := len(out); n > 0 && t.Status == "skip" {
				if p := &out[n-1]; p.Step == st && p.Status == "skip" && p.Suite == t.Suite && p.Message == t.Message {
					if p.Names == nil {
						p.Names = []string{p.Name}
					}
					p.Names = append(p.Names, t.Name)
					continue
				}
			}
			out = append(out, stepTest{Test: t, Step: st})
		}
	}
	return out
}
