// Command argocd-health runs Argo CD resource health checks (health.lua) the way Argo CD does:
// gopher-lua (Lua 5.1), the live object as the global `obj`, the returned table encoded with
// gopher-json and read as {status, message}; a status Argo CD does not know becomes Unknown.
//
// Libraries, as in argo-cd util/lua: a script from argocd-cm runs with the standard libraries
// skipped unless resource.customizations.useOpenLibs is set, and in either case gets package,
// base, table, a safe os (time, date) and the json module; scripts built into Argo CD run with
// every standard library open. Each case here runs both ways and must give the same answer.
//
//	argocd-health test DIR...   every <group>/<Kind>/health.lua under DIR against its
//	                            health_test.yaml; every file in testdata/ must be a case
//	argocd-health eval SCRIPT   a JSON array of objects on stdin -> a JSON array of results
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// Health is Argo CD's HealthStatus as a Lua script reports it.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Outcome is one run of a script: its health, or the error Argo CD would log.
type Outcome struct {
	Health
	Error string `json:"error,omitempty"`
}

type testFile struct {
	Tests []struct {
		InputPath    string `json:"inputPath"`
		HealthStatus Health `json:"healthStatus"`
	} `json:"tests"`
}

var knownStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true,
	"Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health test DIR... | argocd-health eval SCRIPT")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "test":
		err = testDirs(os.Args[2:], os.Stdout)
	case "eval":
		err = evalStdin(os.Args[2], os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(1)
	}
}

// run executes script on obj with Argo CD's library set; openLibs as useOpenLibs.
func run(script string, obj map[string]interface{}, openLibs bool) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, err
		}
	}
	l.PreloadModule(lua.OsLibName, loadSafeOs)
	luajson.Preload(l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return Health{}, err
	}
	returned := l.Get(-1)
	if returned.Type() != lua.LTTable {
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return Health{}, err
	}
	var health Health
	if err := json.Unmarshal(encoded, &health); err != nil {
		return Health{}, err
	}
	if !knownStatuses[health.Status] {
		return Health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return health, nil
}

// toLua converts a decoded object as Argo CD does: numbers (float64 from YAML/JSON, int64 from
// the API machinery) become Lua numbers, lists become sequences, maps tables, null nil.
func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []interface{}:
		list := l.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(toLua(l, item))
		}
		return list
	case map[string]interface{}:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}

// Both library sets must agree: the script is meant for argocd-cm (strict) and for upstream (open).
func runBoth(script string, obj map[string]interface{}) (Outcome, error) {
	strict, errStrict := run(script, obj, false)
	open, errOpen := run(script, obj, true)
	if (errStrict == nil) != (errOpen == nil) || strict != open {
		return Outcome{}, fmt.Errorf("differs with and without the standard libraries: %+v (%v) vs %+v (%v)",
			strict, errStrict, open, errOpen)
	}
	if errStrict != nil {
		return Outcome{Error: errStrict.Error()}, nil
	}
	return Outcome{Health: strict}, nil
}

func testDirs(dirs []string, out io.Writer) error {
	cases, failures := 0, 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, entry os.DirEntry, err error) error {
			if err != nil || entry.IsDir() || entry.Name() != "health.lua" {
				return err
			}
			n, bad, err := testOne(filepath.Dir(path), dir, out)
			cases, failures = cases+n, failures+bad
			return err
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "%d cases, %d failures\n", cases, failures)
	if cases == 0 {
		return errors.New("no health.lua found")
	}
	if failures > 0 {
		return fmt.Errorf("%d of %d cases failed", failures, cases)
	}
	return nil
}

func testOne(dir, root string, out io.Writer) (int, int, error) {
	name, _ := filepath.Rel(root, dir)
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return 0, 0, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		return 0, 0, err
	}
	var tests testFile
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		return 0, 0, fmt.Errorf("%s/health_test.yaml: %w", name, err)
	}
	failures := 0
	used := map[string]bool{}
	for _, test := range tests.Tests {
		used[filepath.Clean(test.InputPath)] = true
		got, err := caseOutcome(string(script), filepath.Join(dir, test.InputPath))
		switch {
		case err != nil:
			failures++
			fmt.Fprintf(out, "FAIL %s %s: %v\n", name, test.InputPath, err)
		case got.Error != "" || got.Health != test.HealthStatus:
			failures++
			fmt.Fprintf(out, "FAIL %s %s\n  want %+v\n  got  %+v\n", name, test.InputPath, test.HealthStatus, got)
		default:
			fmt.Fprintf(out, "ok   %s %s: %s\n", name, test.InputPath, got.Status)
		}
	}
	unused, err := unusedTestdata(dir, used)
	for _, path := range unused {
		failures++
		fmt.Fprintf(out, "FAIL %s %s: not a case in health_test.yaml\n", name, path)
	}
	return len(tests.Tests) + len(unused), failures, err
}

func caseOutcome(script, path string) (Outcome, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Outcome{}, err
	}
	obj := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return Outcome{}, err
	}
	return runBoth(script, obj)
}

func unusedTestdata(dir string, used map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "testdata"))
	if err != nil {
		return nil, err
	}
	var unused []string
	for _, entry := range entries {
		path := filepath.Join("testdata", entry.Name())
		if !entry.IsDir() && !used[path] {
			unused = append(unused, path)
		}
	}
	sort.Strings(unused)
	return unused, nil
}

// evalStdin runs script on each object of a JSON array; integers arrive as int64, as from the
// API machinery in a running Argo CD.
func evalStdin(scriptPath string, in io.Reader, out io.Writer) error {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	decoder := json.NewDecoder(in)
	decoder.UseNumber()
	var objects []interface{}
	if err := decoder.Decode(&objects); err != nil {
		return err
	}
	results := make([]Outcome, 0, len(objects))
	for _, object := range objects {
		obj, _ := integers(object).(map[string]interface{})
		if obj == nil {
			obj = map[string]interface{}{}
		}
		outcome, err := runBoth(string(script), obj)
		if err != nil {
			return err
		}
		results = append(results, outcome)
	}
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(results); err != nil {
		return err
	}
	_, err = out.Write(buf.Bytes())
	return err
}

func integers(value interface{}) interface{} {
	switch v := value.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil && !strings.ContainsAny(v.String(), ".eE") {
			return i
		}
		f, _ := v.Float64()
		return f
	case []interface{}:
		for i := range v {
			v[i] = integers(v[i])
		}
	case map[string]interface{}:
		for key := range v {
			v[key] = integers(v[key])
		}
	}
	return value
}
