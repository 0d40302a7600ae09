package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDaemonRPCFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		f        daemonFlags
		wantErr  string
		wantUser string
	}{
		{"loopback needs no auth", daemonFlags{rpcListen: "127.0.0.1:9091"}, "", ""},
		{"localhost needs no auth", daemonFlags{rpcListen: "localhost:9091"}, "", ""},
		{"IPv6 loopback", daemonFlags{rpcListen: "[::1]:9091"}, "", ""},
		{"all interfaces without auth", daemonFlags{rpcListen: "0.0.0.0:9091"}, "set --rpc-auth", ""},
		{"an empty host is every interface", daemonFlags{rpcListen: ":9091"}, "set --rpc-auth", ""},
		{"a LAN address without auth", daemonFlags{rpcListen: "192.168.1.5:9091"}, "set --rpc-auth", ""},
		{"all interfaces with auth", daemonFlags{rpcListen: "0.0.0.0:9091", rpcAuth: "u:p"}, "", "u"},
		{"all interfaces, insecure on purpose", daemonFlags{rpcListen: "0.0.0.0:9091", insecure: true}, "", ""},
		{"auth without a colon", daemonFlags{rpcListen: "127.0.0.1:9091", rpcAuth: "secret"}, "USER:PASS", ""},
		{"auth with an empty password", daemonFlags{rpcListen: "127.0.0.1:9091", rpcAuth: "u:"}, "USER:PASS", ""},
		{"no port", daemonFlags{rpcListen: "127.0.0.1"}, "HOST:PORT", ""},
		{"a bad port", daemonFlags{rpcListen: "127.0.0.1:http-ish"}, "bad port", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := tc.f.rpcConfig()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if err == nil && cfg.User != tc.wantUser {
				t.Fatalf("user %q, want %q", cfg.User, tc.wantUser)
			}
		})
	}
}

func TestDaemonAndRemoteBadUsageExit2(t *testing.T) {
	for _, args := range [][]string{
		{"daemon", "extra-arg"},
		{"daemon", "--rpc-listen", "0.0.0.0:1"},
		{"daemon", "--no-such-flag"},
		{"remote"},
		{"remote", "explode"},
		{"remote", "info"},
		{"remote", "info", "not-an-id"},
		{"remote", "stop", "1", "--delete"},
		{"remote", "list", "--paused"},
		{"remote", "add", "/no/such/file.torrent"},
		{"remote", "add", "magnet:?xt=urn:btih:short"},
		{"remote", "--auth", "nocolon", "list"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != exitUsage {
			t.Errorf("btclient %s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUsage, errb.String())
		}
	}
}
