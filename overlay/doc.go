// Package overlay is btclient's overlay: nodes that keep small records for
// each other, the first of them the providers of a torrent (which peer-wire
// addresses serve which info hash), so peers find each other without a
// tracker.
//
// # Design: a one-hop overlay
//
// Membership is gossiped: every node pings every node it knows each
// HealthInterval, answers carry the answerer's live view when it differs,
// and a node that misses DeadAfter checks in a row is dead (health.go,
// members.go). Only pings decide: a put or query that times out gets its
// node pinged soon, and a round in which many nodes time out at once
// stretches the timeouts (Lifeguard's local health: the slow one is more
// likely this node), so a node starved of CPU does not declare its
// neighbours dead and make them resend their records. So every node knows every live node, and every node places
// every key the same way: the live nodes sit on a ring by SHA-1 of their
// address, and the Replicas (5) nodes at or after a key's position own it
// (all nodes when there are fewer; placement.go). A record is sent straight
// to its owners, and a query goes straight to them: one hop, whatever the
// number of records or nodes. Discover's breadth-first search remains for a
// node whose view is still empty or wrong.
//
// Each record has an origin, the node that published it, which keeps it in
// its origin table and keeps the owners' copies in step (publish.go): a new
// or changed record is sent to its owners at once (put); every ping to a node
// carries the digest (count and an order-free hash) of the records that node
// should hold from the pinger and a lease, the time until which they are all
// renewed. An owner whose digest agrees extends them; one whose digest
// disagrees answers so, and the origin sends it the full set in chunks
// (sync), which replaces what it held. Renewing costs nothing but the digest,
// records move to their new owners when membership changes (the new owner's
// digest is wrong until synced; an old owner is synced an empty set), and
// when a node dies its owners drop its records. Last-writer-wins on a
// record's Seen decides between versions, and a record not published again
// expires ProviderTTL after its last Publish, on every owner at the same
// time (records about to expire are named in the ping and left out of the
// lease).
//
// What grows with the overlay is membership: every node pings every node,
// so steady-state traffic is one ping per node per HealthInterval, whatever
// the number of records (about 3.6 KB/s per node at 50 nodes; SWIM's random
// probing would be the next step for thousands of nodes).
//
// The Store (store.go) holds a node's records as an owner, per origin, with
// caps in bytes (Config.MaxStoreBytes, MaxOriginBytes), per record
// (MaxValueBytes) and per key (MaxRecordsPerKey, MaxRecordsPerOriginKey); no
// cap evicts, so no origin can push another's records out.
//
// # API
//
// Records are generic: Record{Kind, Key, ID, Value, Seen, Stopped}.
//
//	n.Publish(ctx, r)                 // store r on the owners of r.Key; again within ProviderTTL to keep it
//	n.PublishBatch(ctx, rs)           // the same for many, each owner's share in few lines
//	n.Withdraw(ctx, kind, key, id)    // a tombstone: readers stop returning the record
//	n.Query(ctx, kind, key, limit)    // the live records of (kind, key), newest per ID
//
// Kind is 1-16 characters of a-z, 0-9, '-', '_'; ID 1-300 bytes; Value at
// most MaxValueBytes (1 KiB); one origin holds at most MaxRecordsPerOriginKey
// records under one (kind, key) on any owner. Providers are the kind
// KindProvider ("peer": Key the info hash, ID the peer-wire address, Value
// the peer id and bytes left) behind Announce, Lookup and Discover.
//
// Files, one concern each: config.go (tunables and defaults), record.go (the
// Record, its digest and JSON, providers as records), provider.go (the
// Provider and its JSON), store.go (the Store), placement.go (the ring),
// publish.go (the origin table, Publish, put and sync), message.go (the wire
// messages and line framing), security.go (the optional HMAC envelope),
// transport.go, net_transport.go and mem_transport.go (TCP, and an in-memory
// network for tests and simulations), members.go (the known and live nodes),
// node.go (serving and handling messages), health.go (pings, leases, failure
// detection), lookup.go (Query, Lookup and Discover), client.go (one-shot
// requests to a node) and ratelimit.go (per-source token buckets).
//
// # Wire protocol
//
// Newline-delimited JSON over TCP, one object per line, at most
// Config.MaxLineBytes (1 MiB) a line; a longer line closes the connection.
// Every message has "v", the protocol version (2; absent means 2), and
// "type". A request of a newer version than the node's gets an error answer
// naming both versions and the connection is closed. Other fields: "from"
// (the sender's overlay address), "info_hash" and "key" (40 hex characters),
// "kind", "records" ([{"kind","key","id","value","seen","exp","stopped"}],
// value in base64, times in unix milliseconds), "providers"
// ([{"addr","peer_id","left","last_seen","stopped"}], last_seen in unix
// milliseconds or RFC 3339), "limit", "nodes" (overlay addresses), "view",
// "sum", "count", "exp", "sync", "reset", "done" and "error". Unknown fields
// are ignored.
//
// Requests and their answers, on the connection the request came on:
//
//	announce → (none)       a provider announces itself to a node, which publishes it; its IP is taken from the connection
//	lookup   → lookup_reply providers of info_hash (at most 100); from a client (no "from") the node asks the owners
//	query    → query_reply  the records this node holds for (kind, key), and "nodes": the key's owners as it sees them
//	put      → put_reply    records from their origin ("from", which must be the connection's IP or both loopback)
//	sync     → sync_reply   a chunk of the origin's full set for this node: "reset" on the first, "done" on the last
//	ping     → pong         view, sum, count, exp: the pinger's view and lease; pong: nodes if views differ, sync if the digest does not match
//	other    → error
//
// Answers arriving as requests (pong, lookup_reply, query_reply, put_reply,
// sync_reply, error, and version 1's gossip_reply and pull_reply) are
// dropped and the connection closed.
//
// With a swarm key every line is an envelope {"ts":ms,"mac":hex,"body":{...}}
// where mac = HMAC-SHA256(key, "btclient-overlay-v1\n" + ts + "\n" + body);
// lines without a valid, fresh MAC are dropped without an answer.
package overlay
