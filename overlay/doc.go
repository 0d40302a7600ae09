// Package overlay is btclient's gossip overlay: nodes that tell each other which
// peer-wire addresses provide which torrents, so peers find each other without a
// tracker.
//
// Files, one concern each: config.go (tunables and defaults), provider.go (the
// Provider record and its JSON), store.go (the provider Store: last-writer-wins
// on LastSeen, TTL, caps; no network), message.go (the wire messages and line
// framing), security.go (the optional HMAC envelope), transport.go,
// net_transport.go and mem_transport.go (the network behind a small interface:
// TCP, and an in-memory network for tests and simulations), members.go (the
// known and live overlay nodes), node.go (serving and handling messages),
// gossip.go (rumor and anti-entropy push-pull), health.go (failure detection),
// lookup.go (Lookup and Discover), client.go (one-shot requests to a node) and
// ratelimit.go (per-source token buckets).
//
// # Wire protocol
//
// Newline-delimited JSON over TCP, one object per line, at most
// Config.MaxLineBytes (1 MiB) a line; a longer line closes the connection.
// Fields: "type", "info_hash" (40 hex characters), "providers"
// ([{"addr","peer_id","left","last_seen","stopped"}], last_seen in unix
// milliseconds; an RFC 3339 string is accepted too), "limit", "nodes" (overlay
// addresses the sender knows), "from" (the sender's overlay address),
// "hashes" (info hashes, for pull) and "error". Unknown fields are ignored.
//
// Requests and their answers, on the connection the request came on:
//
//	announce  → (none)        a provider announces itself; its IP is taken from the connection
//	gossip    → gossip_reply  push of one info hash's entries; the reply carries what the receiver has newer
//	pull      → pull_reply    hashes: the sender's info hashes; the reply names those the receiver has besides
//	lookup    → lookup_reply  providers for info_hash (at most 100, never stopped or expired) and nodes
//	ping      → pong          nodes: the receiver's live view
//	other     → error
//
// Answers arriving as requests (an unsolicited pong, lookup_reply,
// gossip_reply, pull_reply or error) are dropped and the connection closed.
//
// With a swarm key every line is an envelope {"ts":ms,"mac":hex,"body":{...}}
// where mac = HMAC-SHA256(key, "btclient-overlay-v1\n" + ts + "\n" + body);
// lines without a valid, fresh MAC are dropped without an answer.
package overlay
