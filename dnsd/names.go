package dnsd

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// maxNameLen is the longest name in presentation form without the final dot
// (RFC 1035 §2.3.4 allows 255 octets on the wire, which is 253 characters).
const maxNameLen = 253

// CanonicalName checks that name is a host name by the RFC 1035 label rules
// (as relaxed by RFC 1123: a label may start with a digit) and returns it in
// the form the server keys records by: lower case, no trailing dot.
// A single trailing dot is accepted, so "Tracker.Example." and
// "tracker.example" name the same records.
func CanonicalName(name string) (string, error) {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return "", errors.New("empty name")
	}
	if len(n) > maxNameLen {
		return "", fmt.Errorf("name is %d characters long, more than %d", len(n), maxNameLen)
	}
	for label := range strings.SplitSeq(n, ".") {
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("name %q: %w", name, err)
		}
	}
	return strings.ToLower(n), nil
}

func checkLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty label")
	case len(label) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", label)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
		if !ok {
			return fmt.Errorf("label %q has a character other than a letter, digit or hyphen", label)
		}
	}
	return nil
}

// parseRecordIP parses an address that a record may hold: IPv4 or IPv6,
// without a zone and not unspecified. An IPv4-mapped IPv6 address is
// turned into the IPv4 address it maps, so it is served as an A record.
func parseRecordIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad ip %q: not an IPv4 or IPv6 address", s)
	}
	return checkRecordIP(ip)
}

func checkRecordIP(ip netip.Addr) (netip.Addr, error) {
	switch {
	case !ip.IsValid():
		return netip.Addr{}, errors.New("missing ip")
	case ip.Zone() != "":
		return netip.Addr{}, fmt.Errorf("bad ip %s: zones are not allowed", ip)
	case ip.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("bad ip %s: unspecified address", ip)
	}
	return ip.Unmap(), nil
}
