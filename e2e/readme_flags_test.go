package e2e

// TestREADMEFlags keeps README.md honest about the CLI: it compares the usage
// the README documents with what the binary prints.
//
// The format README.md must follow (how a README author keeps this test
// green): under the heading "## Usage" (the section runs to the next "## "
// heading; "###" subheadings inside it are fine), paste each command's
// --help output verbatim into its own ```text fenced block:
//
//	```text
//	Usage: btclient create [flags] PATH
//
//	Flags:
//	  -o, --out FILE            write the torrent to FILE ...
//	      --piece-length SIZE   ...
//	```
//
// one block for `btclient --help` (its first line is "Usage: btclient [flags]
// TORRENT") and one for `btclient SUB --help` of every subcommand. A block is
// recognised by its first line "Usage: btclient ..."; other ```text blocks in
// the section are ignored. Flag lines are read the way pflag prints them: two
// spaces then "-x, --flag", or six spaces then "--flag".
//
// The test fails when
//   - a command (the download command or a subcommand) has no usage block;
//   - a flag of a command's --help is missing from that command's block, or
//     the block names a flag the command does not have;
//   - anywhere in the README, a `--flag` in an inline code span or on a code
//     line that runs btclient is not a flag of any btclient command (flags of
//     other tools, in spans or lines that start with docker, go, make, curl and
//     the like, are not checked);
//   - a BTCLIENT_<FLAG> environment variable named in the README maps to no
//     flag (BTCLIENT_DEBUG, read directly by the binary, is allowed).
//
// It skips only while README.md does not exist. E2E_README=path checks another
// file instead.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeSubcommands are the subcommands whose --help the README must carry,
// besides those listed in the download command's usage line.
var readmeSubcommands = []string{"create", "info", "daemon", "share", "search", "remote", "tracker", "dnsd", "node", "dht", "probe"}

// helpFlagRE matches a pflag usage line: "  -o, --out string" or "      --peer strings".
var helpFlagRE = regexp.MustCompile(`^(?:  -[A-Za-z0-9], |      )--([a-z0-9][a-z0-9-]*)`)

// usageAltRE finds "create|info|tracker" in "btclient create|info|tracker [flags] ...".
var usageAltRE = regexp.MustCompile(`btclient ([a-z]+(?:\|[a-z]+)+)`)

// flagTokenRE finds --flag (and --flag=value) tokens in README text.
var flagTokenRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9-])--([a-z0-9][a-z0-9-]*)`)

// envRE finds BTCLIENT_<FLAG> variables in README text.
var envRE = regexp.MustCompile(`\bBTCLIENT_([A-Z0-9_]+)`)

// inlineCodeRE finds `inline code` spans.
var inlineCodeRE = regexp.MustCompile("`([^`\n]+)`")

// otherTools start code spans and command lines whose flags are not btclient's.
var otherTools = []string{"docker", "docker-compose", "go", "make", "curl", "wget", "git", "gofmt",
	"staticcheck", "aria2c", "transmission-cli", "transmission-daemon", "transmission-remote",
	"python", "python3", "pip", "apt-get", "apt", "dig", "jq", "sha256sum", "kill", "ps",
	"scripts/", "./scripts/", "sudo", "env", "ssh", "nc", "timeout"}

func TestREADMEFlags(t *testing.T) {
	readme := filepath.Join("..", "README.md")
	if p := os.Getenv("E2E_README"); p != "" {
		readme = p // to try the test on another file
	}
	raw, err := os.ReadFile(readme)
	if os.IsNotExist(err) {
		t.Skip("README.md does not exist yet: nothing to compare with `btclient --help` (this test runs once it does)")
	}
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)

	// What the binary says: command ("" is the download command) → flags.
	mainHelp := helpOutput(t, nil)
	cmds := map[string]bool{}
	for _, s := range readmeSubcommands {
		cmds[s] = true
	}
	if m := usageAltRE.FindStringSubmatch(mainHelp); m != nil {
		for _, s := range strings.Split(m[1], "|") {
			cmds[s] = true
		}
	}
	help := map[string][]string{"": helpFlags(mainHelp)}
	for s := range cmds {
		out := helpOutput(t, []string{s})
		if !strings.HasPrefix(out, "Usage: btclient "+s) {
			t.Errorf("`btclient %s --help` does not print the usage of a subcommand %q; first line: %q", s, s, firstLine(out))
			continue
		}
		help[s] = helpFlags(out)
	}
	allFlags := map[string]bool{"help": true}
	for _, fl := range help {
		for _, f := range fl {
			allFlags[f] = true
		}
	}

	// What the README says.
	blocks, ok := usageBlocks(text)
	if !ok {
		t.Fatalf("README.md has no \"## Usage\" section; paste every command's --help output there in ```text blocks (see this test's comment for the format)")
	}
	for _, cmd := range sortedKeys(help) {
		label := "btclient " + cmd
		if cmd == "" {
			label = "btclient (download)"
		}
		block, ok := blocks[cmd]
		if !ok {
			t.Errorf("README.md: no usage block for `%s`: paste the output of `%s --help` in a ```text block under \"## Usage\"", label, strings.TrimSuffix("btclient "+cmd, " "))
			continue
		}
		documented := helpFlags(block)
		for _, f := range help[cmd] {
			if !slices.Contains(documented, f) {
				t.Errorf("README.md: `%s` has --%s, which its usage block does not list", label, f)
			}
		}
		for _, f := range documented {
			if !slices.Contains(help[cmd], f) {
				t.Errorf("README.md: the usage block of `%s` lists --%s, which `%s --help` does not have", label, f, label)
			}
		}
	}
	for cmd := range blocks {
		if _, ok := help[cmd]; !ok {
			t.Errorf("README.md: a usage block documents `btclient %s`, which is not a btclient subcommand", cmd)
		}
	}

	// Every --flag the README names in btclient context exists somewhere.
	for _, ref := range flagMentions(text) {
		if !allFlags[ref.flag] {
			t.Errorf("README.md:%d: names --%s, which no btclient command has (in %q)", ref.line, ref.flag, ref.context)
		}
	}
	for i, line := range strings.Split(text, "\n") {
		for _, m := range envRE.FindAllStringSubmatch(line, -1) {
			name := m[1]
			if name == "DEBUG" || name == "" {
				continue
			}
			flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if !allFlags[flag] {
				t.Errorf("README.md:%d: names BTCLIENT_%s, but no btclient command has --%s", i+1, name, flag)
			}
		}
	}
}

// helpOutput runs `btclient ARGS... --help` and returns what it printed.
func helpOutput(t *testing.T, args []string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--help")...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("btclient %s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cleanEnv drops BTCLIENT_* variables so the test environment cannot change
// what --help prints.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTCLIENT_") {
			env = append(env, kv)
		}
	}
	return env
}

// helpFlags returns the long flag names of pflag usage lines in text, in order.
func helpFlags(text string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if m := helpFlagRE.FindStringSubmatch(sc.Text()); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// usageBlocks returns the ```text blocks of the "## Usage" section that start
// with "Usage: btclient", keyed by subcommand ("" for the download command).
func usageBlocks(readme string) (map[string]string, bool) {
	lines := strings.Split(readme, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "## Usage" {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil, false
	}
	blocks := map[string]string{}
	var cur []string
	inText, inOther := false, false
	for _, l := range lines[start:] {
		trimmed := strings.TrimSpace(l)
		switch {
		case !inText && !inOther && strings.HasPrefix(l, "## "):
			return blocks, true
		case !inText && !inOther && strings.HasPrefix(trimmed, "```"):
			if strings.TrimPrefix(trimmed, "```") == "text" {
				inText, cur = true, nil
			} else {
				inOther = true
			}
		case inOther && strings.HasPrefix(trimmed, "```"):
			inOther = false
		case inText && strings.HasPrefix(trimmed, "```"):
			inText = false
			body := strings.Join(cur, "\n")
			if first := firstLine(strings.TrimLeft(body, "\n")); strings.HasPrefix(first, "Usage: btclient") {
				cmd := ""
				if f := strings.Fields(first); len(f) > 2 && !strings.HasPrefix(f[2], "[") && strings.ToLower(f[2]) == f[2] && !strings.ContainsAny(f[2], "|.") {
					cmd = f[2]
				}
				blocks[cmd] = body
			}
		case inText:
			cur = append(cur, l)
		}
	}
	return blocks, true
}

type flagRef struct {
	line    int
	flag    string
	context string
}

// flagMentions finds the --flags the README attributes to btclient: in inline
// code spans and on lines of fenced code blocks, except those that run another
// tool. Usage blocks are checked separately (and strictly) above.
func flagMentions(readme string) []flagRef {
	var refs []flagRef
	inFence := false
	for i, line := range strings.Split(readme, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inFence = !inFence
			continue
		}
		var spans []string
		if inFence {
			if helpFlagRE.MatchString(line) || strings.HasPrefix(trimmed, "Usage:") {
				continue // a pasted usage line: checked per command
			}
			spans = []string{trimmed}
		} else {
			for _, m := range inlineCodeRE.FindAllStringSubmatch(line, -1) {
				spans = append(spans, m[1])
			}
		}
		for _, s := range spans {
			if runsOtherTool(s) {
				continue
			}
			for _, m := range flagTokenRE.FindAllStringSubmatch(s, -1) {
				refs = append(refs, flagRef{line: i + 1, flag: m[1], context: s})
			}
		}
	}
	return refs
}

// runsOtherTool reports whether a code span or command line runs something
// other than btclient (its flags are that tool's business).
func runsOtherTool(s string) bool {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$ "))
	// Environment assignments before the command: FOO=bar btclient ...
	for {
		f := strings.Fields(s)
		if len(f) == 0 || !strings.Contains(f[0], "=") || strings.HasPrefix(f[0], "-") {
			break
		}
		s = strings.TrimSpace(strings.TrimPrefix(s, f[0]))
	}
	if strings.Contains(s, "btclient") && !strings.HasPrefix(s, "docker") {
		return false
	}
	for _, tool := range otherTools {
		if s == tool || strings.HasPrefix(s, tool+" ") || (strings.HasSuffix(tool, "/") && strings.HasPrefix(s, tool)) {
			return true
		}
	}
	return strings.HasPrefix(s, "#") // a comment line in a shell block
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
