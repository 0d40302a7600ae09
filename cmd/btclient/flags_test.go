package main

import (
	"bytes"
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
