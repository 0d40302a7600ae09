package dnsd

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzAPIRecordJSON feeds arbitrary bodies to POST /records: every answer
// is 201 with a stored, canonical record, or 400 (507 when full) with a JSON
// error, and never a panic (which the recovery wrapper would turn into 500).
func FuzzAPIRecordJSON(f *testing.F) {
	for _, seed := range []string{
		`{"name":"node.example","ip":"10.0.0.1","ttl":60}`,
		`{"name":"Node.Example.","ip":"2001:db8::1"}`,
		`{"name":"node.example","ip":"::ffff:10.0.0.1","ttl":86400}`,
		`{"name":"bad_name","ip":"10.0.0.1"}`,
		`{"name":"a..b","ip":"10.0.0.1"}`,
		`{"name":"node.example","ip":"fe80::1%eth0"}`,
		`{"name":"node.example","ip":"10.0.0.1","ttl":-5}`,
		`{"name":"node.example","ip":"10.0.0.1","ttl":1e99}`,
		`{"name":"node.example","ip":"10.0.0.1"} {"x":1}`,
		`{"name":"\u0000","ip":"10.0.0.1"}`,
		`[]`, `null`, `"str"`, `{`, ``,
	} {
		f.Add(seed)
	}
	cfg := DefaultConfig()
	cfg.MaxRecords = 1000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body string) {
		st := newStore(cfg, time.Now)
		h := newAPI(cfg, st, log, func() {}).handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/records", strings.NewReader(body)))
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		switch rec.Code {
		case http.StatusCreated:
			var r Record
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
				t.Fatalf("201 with a body that is not a record: %v", err)
			}
			if canon, err := CanonicalName(r.Name); err != nil || canon != r.Name {
				t.Fatalf("stored a name that is not canonical: %q (%v)", r.Name, err)
			}
			if r.TTL < 1 || r.TTL > int64(cfg.MaxTTL.Seconds()) {
				t.Fatalf("stored TTL %d out of bounds", r.TTL)
			}
			if got := st.list(r.Name); len(got) != 1 || got[0].IP != r.IP {
				t.Fatalf("201 but the store lists %v", got)
			}
			v4, v6, exists := st.lookup(r.Name)
			if !exists || len(v4)+len(v6) != 1 {
				t.Fatalf("201 but DNS lookup gives %v %v", v4, v6)
			}
		case http.StatusBadRequest:
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("400 without a JSON error: %q", rec.Body.String())
			}
			if n := len(st.snapshot()); n != 0 {
				t.Fatalf("a refused request stored %d records", n)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}

// FuzzDNSMessage feeds arbitrary bytes to the query handler: whatever
// unpacks gets an answer that packs and fits the UDP limit, or no answer.
func FuzzDNSMessage(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"node.example.", dns.TypeA, false},
		{"NODE.example.", dns.TypeAAAA, true},
		{"many.example.", dns.TypeA, false},
		{"many.example.", dns.TypeANY, true},
		{"nobody.example.", dns.TypeA, true},
		{".", dns.TypeNS, false},
	} {
		m := new(dns.Msg).SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(4096, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := DefaultConfig()
	st := newStore(cfg, time.Now)
	for i := range 100 {
		if _, err := st.put("many.example", netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}), cfg.DefaultTTL); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := st.put("node.example", netip.AddrFrom4([4]byte{10, 1, 0, 1}), cfg.DefaultTTL); err != nil {
		f.Fatal(err)
	}
	h := newDNSHandler(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(raw); err != nil {
			return // the dns server drops or FORMERRs these before the handler
		}
		for _, overTCP := range []bool{false, true} {
			resp := h.answer(req, overTCP)
			if resp == nil {
				if !req.Response {
					t.Fatalf("no answer to a query")
				}
				continue
			}
			out, err := resp.Pack()
			if err != nil {
				t.Fatalf("answer does not pack: %v\n%v", err, resp)
			}
			limit := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), cfg.MaxUDPSize)
			}
			if !overTCP && len(out) > limit {
				t.Fatalf("UDP answer of %d bytes, over %d", len(out), limit)
			}
			if resp.Id != req.Id || !resp.Response {
				t.Fatalf("answer does not match the query")
			}
		}
	})
}
