package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
)

// MailOptions say who sends the reply and where reports live.
type MailOptions struct {
	// From is the sender, e.g. "kregress <kregress@example.org>".
	From string
	// To overrides the recipient (default: the patch's author).
	To string
	// Cc are extra recipients.
	Cc []string
	// Lore is the URL prefix the Closes: tag puts before the reply's own
	// Message-ID (default "https://lore.kernel.org/r/").
	Lore string
}

// Email writes a reply to the first bad patch's mail, ready for git
// send-email or mutt -H: threaded under the patch (In-Reply-To and
// References from the mbox), "Re: [PATCH n/m] subject", one sentence
// saying what happened, then the title, lockdep chain, symbolized stack,
// console excerpt, kernel, tree, configs, the reproduce command and the
// Reported-by:/Closes: tags kernel CI bots give. For a single run (no
// patch), the mail is a plain report. It fails when there is nothing to
// report (no bad patch, no crash, no failure).
func Email(w io.Writer, m *Model, opt Options, mo MailOptions) error {
	if mo.From == "" {
		mo.From = "kregress <kregress@localhost>"
	}
	if mo.Lore == "" {
		mo.Lore = "https://lore.kernel.org/r/"
	}
	st := m.FirstBad
	if st == nil && m.Kind == "run" && m.Status != "pass" && m.Status != "infra" {
		st = m.Steps[0]
	}
	if st == nil {
		return fmt.Errorf("report: email: %s shows no regression to report (status %s)", m.Dir, m.Status)
	}
	sum := sha256.Sum256([]byte(m.Dir + "\x00" + m.Started.String() + "\x00" + m.Headline))
	domain := "localhost"
	if i := strings.LastIndexByte(mo.From, '@'); i >= 0 {
		domain = strings.Trim(mo.From[i+1:], "> ")
	}
	msgID := fmt.Sprintf("<kregress-%s@%s>", hex.EncodeToString(sum[:10]), domain)
	date := m.Started.Add(time.Duration(m.Wall * float64(time.Second))).UTC()

	h := &strings.Builder{}
	header := func(k, v string) {
		if v != "" {
			fmt.Fprintf(h, "%s: %s\n", k, v)
		}
	}
	header("From", mo.From)
	to := mo.To
	subject := "kregress: " + m.Headline
	var inReplyTo, refs string
	if p := st.Patch; p != nil {
		if to == "" {
			to = p.From
		}
		subject = fmt.Sprintf("Re: [PATCH %d/%d] %s", p.Number, p.Total, p.Subject)
		if p.MessageID != "" {
			inReplyTo = p.MessageID
			refs = strings.TrimSpace(p.References + " " + p.MessageID)
		}
	} else if st.Index > 0 {
		subject = fmt.Sprintf("Re: [PATCH %s] %s", strings.TrimPrefix(st.Label, "patch "), st.Subject)
	}
	header("To", to)
	header("Cc", strings.Join(mo.Cc, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("In-Reply-To", inReplyTo)
	header("References", refs)
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	h.WriteString("\n")

	b := h
	fmt.Fprintf(b, "Hello,\n\n")
	fmt.Fprintf(b, "kregress tested this %s and found that %s.\n", map[bool]string{true: "patch", false: "kernel"}[st.Index > 0], sentence(m, st))
	if m.Kind == "series" && len(m.Steps) > 0 && st.Index > 0 {
		prev := m.Steps[0]
		for _, s := range m.Steps {
			if s.Index < st.Index && s.Index > prev.Index {
				prev = s
			}
		}
		if prev.Verdict == "pass" {
			fmt.Fprintf(b, "The same kernel without it (%s) passes the same tests.\n", prev.Label)
		} else {
			fmt.Fprintf(b, "The same kernel without it (%s) gives %s.\n", prev.Label, prev.Verdict)
		}
	}
	for _, c := range st.Crashes {
		if c.Status == "pre-existing" {
			continue
		}
		fmt.Fprintf(b, "\n%s\n", c.Title)
		if c.Lockdep != nil {
			fmt.Fprintf(b, "\nlockdep: %s: %s\n", c.Lockdep.Kind, c.Lockdep.Summary)
			for _, l := range LockChain(c.Lockdep) {
				fmt.Fprintf(b, "  %s\n", l)
			}
			if sites := c.LockSites(); len(sites) > 0 {
				fmt.Fprintf(b, "\nlock sites:\n")
				writeStackLines(b, sites)
			}
		}
		fmt.Fprintf(b, "\nstack:\n")
		writeStackLines(b, c.Stack())
		fmt.Fprintf(b, "\nconsole log (%s/console.log lines %d-%d):\n", c.RunDir, c.StartLine, c.EndLine)
		for _, l := range c.Console {
			if l.Report {
				fmt.Fprintf(b, "%s\n", l.Text)
			}
		}
		if len(c.Also) > 0 {
			var dirs []string
			for _, a := range c.Also {
				dirs = append(dirs, a.RunDir)
			}
			fmt.Fprintf(b, "\nalso seen in: %s\n", strings.Join(dirs, ", "))
		}
	}
	var failed []string
	for _, t := range st.Tests {
		if isFailure(t.Status) && t.Status != "crash" {
			failed = append(failed, fmt.Sprintf("  %s/%s: %s %s", t.Suite, t.Name, t.Status, t.Message))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(b, "\nfailing tests:\n%s\n", strings.Join(failed, "\n"))
	}
	fmt.Fprintf(b, "\nkernel:  %s", st.Kernel)
	if st.Release != "" {
		fmt.Fprintf(b, " (%s)", st.Release)
	}
	fmt.Fprintln(b)
	if m.Tree != "" {
		fmt.Fprintf(b, "tree:    %s", m.Tree)
		if m.Base != "" {
			fmt.Fprintf(b, " @ %s", m.Base)
		}
		fmt.Fprintln(b)
	}
	if m.Series != "" {
		fmt.Fprintf(b, "series:  %s, applied up to %s\n", m.Series, st.Label)
	}
	if len(m.Configs) > 0 {
		fmt.Fprintf(b, "configs: %s\n", strings.Join(m.Configs, ", "))
	}
	fmt.Fprintf(b, "suites:  %s\n", strings.Join(m.Suites, ", "))
	if m.Reproduce != "" {
		fmt.Fprintf(b, "\nreproduce:\n  %s\n", m.Reproduce)
	}
	fmt.Fprintf(b, "\nIf you fix the issue in a separate patch/commit (i.e. not just a new\nversion of the same patch/commit), kindly add the following tags:\n")
	fmt.Fprintf(b, "| Reported-by: %s\n", mo.From)
	fmt.Fprintf(b, "| Closes: %s%s\n", mo.Lore, strings.Trim(msgID, "<>"))
	fmt.Fprintf(b, "\n-- \nkregress, run directory %s\n", m.Dir)
	_, err := io.WriteString(w, b.String())
	return err
}

// sentence says what went wrong with st, for "found that ...".
func sentence(m *Model, st *Step) string {
	who := st.Label
	if st.Index == 0 {
		who = kernelName(st)
	}
	for _, c := range st.Crashes {
		if c.Status == "pre-existing" {
			continue
		}
		if t := testAt(st, c); t != "" {
			return fmt.Sprintf("%s crashes in test %s (%s)", who, t, c.Title)
		}
		return fmt.Sprintf("%s crashes (%s)", who, c.Title)
	}
	switch st.Verdict {
	case "fail":
		return fmt.Sprintf("%s makes tests fail that pass without it", who)
	case "no-apply":
		return fmt.Sprintf("%s does not apply", who)
	case "no-build":
		return fmt.Sprintf("%s does not build", who)
	case "no-boot":
		return fmt.Sprintf("%s does not boot", who)
	}
	var failed []string
	for _, t := range st.Tests {
		if isFailure(t.Status) {
			failed = append(failed, t.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Sprintf("%s fails %s", who, strings.Join(failed, ", "))
	}
	return fmt.Sprintf("%s gives %s", who, st.Verdict)
}

// writeStackLines writes frames one a line, the guilty one marked with >,
// each with its source position.
func writeStackLines(b *strings.Builder, lines []StackLine) {
	for _, f := range lines {
		pos := ""
		if f.File != "" {
			pos = fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		name := f.Func + f.Offset
		if f.Inlined {
			name += " (inlined)"
		}
		mark := " "
		if f.Guilty {
			mark = ">"
		}
		fmt.Fprintf(b, "%s\n", strings.TrimRight(fmt.Sprintf(" %s %-44s %s", mark, name, pos), " "))
	}
}
