package torrent

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

const aliceHex = "722fe65b2aa26d14f35b4ad627d20236e481d924"

func TestParseMagnet(t *testing.T) {
	var alice [20]byte
	hex.Decode(alice[:], []byte(aliceHex))
	tests := []struct {
		name string
		uri  string
		want *Magnet
	}{
		{"hex info hash alone", "magnet:?xt=urn:btih:" + aliceHex, &Magnet{InfoHash: alice}},
		{"upper-case hex", "magnet:?xt=urn:btih:722FE65B2AA26D14F35B4AD627D20236E481D924", &Magnet{InfoHash: alice}},
		{"base32 info hash", "magnet:?xt=urn:btih:OIX6MWZKUJWRJ423JLLCPUQCG3SIDWJE", &Magnet{InfoHash: alice}},
		{"lower-case base32", "magnet:?xt=urn:btih:oix6mwzkujwrj423jllcpuqcg3sidwje", &Magnet{InfoHash: alice}},
		{"name, trackers and peers in order", "magnet:?xt=urn:btih:" + aliceHex +
			"&dn=Alice+in+Wonderland&tr=udp%3A%2F%2F127.0.0.1%3A6969&tr=http://t.example/announce&x.pe=127.0.0.2:6881&x.pe=[::1]:51413",
			&Magnet{InfoHash: alice, Name: "Alice in Wonderland",
				Trackers: []string{"udp://127.0.0.1:6969", "http://t.example/announce"},
				Peers:    []string{"127.0.0.2:6881", "[::1]:51413"}}},
		{"unknown parameters ignored", "magnet:?xt=urn:btih:" + aliceHex + "&xl=152&ws=http://w.example/&so=0-3&foo=bar", &Magnet{InfoHash: alice}},
		{"numbered xt with a v2 hash beside", "magnet:?xt.1=urn:btih:" + aliceHex + "&xt.2=urn:btmh:1220" + aliceHex + aliceHex[:24], &Magnet{InfoHash: alice}},
		{"scheme in any case", "MAGNET:?xt=urn:btih:" + aliceHex, &Magnet{InfoHash: alice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMagnet(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			again, err := ParseMagnet(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseMagnetRejectsBadLinks(t *testing.T) {
	tests := []struct{ name, uri string }{
		{"not a magnet", "http://example.com/a.torrent"},
		{"no xt", "magnet:?dn=x"},
		{"xt of another kind", "magnet:?xt=urn:sha1:" + aliceHex},
		{"v2 hash only", "magnet:?xt=urn:btmh:1220" + aliceHex + aliceHex[:24]},
		{"hash too short", "magnet:?xt=urn:btih:722fe65b"},
		{"hex with junk", "magnet:?xt=urn:btih:zz2fe65b2aa26d14f35b4ad627d20236e481d924"},
		{"base32 with junk", "magnet:?xt=urn:btih:0IX6MWZKUJWRJ423JLLCPUQCG3SIDWJ1"},
		{"two different hashes", "magnet:?xt=urn:btih:" + aliceHex + "&xt=urn:btih:" + "0000000000000000000000000000000000000000"},
		{"peer without port", "magnet:?xt=urn:btih:" + aliceHex + "&x.pe=127.0.0.1"},
		{"peer port out of range", "magnet:?xt=urn:btih:" + aliceHex + "&x.pe=127.0.0.1:70000"},
		{"tracker that is no URL", "magnet:?xt=urn:btih:" + aliceHex + "&tr=nonsense"},
		{"bad escaping", "magnet:?xt=urn:btih:" + aliceHex + "&dn=%zz"},
		{"too long", "magnet:?xt=urn:btih:" + aliceHex + "&dn=" + string(make([]byte, maxMagnetLen))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMagnet(tt.uri)
			if !errors.Is(err, ErrMagnet) {
				t.Fatalf("ParseMagnet(%.80q) = %v, want ErrMagnet", tt.uri, err)
			}
		})
	}
}

func TestParseInfoChecksTheInfoHash(t *testing.T) {
	info := bd("length", bi(40000), "name", bs("f.bin"), "piece length", bi(16384), "pieces", bs(hashes(3)))
	torrent, err := Parse(wrap(info))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseInfo([]byte(info), sha1.Sum([]byte(info)))
	if err != nil {
		t.Fatal(err)
	}
	if m.InfoHash != torrent.InfoHash || m.Name != "f.bin" || m.TotalLength != 40000 || m.NumPieces() != 3 {
		t.Fatalf("ParseInfo = %+v", m)
	}
	var other [20]byte
	if _, err := ParseInfo([]byte(info), other); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong hash: err = %v, want ErrInvalid", err)
	}
	bad := bd("name", bs("x"))
	if _, err := ParseInfo([]byte(bad), sha1.Sum([]byte(bad))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid info: err = %v, want ErrInvalid", err)
	}
	junk := "d4:name"
	if _, err := ParseInfo([]byte(junk), sha1.Sum([]byte(junk))); !errors.Is(err, ErrSyntax) {
		t.Fatalf("junk: err = %v, want ErrSyntax", err)
	}
}

func TestEncodeKeepsTheInfoBytesAndTrackers(t *testing.T) {
	// A non-canonical info dictionary (keys out of order): re-encoding it
	// would change the info hash, so Encode must keep it byte for byte.
	info := bd("name", bs("f.bin"), "length", bi(20000), "piece length", bi(16384), "pieces", bs(hashes(2)))
	m, err := ParseInfo([]byte(info), sha1.Sum([]byte(info)))
	if err != nil {
		t.Fatal(err)
	}
	m.SetTrackers([]string{"udp://127.0.0.1:1/announce", "http://127.0.0.1:2/announce"})
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.InfoHash != m.InfoHash {
		t.Fatal("Encode changed the info hash")
	}
	want := [][]string{{"udp://127.0.0.1:1/announce"}, {"http://127.0.0.1:2/announce"}}
	if !reflect.DeepEqual(back.Trackers(), want) {
		t.Fatalf("trackers = %v, want %v", back.Trackers(), want)
	}
	if got := back.Magnet(); got.InfoHash != m.InfoHash || got.Name != "f.bin" || len(got.Trackers) != 2 {
		t.Fatalf("Magnet() = %+v", got)
	}
}
