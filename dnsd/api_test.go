package dnsd

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestAPIRejectsBadRequests(t *testing.T) {
	srv, _ := startServer(t, testConfig(t))
	base := "http://" + srv.APIAddr()
	post(t, srv.APIAddr(), "node.example", "10.0.0.1", 60)
	huge := `{"name":"node.example","ip":"10.0.0.2","ttl":60,"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"malformed JSON", "POST", "/records", `{"name":`, 400},
		{"not an object", "POST", "/records", `["node.example","10.0.0.2"]`, 400},
		{"an unknown field", "POST", "/records", `{"name":"a.example","ip":"10.0.0.2","tll":5}`, 400},
		{"two objects in one body", "POST", "/records", `{"name":"a.example","ip":"10.0.0.2"} {}`, 400},
		{"an empty body", "POST", "/records", ``, 400},
		{"a missing name", "POST", "/records", `{"ip":"10.0.0.2"}`, 400},
		{"a name with an underscore", "POST", "/records", `{"name":"bad_name.example","ip":"10.0.0.2"}`, 400},
		{"a label starting with a hyphen", "POST", "/records", `{"name":"-bad.example","ip":"10.0.0.2"}`, 400},
		{"an empty label", "POST", "/records", `{"name":"a..example","ip":"10.0.0.2"}`, 400},
		{"a label over 63 characters", "POST", "/records", `{"name":"` + strings.Repeat("a", 64) + `.example","ip":"10.0.0.2"}`, 400},
		{"a name over 253 characters", "POST", "/records", `{"name":"` + strings.Repeat("abcdefghi.", 26) + `example","ip":"10.0.0.2"}`, 400},
		{"a missing ip", "POST", "/records", `{"name":"a.example"}`, 400},
		{"a bad ip", "POST", "/records", `{"name":"a.example","ip":"10.0.0.256"}`, 400},
		{"a host name as ip", "POST", "/records", `{"name":"a.example","ip":"localhost"}`, 400},
		{"an ip with a zone", "POST", "/records", `{"name":"a.example","ip":"fe80::1%eth0"}`, 400},
		{"the unspecified ip", "POST", "/records", `{"name":"a.example","ip":"0.0.0.0"}`, 400},
		{"a negative ttl", "POST", "/records", `{"name":"a.example","ip":"10.0.0.2","ttl":-1}`, 400},
		{"a ttl over a day", "POST", "/records", `{"name":"a.example","ip":"10.0.0.2","ttl":86401}`, 400},
		{"a fractional ttl", "POST", "/records", `{"name":"a.example","ip":"10.0.0.2","ttl":1.5}`, 400},
		{"a string ttl", "POST", "/records", `{"name":"a.example","ip":"10.0.0.2","ttl":"60"}`, 400},
		{"a body over 64 KiB", "POST", "/records", huge, 400},
		{"a wrong method on /records", "PUT", "/records", `{}`, 405},
		{"a wrong method on a name", "POST", "/records/node.example", `{}`, 405},
		{"a wrong method on /gossip", "DELETE", "/gossip", ``, 405},
		{"deleting a bad name", "DELETE", "/records/bad_name", ``, 400},
		{"deleting with a bad ip", "DELETE", "/records/node.example?ip=nope", ``, 400},
		{"listing a bad name", "GET", "/records?name=-x", ``, 400},
		{"gossip that is not JSON", "POST", "/gossip", `nonsense`, 400},
		{"an unknown path", "GET", "/nothing/here", ``, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, tt.method, base+tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error (%v)", body, err)
			}
		})
	}
	// The server is still up, answering, and unchanged.
	want := []Record{{Name: "node.example", IP: mustAddr(t, "10.0.0.1")}}
	if got := listRecords(t, srv.APIAddr()); !sameAddresses(got, want) {
		t.Errorf("records after bad requests: %v", got)
	}
	if addrs, err := Resolve(t.Context(), srv.DNSAddr(), "node.example"); err != nil || len(addrs) != 1 {
		t.Errorf("DNS after bad requests: %v %v", addrs, err)
	}
}

func TestAPIRecordLifecycle(t *testing.T) {
	cfg := testConfig(t)
	srv, _ := startServer(t, cfg)
	base := "http://" + srv.APIAddr()

	status, body := do(t, "POST", base+"/records", `{"name":"Node.Example.","ip":"10.0.0.1"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %s", status, body)
	}
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Name != "node.example" || rec.IP.String() != "10.0.0.1" || rec.TTL != int64(cfg.DefaultTTL/time.Second) {
		t.Errorf("POST without ttl stored %+v, want node.example 10.0.0.1 with the default TTL", rec)
	}
	post(t, srv.APIAddr(), "node.example", "10.0.0.2", 30)
	post(t, srv.APIAddr(), "node.example", "::ffff:10.0.0.3", 30) // IPv4-mapped: served as A
	post(t, srv.APIAddr(), "node.example", "2001:db8::1", 30)
	post(t, srv.APIAddr(), "other.example", "10.0.0.9", 30)

	steps := []struct {
		name   string
		method string
		path   string
		want   []string // addresses of node.example afterwards
	}{
		{"registering lists every address", "", "", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1"}},
		{"deleting one address keeps the others", "DELETE", "/records/node.example?ip=10.0.0.2", []string{"10.0.0.1", "10.0.0.3", "2001:db8::1"}},
		{"deleting a name in another case removes all its addresses", "DELETE", "/records/NODE.example", nil},
		{"deleting again is harmless", "DELETE", "/records/node.example", nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.method != "" {
				if status, body := do(t, st.method, base+st.path, ""); status != http.StatusOK {
					t.Fatalf("%s %s: %d %s", st.method, st.path, status, body)
				}
			}
			status, body := do(t, "GET", base+"/records?name=node.example", "")
			if status != http.StatusOK {
				t.Fatalf("GET: %d %s", status, body)
			}
			var recs []Record
			if err := json.Unmarshal(body, &recs); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.IP.String())
			}
			if !slices.Equal(got, st.want) {
				t.Errorf("GET lists %v, want %v", got, st.want)
			}
			addrs, err := Resolve(t.Context(), srv.DNSAddr(), "node.example")
			var resolved []string
			for _, a := range addrs {
				resolved = append(resolved, a.String())
			}
			slices.Sort(resolved)
			if !slices.Equal(resolved, st.want) {
				t.Errorf("DNS answers %v (%v), want %v", resolved, err, st.want)
			}
		})
	}
	if recs := listRecords(t, srv.APIAddr()); len(recs) != 1 || recs[0].Name != "other.example" {
		t.Errorf("other names were touched: %v", recs)
	}
}

func TestAPIStoreIsBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecords = 3
	cfg.MaxRecordsPerName = 2
	srv, _ := startServer(t, cfg)
	base := "http://" + srv.APIAddr()
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"first address", `{"name":"a.example","ip":"10.0.0.1"}`, 201},
		{"second address", `{"name":"a.example","ip":"10.0.0.2"}`, 201},
		{"a third address for one name is refused", `{"name":"a.example","ip":"10.0.0.3"}`, 507},
		{"refreshing a known address still works", `{"name":"a.example","ip":"10.0.0.2","ttl":5}`, 201},
		{"another name fits", `{"name":"b.example","ip":"10.0.0.4"}`, 201},
		{"a fourth record is refused", `{"name":"c.example","ip":"10.0.0.5"}`, 507},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := do(t, "POST", base+"/records", tt.body); status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
		})
	}
	c := dns.Client{Timeout: 2 * time.Second}
	if resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("a.example.", dns.TypeA), srv.DNSAddr()); err != nil || len(resp.Answer) != 2 {
		t.Errorf("a full store still answers: %v %v", resp, err)
	}
}
