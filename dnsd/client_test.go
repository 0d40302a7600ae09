package dnsd

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestResolveBootstrap(t *testing.T) {
	srv, stop := startServer(t, testConfig(t))
	post(t, srv.APIAddr(), "peers.example", "127.0.0.2", 60)
	post(t, srv.APIAddr(), "peers.example", "127.0.0.3", 60)
	post(t, srv.APIAddr(), "v6.example", "::1", 60)

	tests := []struct {
		name    string
		server  string
		entries []string
		want    []string
		errWith string // non-empty: an error naming this is expected
	}{
		{"a name answers all its addresses from dnsd", srv.DNSAddr(),
			[]string{"peers.example:6000"}, []string{"127.0.0.2:6000", "127.0.0.3:6000"}, ""},
		{"IPv6 answers are bracketed", srv.DNSAddr(),
			[]string{"v6.example:6000"}, []string{"[::1]:6000"}, ""},
		{"IP literals pass through", srv.DNSAddr(),
			[]string{"10.1.2.3:6000", "[2001:db8::1]:7000"}, []string{"10.1.2.3:6000", "[2001:db8::1]:7000"}, ""},
		{"a name dnsd does not know falls back to the system resolver", srv.DNSAddr(),
			[]string{"localhost:6000"}, []string{"127.0.0.1:6000"}, ""},
		{"without a dnsd server only the system resolver is asked", "",
			[]string{"localhost:6000", "10.0.0.1:1"}, []string{"127.0.0.1:6000", "10.0.0.1:1"}, ""},
		{"duplicates are dropped", srv.DNSAddr(),
			[]string{"peers.example:6000", "127.0.0.2:6000"}, []string{"127.0.0.2:6000", "127.0.0.3:6000"}, ""},
		{"an entry without a port is reported and the rest still resolve", srv.DNSAddr(),
			[]string{"peers.example", "10.0.0.1:1"}, []string{"10.0.0.1:1"}, `"peers.example"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			got, err := ResolveBootstrap(ctx, tt.server, tt.entries)
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			switch {
			case tt.errWith == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.errWith != "" && (err == nil || !strings.Contains(err.Error(), tt.errWith)):
				t.Errorf("error %v, want one naming %s", err, tt.errWith)
			}
		})
	}

	t.Run("with dnsd down a name the system resolver knows still works", func(t *testing.T) {
		dead := srv.DNSAddr()
		stop()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		got, err := ResolveBootstrap(ctx, dead, []string{"localhost:6000"})
		if err != nil || !slices.Equal(got, []string{"127.0.0.1:6000"}) {
			t.Errorf("got %v, %v; want [127.0.0.1:6000]", got, err)
		}
	})
}

func TestResolveReportsUnknownNames(t *testing.T) {
	srv, _ := startServer(t, testConfig(t))
	post(t, srv.APIAddr(), "v6only.example", "2001:db8::1", 60)
	post(t, srv.APIAddr(), "a.b.example", "10.0.0.1", 60)
	tests := []struct {
		name, host string
		want       []string
		notFound   bool
	}{
		{"an unknown name is ErrNotFound", "nobody.example", nil, true},
		{"an empty non-terminal is ErrNotFound", "b.example", nil, true},
		{"an IPv6-only name gives its AAAA records", "v6only.example", []string{"2001:db8::1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs, err := Resolve(t.Context(), srv.DNSAddr(), tt.host)
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Fatalf("error %v, want ErrNotFound=%v", err, tt.notFound)
			}
			var got []string
			for _, a := range addrs {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	srv, _ := startServer(t, testConfig(t))
	tests := []struct {
		name    string
		apiURL  string
		host    string
		ip      string
		ttl     time.Duration
		errWith string
	}{
		{"a record registered by URL resolves", "http://" + srv.APIAddr(), "me.example", "10.0.0.7", 30 * time.Second, ""},
		{"a bare host:port works too", srv.APIAddr() + "/", "me2.example", "10.0.0.8", 1500 * time.Millisecond, ""},
		{"the server's reason for a refusal is returned", "http://" + srv.APIAddr(), "bad_name", "10.0.0.9", time.Minute, "bad name"},
		{"a bad ip is refused", "http://" + srv.APIAddr(), "me3.example", "nope", time.Minute, "bad ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Register(t.Context(), tt.apiURL, tt.host, tt.ip, tt.ttl)
			if tt.errWith != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errWith) {
					t.Fatalf("error %v, want one containing %q", err, tt.errWith)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !resolvesTo(srv.DNSAddr(), tt.host, tt.ip) {
				t.Errorf("%s does not resolve to %s", tt.host, tt.ip)
			}
		})
	}
	for _, r := range listRecords(t, srv.APIAddr()) {
		if r.Name == "me2.example" && r.TTL != 2 {
			t.Errorf("a 1.5s registration has TTL %d, want it rounded up to 2", r.TTL)
		}
	}
}
