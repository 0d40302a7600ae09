// Package bencode is btclient's one bencode layer. It guards hostile input
// before github.com/jackpal/bencode-go sees it (nesting depth, value counts,
// string lengths, integer range, duplicate keys), finds the raw bytes of a
// value where a hash or a trailing payload depends on them (a torrent's info
// dictionary, a BEP 9 data message), and encodes with bencode-go.
//
// Decoded values are int64, string, []any and map[string]any. Unmarshal
// fills structs with bencode-go's rules (field names or `bencode:"key"` tags,
// unknown keys ignored) but turns a value of the wrong type into an error
// where bencode-go would panic.
package bencode
