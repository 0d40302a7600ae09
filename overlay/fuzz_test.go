package overlay

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// FuzzHandleMessage feeds arbitrary lines to the message handler of an open
// node and of a keyed one. Neither may panic; every answer is one valid JSON
// line of an answer type; the keyed node never answers an unsealed line.
func FuzzHandleMessage(f *testing.F) {
	now := time.Now().UnixMilli()
	for _, s := range []string{
		`{"type":"ping","from":"10.0.0.2:6000"}`,
		`{"type":"lookup","info_hash":"0123456789abcdef0123456789abcdef01234567","limit":5}`,
		`{"type":"announce","info_hash":"0123456789abcdef0123456789abcdef01234567","providers":[{"addr":"1.2.3.4:6881","peer_id":"x","left":5,"last_seen":` + itoa(now) + `}]}`,
		`{"type":"gossip","info_hash":"0123456789abcdef0123456789abcdef01234567","providers":[{"addr":"1.2.3.4:6881","left":0,"last_seen":"2030-01-01T00:00:00Z","stopped":true}],"nodes":["10.0.0.3:6000"]}`,
		`{"type":"pong","nodes":["a:1"]}`,
		`{"type":"pull","hashes":["0123456789abcdef0123456789abcdef01234567","x"],"from":"10.0.0.4:6000"}`,
		`{"type":"gossip","info_hash":"0123456789abcdef0123456789abcdef01234567"}`,
		`{"type":"lookup_reply","providers":[{"addr":"1.2.3.4:6881"}]}`,
		`{"ts":1,"mac":"00","body":{"type":"ping"}}`,
		`{"type":"lookup","info_hash":"zz"}`,
		`{"type":"gossip","info_hash":"0123456789abcdef0123456789abcdef01234567","providers":[{"addr":"[::1]:1","last_seen":-1},{"addr":":","last_seen":1e99}]}`,
		`{"v":2,"type":"put","from":"10.9.9.9:6000","records":[{"kind":"peer","key":"0123456789abcdef0123456789abcdef01234567","id":"1.2.3.4:6881","value":"eyJwIjoieCJ9","seen":` + itoa(now) + `,"exp":` + itoa(now+5000) + `}]}`,
		`{"type":"sync","from":"10.9.9.9:6000","reset":true,"done":true,"records":[{"kind":"name","key":"0123456789abcdef0123456789abcdef01234567","id":"x","seen":1,"stopped":true}]}`,
		`{"type":"query","kind":"peer","key":"0123456789abcdef0123456789abcdef01234567","limit":3,"from":"10.9.9.9:6000"}`,
		`{"type":"ping","from":"10.9.9.9:6000","view":"ab","sum":"ffff","count":2,"exp":` + itoa(now+9000) + `,"records":[{"kind":"peer","key":"0123456789abcdef0123456789abcdef01234567","id":"a:1","seen":5}]}`,
		`{"v":3,"type":"ping"}`,
		`{"type":"query","kind":"BAD KIND","key":"zz"}`,
		`{}`, `[]`, `null`, ``, "\xff",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	key := []byte("fuzz key")
	mk := func(addr string, key []byte) *Node {
		mn := NewMemNetwork()
		tr, err := mn.Listen(addr)
		if err != nil {
			f.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.Transport = tr
		cfg.SwarmKey = key
		cfg.RequestRate, cfg.RequestBurst, cfg.LookupRate, cfg.LookupBurst = 1e9, 1e9, 1e9, 1e9
		n, err := NewNode(cfg)
		if err != nil {
			f.Fatal(err)
		}
		return n
	}
	open, keyed := mk("10.0.0.1:6000", nil), mk("10.0.0.2:6000", key)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, line []byte, sealIt bool) {
		checkReply(t, open, nil, line)
		reply, _ := keyed.handleLine(ctx, "10.9.9.9", line)
		if reply != nil && !json.Valid(line) {
			t.Fatalf("keyed node answered a line that is not even JSON: %q", reply)
		}
		if sealIt && json.Valid(line) {
			checkReply(t, keyed, key, seal(key, line, time.Now().UnixMilli()))
		}
		if open.stats.panics.Load()+keyed.stats.panics.Load() != 0 {
			t.Fatalf("handler panicked on %q", line)
		}
	})
}

func checkReply(t *testing.T, n *Node, key []byte, line []byte) {
	reply, _ := n.handleLine(context.Background(), "10.9.9.9", line)
	if reply == nil {
		return
	}
	if len(reply) == 0 || reply[len(reply)-1] != '\n' {
		t.Fatalf("answer is not one line: %q", reply)
	}
	cd := codec{key: key, maxAge: 30_000, now: func() int64 { return time.Now().UnixMilli() }}
	m, err := cd.decode(reply[:len(reply)-1])
	if err != nil {
		t.Fatalf("answer %q does not decode: %v", reply, err)
	}
	if !isReply(m.Type) {
		t.Fatalf("answered with a request type %q", m.Type)
	}
	if len(m.Providers) > n.cfg.MaxProvidersPerReply || len(m.Records) > n.cfg.MaxRecordsPerMessage {
		t.Fatalf("answer carries %d providers, %d records", len(m.Providers), len(m.Records))
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }
