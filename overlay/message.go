package overlay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// ProtocolVersion is the version of the wire protocol this node speaks,
// sent as "v" in every message. A message without "v" is taken as this
// version; a request of a newer one gets an error answer naming both.
const ProtocolVersion = 2

// Message types on the wire.
const (
	typeAnnounce    = "announce"
	typeLookup      = "lookup"
	typeLookupReply = "lookup_reply"
	typeQuery       = "query"
	typeQueryReply  = "query_reply"
	typePut         = "put"
	typePutReply    = "put_reply"
	typeSync        = "sync"
	typeSyncReply   = "sync_reply"
	typePing        = "ping"
	typePong        = "pong"
	typeError       = "error"

	// Answers of protocol version 1, which no request of ours expects any
	// more: arriving as requests they are unsolicited like any answer.
	typeGossipReplyV1 = "gossip_reply"
	typePullReplyV1   = "pull_reply"
)

// message is one wire line. Unknown fields are ignored when decoding.
type message struct {
	V         int        `json:"v,omitempty"`
	Type      string     `json:"type"`
	InfoHash  string     `json:"info_hash,omitempty"`
	Providers []Provider `json:"providers,omitempty"`
	Kind      string     `json:"kind,omitempty"`
	Key       string     `json:"key,omitempty"`
	Records   []Record   `json:"records,omitempty"`
	Limit     int        `json:"limit,omitempty"`
	Nodes     []string   `json:"nodes,omitempty"`
	From      string     `json:"from,omitempty"`
	Error     string     `json:"error,omitempty"`
	// Ping: the sender's membership view and the lease of the records the
	// receiver should hold from it. Pong: Sync asks for those records.
	View  string `json:"view,omitempty"`
	Sum   string `json:"sum,omitempty"`
	Count int    `json:"count,omitempty"`
	Exp   int64  `json:"exp,omitempty"`
	Sync  bool   `json:"sync,omitempty"`
	// Sync: Reset on the first line of a full set, Done on the last.
	Reset bool `json:"reset,omitempty"`
	Done  bool `json:"done,omitempty"`
}

// isReply reports whether t only ever answers a request we sent.
func isReply(t string) bool {
	switch t {
	case typeLookupReply, typeQueryReply, typePutReply, typeSyncReply, typePong, typeError,
		typeGossipReplyV1, typePullReplyV1:
		return true
	}
	return false
}

// wantReply names the answer a request type expects; "" means none.
func wantReply(t string) string {
	switch t {
	case typeLookup:
		return typeLookupReply
	case typeQuery:
		return typeQueryReply
	case typePut:
		return typePutReply
	case typeSync:
		return typeSyncReply
	case typePing:
		return typePong
	}
	return ""
}

// codec turns messages into lines and back, sealing and opening them when a
// swarm key is set.
type codec struct {
	key     []byte
	maxAge  int64 // milliseconds
	now     func() int64
	traffic *traffic // counts outbound exchanges; nil: none
}

// encode returns the line for m, newline included.
func (c codec) encode(m message) ([]byte, error) {
	m.V = ProtocolVersion
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type, err)
	}
	if c.key != nil {
		body = seal(c.key, body, c.now())
	}
	return append(body, '\n'), nil
}

var errUnauthenticated = errors.New("message not authenticated")

// decode parses one line (without its newline) into a message.
func (c codec) decode(line []byte) (message, error) {
	var m message
	body := line
	if c.key != nil {
		var err error
		if body, err = open(c.key, line, c.now(), c.maxAge); err != nil {
			return m, err
		}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("decode message: %w", err)
	}
	return m, nil
}

var errLineTooLong = errors.New("line too long")

// lineReader reads newline-terminated lines of at most max bytes. Lines
// longer than the bufio buffer draw on a budget shared by all connections, so
// the memory held by partly read lines stays bounded as a whole.
type lineReader struct {
	r         *bufio.Reader
	max       int
	budget    *atomic.Int64 // nil: no shared budget
	budgetMax int64
}

const readBufSize = 16 << 10

func newLineReader(r io.Reader, max int, budget *atomic.Int64, budgetMax int64) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, readBufSize), max: max, budget: budget, budgetMax: budgetMax}
}

// readLine returns the next line without its "\n" (and "\r"). The returned
// slice is only valid until the next call.
func (lr *lineReader) readLine() ([]byte, error) {
	var long []byte
	var reserved int64
	defer func() {
		if reserved > 0 {
			lr.budget.Add(-reserved)
		}
	}()
	for {
		chunk, err := lr.r.ReadSlice('\n')
		switch {
		case err == nil:
			var line []byte
			if long == nil {
				line = chunk
			} else {
				line = append(long, chunk...)
			}
			if len(line)-1 > lr.max {
				return nil, errLineTooLong
			}
			return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(long)+len(chunk) > lr.max {
				return nil, errLineTooLong
			}
			if lr.budget != nil {
				n := int64(len(chunk))
				if lr.budget.Add(n) > lr.budgetMax {
					lr.budget.Add(-n)
					return nil, errors.New("line buffer budget exhausted")
				}
				reserved += n
			}
			long = append(long, chunk...)
		default:
			if err == io.EOF && (len(chunk) > 0 || long != nil) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}
