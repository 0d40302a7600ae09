package peerwire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestReservedBits(t *testing.T) {
	var h Handshake
	if h.SupportsExtensions() || h.SupportsDHT() {
		t.Fatal("a zero handshake claims extensions")
	}
	h.SetExtensions()
	h.SetDHT()
	if h.Reserved != [8]byte{0, 0, 0, 0, 0, 0x10, 0, 0x01} {
		t.Fatalf("reserved = %x, want BEP 10's bit 20 and BEP 5's last bit", h.Reserved)
	}
	if !h.SupportsExtensions() || !h.SupportsDHT() {
		t.Fatal("bits set but not reported")
	}
}

func TestPortMessage(t *testing.T) {
	m := PortMessage(6881)
	wire := AppendMessage(nil, m)
	if !bytes.Equal(wire, []byte{0, 0, 0, 3, 9, 0x1a, 0xe1}) {
		t.Fatalf("port message on the wire = %x", wire)
	}
	got, _, err := Decode(wire, 100)
	if err != nil {
		t.Fatal(err)
	}
	port, err := ParsePort(got.Payload)
	if err != nil || port != 6881 {
		t.Fatalf("ParsePort = %d, %v", port, err)
	}
	if _, err := ParsePort([]byte{1}); !errors.Is(err, ErrMessage) {
		t.Fatalf("a 1-byte port: err = %v", err)
	}
}

func TestExtHandshakeRoundTrip(t *testing.T) {
	in := ExtHandshake{
		M:            map[string]int{ExtMetadata: 1, ExtPEX: 2},
		V:            "btclient 0.2",
		Port:         6881,
		ReqQ:         2048,
		MetadataSize: 31235,
		YourIP:       netip.MustParseAddr("127.0.0.5"),
	}
	msg := ExtendedMessage(0, in.Marshal())
	id, body, err := SplitExtended(msg.Payload)
	if err != nil || id != 0 {
		t.Fatalf("SplitExtended = %d, %v", id, err)
	}
	out, err := ParseExtHandshake(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
}

func TestParseExtHandshake(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ExtHandshake
		wantErr bool
	}{
		{"libtorrent's shape, unknown keys ignored",
			"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei5000e4:reqqi500e11:upload_onlyi0e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e",
			ExtHandshake{M: map[string]int{"lt_donthave": 7, "share_mode": 8, "upload_only": 3, "ut_holepunch": 4, ExtMetadata: 2, ExtPEX: 1},
				V: "libtorrent/2.0.8.0", ReqQ: 500, MetadataSize: 5000, YourIP: netip.MustParseAddr("127.0.0.1")}, false},
		{"an IPv6 yourip", "d1:mde6:yourip16:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01e",
			ExtHandshake{M: map[string]int{}, YourIP: netip.MustParseAddr("::1")}, false},
		{"disabled and out-of-range ids dropped", "d1:md1:ai0e1:bi256e1:ci-1e1:di9eee",
			ExtHandshake{M: map[string]int{"d": 9}}, false},
		{"nonsense port and queue dropped", "d1:mde1:pi70000e4:reqqi-5ee",
			ExtHandshake{M: map[string]int{}}, false},
		{"a negative metadata size dropped", "d1:mde13:metadata_sizei-1ee",
			ExtHandshake{M: map[string]int{}}, false},
		{"a yourip of the wrong length ignored", "d1:mde6:yourip3:abce",
			ExtHandshake{M: map[string]int{}}, false},
		{"not bencode", "junk", ExtHandshake{}, true},
		{"m of the wrong type", "d1:mi1ee", ExtHandshake{}, true},
		{"a port of the wrong type", "d1:mde1:p3:abce", ExtHandshake{M: map[string]int{}}, false},
		{"too many extensions", "d1:md" + manyExtensions(maxExtensions+1) + "ee", ExtHandshake{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExtHandshake([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrExtension) {
					t.Fatalf("err = %v, want ErrExtension", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func manyExtensions(n int) string {
	var b strings.Builder
	for i := range n {
		name := "x" + strings.Repeat("y", i)
		b.WriteString(strconv.Itoa(len(name)) + ":" + name + "i1e")
	}
	return b.String()
}

func TestMetadataMsg(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 100)
	tests := []struct {
		name string
		msg  MetadataMsg
		wire string
	}{
		{"request", MetadataMsg{Type: MetadataRequest, Piece: 3}, "d8:msg_typei0e5:piecei3ee"},
		{"reject", MetadataMsg{Type: MetadataReject, Piece: 0}, "d8:msg_typei2e5:piecei0ee"},
		{"data", MetadataMsg{Type: MetadataData, Piece: 1, TotalSize: 16484, Data: data}, "d8:msg_typei1e5:piecei1e10:total_sizei16484ee" + string(data)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.msg.Marshal()
			if string(b) != tt.wire {
				t.Fatalf("Marshal = %q, want %q", b, tt.wire)
			}
			got, err := ParseMetadataMsg(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.msg.Type || got.Piece != tt.msg.Piece || got.TotalSize != tt.msg.TotalSize || !bytes.Equal(got.Data, tt.msg.Data) {
				t.Fatalf("got %+v, want %+v", got, tt.msg)
			}
		})
	}
	if NumMetadataPieces(16384) != 1 || NumMetadataPieces(16385) != 2 || NumMetadataPieces(1) != 1 {
		t.Fatal("NumMetadataPieces miscounts")
	}
}

func TestParseMetadataMsgRejects(t *testing.T) {
	big := strings.Repeat("x", MetadataPieceSize+1)
	for name, in := range map[string]string{
		"no msg_type":           "d5:piecei0ee",
		"unknown type":          "d8:msg_typei7e5:piecei0ee",
		"negative piece":        "d8:msg_typei0e5:piecei-1ee",
		"huge piece":            "d8:msg_typei0e5:piecei99999999ee",
		"bytes after a request": "d8:msg_typei0e5:piecei0eeXX",
		"data over 16 KiB":      "d8:msg_typei1e5:piecei0e10:total_sizei99999ee" + big,
		"data without a size":   "d8:msg_typei1e5:piecei0eeXX",
		"not bencode":           "x",
		"a string for a type":   "d8:msg_type1:ae",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseMetadataMsg([]byte(in)); !errors.Is(err, ErrExtension) {
				t.Fatalf("err = %v, want ErrExtension", err)
			}
		})
	}
}

func TestPEXRoundTrip(t *testing.T) {
	in := PEX{
		Added: []PEXPeer{
			{Addr: netip.MustParseAddrPort("127.0.0.2:6881"), Flags: PEXSeed},
			{Addr: netip.MustParseAddrPort("[2001:db8::1]:51413"), Flags: PEXReachable},
			{Addr: netip.MustParseAddrPort("10.1.2.3:1")},
		},
		Dropped: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.9:9"), netip.MustParseAddrPort("[::2]:3")},
	}
	out, err := ParsePEX(in.Marshal(), 50)
	if err != nil {
		t.Fatal(err)
	}
	// IPv4 entries come first on the wire.
	want := PEX{Added: []PEXPeer{in.Added[0], in.Added[2], in.Added[1]}, Dropped: in.Dropped}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("round trip: %+v, want %+v", out, want)
	}
}

func TestParsePEXBounds(t *testing.T) {
	var many PEX
	for i := range 10000 {
		many.Added = append(many.Added, PEXPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 6881)})
	}
	got, err := ParsePEX(many.Marshal(), 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Added) != 50 {
		t.Fatalf("10,000 added peers: kept %d, want the cap of 50", len(got.Added))
	}
	for name, in := range map[string]string{
		"a list that is not whole entries": "d5:added5:abcdee",
		"an IPv6 list of IPv4 entries":     "d6:added66:abcdefe",
		"not bencode":                      "d5:added",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePEX([]byte(in), 50); !errors.Is(err, ErrExtension) {
				t.Fatalf("err = %v, want ErrExtension", err)
			}
		})
	}
	if got, err := ParsePEX([]byte("d5:addedli1eee"), 50); err != nil || len(got.Added) != 0 {
		t.Fatalf("a list where a string belongs: kept %v, %v; want it ignored", got.Added, err)
	}
	junk := PEX{Added: []PEXPeer{
		{Addr: netip.MustParseAddrPort("0.0.0.0:1")},
		{Addr: netip.MustParseAddrPort("224.0.0.1:1")},
		{Addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 0)},
	}}
	if got, err := ParsePEX(junk.Marshal(), 50); err != nil || len(got.Added) != 0 {
		t.Fatalf("undialable addresses: kept %v, %v", got.Added, err)
	}
}
