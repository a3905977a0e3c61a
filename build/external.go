package build

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ExternalResult is one out-of-tree module tree built against the kernel.
type ExternalResult struct {
	// Tree is the user's module tree; Work is the private copy built.
	Tree string `json:"tree"`
	Work string `json:"work"`
	// Kind is "kbuild" or "autotools".
	Kind string `json:"kind"`
	// Modules are the installed .ko files, relative to
	// Result.ModulesDir/lib/modules/<release>/ as modules.dep names them.
	Modules []string `json:"modules"`
}

// buildExternal copies the module tree into the build folder (the user's
// tree gets no objects), builds it against the kernel, installs its .ko
// files under extra/ in the staging folder and reruns depmod.
func buildExternal(ctx context.Context, tree string, src *source, res *Result, req *Request, env, vars []string, jobs int, log io.Writer, st *status) (*ExternalResult, error) {
	abs, err := filepath.Abs(tree)
	if err != nil {
		return nil, fmt.Errorf("build: external module tree %s: %w", tree, err)
	}
	name := filepath.Base(abs) + "-" + digest(abs)[:8]
	work := filepath.Join(res.Dir, "ext", name)
	er := &ExternalResult{Tree: abs, Work: work, Kind: "kbuild"}
	if exists(filepath.Join(abs, "autogen.sh")) || exists(filepath.Join(abs, "configure.ac")) || exists(filepath.Join(abs, "configure")) {
		er.Kind = "autotools"
	}
	st.phase("external", fmt.Sprintf("copying %s", abs))
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("build: creating %s: %w", work, err)
	}
	// cp -a keeps the tree's times, so make rebuilds only what changed.
	if _, err := run(ctx, "", nil, "cp", "-a", abs+"/.", work+"/"); err != nil {
		return nil, fmt.Errorf("build: copying external module tree %s: %w", abs, err)
	}
	relDir := filepath.Join(res.ModulesDir, "lib", "modules", res.Release)
	extra := filepath.Join(relDir, "extra", name)
	kargs := append([]string{"-C", src.dir, "O=" + res.Dir, fmt.Sprintf("-j%d", jobs)}, vars...)
	switch er.Kind {
	case "kbuild":
		st.phase("external", "make M="+work)
		if _, err := runMake(ctx, src.dir, env, append(append([]string{}, kargs...), "M="+work, "modules"), work, log, st); err != nil {
			return nil, fmt.Errorf("build: external modules %s: %w", abs, err)
		}
	case "autotools":
		if !exists(filepath.Join(work, "configure")) {
			st.phase("external", "sh autogen.sh in "+work)
			if _, err := run(ctx, work, env, "sh", "autogen.sh"); err != nil {
				return nil, fmt.Errorf("build: external modules %s: %w", abs, err)
			}
		}
		st.phase("external", "configure in "+work)
		cargs := append([]string{"./configure", "--with-linux=" + src.dir, "--with-linux-obj=" + res.Dir, "--disable-server"}, req.ConfigureArgs...)
		if _, err := run(ctx, work, env, cargs...); err != nil {
			return nil, fmt.Errorf("build: external modules %s: %w", abs, err)
		}
		st.phase("external", "make in "+work)
		if _, err := runMake(ctx, work, env, []string{fmt.Sprintf("-j%d", jobs)}, work, log, st); err != nil {
			return nil, fmt.Errorf("build: external modules %s: %w", abs, err)
		}
	}
	var kos []string
	filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			kos = append(kos, p)
		}
		return nil
	})
	if len(kos) == 0 {
		return nil, fmt.Errorf("build: external module tree %s built no .ko files", abs)
	}
	sort.Strings(kos)
	os.RemoveAll(extra)
	if err := os.MkdirAll(extra, 0o755); err != nil {
		return nil, fmt.Errorf("build: creating %s: %w", extra, err)
	}
	for _, ko := range kos {
		dst := filepath.Join(extra, filepath.Base(ko))
		if exists(dst) {
			return nil, fmt.Errorf("build: external module tree %s has two modules named %s", abs, filepath.Base(ko))
		}
		if _, err := run(ctx, "", nil, "cp", ko, dst); err != nil {
			return nil, fmt.Errorf("build: installing %s: %w", ko, err)
		}
		er.Modules = append(er.Modules, filepath.Join("extra", name, filepath.Base(ko)))
	}
	st.phase("external", "depmod")
	if _, err := run(ctx, "", nil, depmodPath(), "-b", res.ModulesDir, "-F", res.SystemMap, res.Release); err != nil {
		return nil, fmt.Errorf("build: depmod after installing %s: %w", abs, err)
	}
	return er, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LoadOrder returns the modules to load, dependencies first, so that
// loading them in order with insmod works: modules.dep in modulesDir
// (lib/modules/<release>) is read and each wanted module (a path as
// modules.dep names it, or a module name like "crashmod") is preceded by
// what it depends on.
func LoadOrder(modulesDir string, wanted []string) ([]string, error) {
	f, err := os.Open(filepath.Join(modulesDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("build: module load order: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[modName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("build: reading modules.dep: %w", err)
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		// modules.dep lists every (transitive) dependency, nearest first;
		// load them deepest first.
		for i := len(deps[m]) - 1; i >= 0; i-- {
			visit(deps[m][i])
		}
		order = append(order, m)
	}
	for _, w := range wanted {
		m := w
		if _, ok := deps[m]; !ok {
			if m, ok = byName[strings.ReplaceAll(w, "-", "_")]; !ok {
				return nil, fmt.Errorf("build: module %q is not in %s/modules.dep", w, modulesDir)
			}
		}
		visit(m)
	}
	return order, nil
}

// modName is the module name of a modules.dep path: "kernel/fs/x-y.ko.xz"
// is "x_y".
func modName(p string) string {
	b := filepath.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}
