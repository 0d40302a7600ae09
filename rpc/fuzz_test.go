package rpc

import (
	"encoding/json"
	"testing"

	"btclient/discovery"
	"btclient/session"
)

var fuzzSeeds = []string{
	`{"method":"session-get","tag":7}`,
	`{"method":"torrent-get","arguments":{"fields":["id","name","files","trackers"],"ids":[1,"0123456789abcdef0123456789abcdef01234567"],"format":"table"}}`,
	`{"method":"torrent-get","arguments":{"fields":["id"],"ids":"recently-active"}}`,
	`{"method":"torrent-add","arguments":{"filename":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x","paused":1}}`,
	`{"method":"torrent-add","arguments":{"metainfo":"ZDQ6aW5mb2Q2Omxlbmd0aGkxZTQ6bmFtZTE6eDEyOnBpZWNlIGxlbmd0aGkxNjM4NGU2OnBpZWNlczIwOmFhYWFhYWFhYWFhYWFhYWFhYWFhZWU="}}`,
	`{"method":"torrent-set","arguments":{"ids":1,"uploadLimit":1e3,"uploadLimited":true}}`,
	`{"method":"session-set","arguments":{"speed-limit-down":-1,"download-dir":"../x"}}`,
	`{"method":"torrent-remove","arguments":{"ids":[1.5,-1,"x"]}}`,
	`{"arguments":{"ids":[[[]]]},"method":"torrent-stop"}`,
	`{"method":"free-space","arguments":{"path":"/"}}`,
}

// FuzzDecodeRequest feeds arbitrary bodies to the request decoder and every
// typed argument getter: errors are fine, panics are not.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRequest(body)
		if err != nil {
			return
		}
		for key := range req.Args {
			req.Args.str(key)
			req.Args.integer(key)
			req.Args.boolean(key)
			req.Args.strings(key)
		}
		req.Args.ids()
	})
}

// FuzzHandle runs arbitrary bodies through the whole method dispatch of a
// session that is not running (nothing starts, nothing is kept): every
// answer is a well-formed response, never a panic.
func FuzzHandle(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	cfg := session.DefaultConfig()
	cfg.DownloadDir = dir
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Discovery.Mode = discovery.ModeTracker
	sess, err := session.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	rc := DefaultConfig()
	rc.TorrentDirs = []string{dir}
	srv, err := New(sess, rc)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := srv.handle(body)
		if resp.Result == "" || resp.Result == "internal error" {
			t.Fatalf("result %q for %q", resp.Result, body)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("unencodable response for %q: %v", body, err)
		}
	})
}
