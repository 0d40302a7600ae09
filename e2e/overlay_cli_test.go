package e2e

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOverlayNodeRejectsBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "unknown flag"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"bad port", []string{"--overlay-port", "70000"}, "overlay-port"},
		{"bad bootstrap", []string{"--bootstrap", "no-port"}, "bootstrap"},
		{"bad announce", []string{"--announce", "abc=1.2.3.4:5"}, "info hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(binary, append([]string{"node"}, tt.args...)...).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestOverlayNodeStopsCleanlyOnSIGTERM(t *testing.T) {
	p, addr := startOverlayNode(t, "node")
	if addr == "" {
		t.Fatal("no address")
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
}
