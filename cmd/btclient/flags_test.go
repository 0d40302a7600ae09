package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"262144", 262144, true},
		{"256KiB", 256 << 10, true},
		{"256k", 256 << 10, true},
		{"5MiB", 5 << 20, true},
		{"1 GiB", 1 << 30, true},
		{"-1", 0, false},
		{"lots", 0, false},
		{"9999999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFlagsFallBackToEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantPort int
		wantOut  string
		wantCode int
		wantDone bool
	}{
		{"environment fills an unset flag", map[string]string{"BTCLIENT_OVERLAY_PORT": "7000"}, nil, 7000, ".", 0, false},
		{"the command line wins", map[string]string{"BTCLIENT_OVERLAY_PORT": "7000"}, []string{"--overlay-port", "8000"}, 8000, ".", 0, false},
		{"shorthand flags have variables too", map[string]string{"BTCLIENT_OUT": "/data"}, nil, 6000, "/data", 0, false},
		{"a bad value in the environment is bad usage", map[string]string{"BTCLIENT_OVERLAY_PORT": "many"}, nil, 6000, ".", exitUsage, true},
		{"a bad flag is bad usage", nil, []string{"--no-such-flag"}, 6000, ".", exitUsage, true},
		{"help is not an error", nil, []string{"--help"}, 6000, ".", exitOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			fs := newFlagSet("test", "test", &stderr)
			port := fs.Int("overlay-port", 6000, "")
			out := fs.StringP("out", "o", ".", "")
			done, code := parseFlags(fs, tt.args, &stderr)
			if done != tt.wantDone || code != tt.wantCode {
				t.Fatalf("parseFlags = %v, %d; want %v, %d (%s)", done, code, tt.wantDone, tt.wantCode, stderr.String())
			}
			if !done && (*port != tt.wantPort || *out != tt.wantOut) {
				t.Fatalf("port %d out %q; want %d %q", *port, *out, tt.wantPort, tt.wantOut)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("max-upload-rate"); got != "BTCLIENT_MAX_UPLOAD_RATE" {
		t.Fatalf("envName = %q", got)
	}
}

func TestConfigFile(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		env      map[string]string
		args     []string
		wantPort int
		wantPeer []string
		wantRate string
		wantErr  string
	}{
		{"flag names and variables", "# a comment\noverlay-port = 7000\nBTCLIENT_MAX_UPLOAD_RATE=\"5MiB\"\n\n", nil, nil, 7000, nil, "5MiB", ""},
		{"a list on several lines", "peer=a:1\npeer=b:2,c:3\n", nil, nil, 6000, []string{"a:1", "b:2", "c:3"}, "0", ""},
		{"the command line wins", "overlay-port=7000\n", nil, []string{"--overlay-port", "8000"}, 8000, nil, "0", ""},
		{"the environment wins", "overlay-port=7000\n", map[string]string{"BTCLIENT_OVERLAY_PORT": "9000"}, nil, 9000, nil, "0", ""},
		{"an unknown setting is named", "overlay-port=7000\nno-such-setting=1\n", nil, nil, 0, nil, "", `line 2: unknown setting "no-such-setting"`},
		{"an unknown variable is named", "BTCLIENT_NOPE=1\n", nil, nil, 0, nil, "", `unknown setting "BTCLIENT_NOPE"`},
		{"a line without =", "overlay-port 7000\n", nil, nil, 0, nil, "", "want NAME=value"},
		{"a bad value", "overlay-port=many\n", nil, nil, 0, nil, "", "overlay-port"},
		{"no nesting", "config=/etc/passwd\n", nil, nil, 0, nil, "", `unknown setting "config"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "btclient.conf")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			fs := newFlagSet("test", "test", &stderr)
			port := fs.Int("overlay-port", 6000, "")
			peers := fs.StringSlice("peer", nil, "")
			rate := fs.String("max-upload-rate", "0", "")
			addConfigFlag(fs)
			done, code := parseFlags(fs, append([]string{"--config", path}, tt.args...), &stderr)
			if tt.wantErr != "" {
				if !done || code != exitUsage || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Fatalf("parseFlags = %v, %d, %q; want exit 2 saying %q", done, code, stderr.String(), tt.wantErr)
				}
				return
			}
			if done {
				t.Fatalf("parseFlags stopped: %s", stderr.String())
			}
			if *port != tt.wantPort || !slices.Equal(*peers, tt.wantPeer) || *rate != tt.wantRate {
				t.Fatalf("port %d peers %v rate %s; want %d %v %s", *port, *peers, *rate, tt.wantPort, tt.wantPeer, tt.wantRate)
			}
		})
	}
	var stderr bytes.Buffer
	fs := newFlagSet("test", "test", &stderr)
	addConfigFlag(fs)
	if done, code := parseFlags(fs, []string{"--config", "/no/such/file"}, &stderr); !done || code != exitUsage {
		t.Fatalf("a missing file: %v %d", done, code)
	}
}
