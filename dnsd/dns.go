package dnsd

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsHandler answers DNS queries from the store.
//
// The server has no zone files: it is authoritative for every name that has
// records, under whatever domain the name sits. A negative answer carries
// the SOA of the queried name's parent (the root for a single label), as if
// each parent were a zone of this server, so that resolvers can cache it
// for NegativeTTL.
type dnsHandler struct {
	store       *store
	log         *slog.Logger
	maxUDPSize  int
	negativeTTL uint32
	nameserver  string
	mailbox     string
}

func newDNSHandler(cfg Config, st *store, log *slog.Logger) *dnsHandler {
	return &dnsHandler{
		store:       st,
		log:         log,
		maxUDPSize:  cfg.MaxUDPSize,
		negativeTTL: uint32(cfg.NegativeTTL / time.Second),
		nameserver:  dns.Fqdn(cfg.Nameserver),
		mailbox:     dns.Fqdn(cfg.Mailbox),
	}
}

// ServeDNS implements dns.Handler.
func (h *dnsHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("dns handler panicked", "panic", p, "from", w.RemoteAddr())
		}
	}()
	_, overTCP := w.RemoteAddr().(*net.TCPAddr)
	m := h.answer(r, overTCP)
	if m == nil {
		return
	}
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("dns write failed", "to", w.RemoteAddr(), "err", err)
	}
}

// answer builds the reply to r, sized for the transport; nil means no reply.
func (h *dnsHandler) answer(r *dns.Msg, overTCP bool) *dns.Msg {
	if r.Response {
		return nil // never answer an answer
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true

	// The server's UDP limit: 512 bytes without EDNS0, the client's buffer
	// size (bounded by ours) with it.
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), h.maxUDPSize)
		m.SetEdns0(uint16(h.maxUDPSize), false)
		if opt.Version() != 0 {
			m.Authoritative = false
			m.Rcode = dns.RcodeBadVers
			return m
		}
	}
	if overTCP {
		size = dns.MaxMsgSize
	}

	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Authoritative = false
		m.Rcode = dns.RcodeNotImplemented
		return m
	case len(r.Question) != 1:
		m.Authoritative = false
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return m
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if name == "" {
		// Not the root's server.
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return m
	}

	v4, v6, exists := h.store.lookup(name)
	if !exists {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{h.soa(q.Name)}
		return m
	}
	switch q.Qtype {
	case dns.TypeA:
		m.Answer = h.addresses(q.Name, v4, nil)
	case dns.TypeAAAA:
		m.Answer = h.addresses(q.Name, nil, v6)
	case dns.TypeANY:
		m.Answer = h.addresses(q.Name, v4, v6)
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{h.soa(q.Name)} // NODATA
	}
	m.Truncate(size)
	return m
}

// addresses turns answers into A and AAAA records owned by qname (as the
// client spelled it), shuffled so clients spread over the addresses.
func (h *dnsHandler) addresses(qname string, v4, v6 []answer) []dns.RR {
	rrs := make([]dns.RR, 0, len(v4)+len(v6))
	for _, a := range v4 {
		hdr := dns.RR_Header{Name: qname, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: a.ttl}
		rrs = append(rrs, &dns.A{Hdr: hdr, A: a.ip.AsSlice()})
	}
	for _, a := range v6 {
		hdr := dns.RR_Header{Name: qname, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: a.ttl}
		rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: a.ip.AsSlice()})
	}
	rand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
	return rrs
}

// soa is the SOA record of qname's parent, sent with negative answers.
func (h *dnsHandler) soa(qname string) dns.RR {
	zone := "."
	if i, end := dns.NextLabel(qname, 0); !end {
		zone = qname[i:]
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: h.negativeTTL},
		Ns:      h.nameserver,
		Mbox:    h.mailbox,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  h.negativeTTL,
	}
}
