// Package dht is btclient's mainline DHT node (BEP 5): KRPC over UDP, a
// routing table of k-buckets, tokens, a peer store, and iterative lookups
// that find the peers of an info hash and announce this host as one. It
// imports nothing of the engine.
//
// # Use
//
//	cfg := dht.DefaultConfig()          // ListenAddr ":6881", no bootstrap node, no state file
//	cfg.ListenAddr = "0.0.0.0:6881"     // by convention the peer-wire port number
//	cfg.Bootstrap = []string{"host:port"}
//	cfg.StateFile = "/var/lib/btclient/dht.state"
//	n, err := dht.New(cfg)              // binds, loads the saved table
//	go n.Run(ctx)                       // serves until ctx is done, then saves the table
//	peers, err := n.GetPeers(ctx, ih)   // []netip.AddrPort
//	peers, err = n.Announce(ctx, ih, port, false)
//	n.AddNode(addr)                     // a peer's BEP 5 port message: ping it, add it if it answers
//	n.Stats()                           // table size, lookups, traffic, what the defences dropped
//
// GetPeers and Announce may be called once Run has been started (answers
// are read by Run), and fail once it has returned. The node does not
// re-announce by itself: announces expire after 30 minutes at the nodes
// that store them (Config.PeerTTL), so whoever runs a torrent calls
// Announce again every 15 minutes or so while it is active (btclient's
// discovery package does). No public router is ever contacted unless
// named in Config.Bootstrap; a node learns others from the bootstrap
// nodes, its saved table, AddNode, and nodes that query it.
//
// # Files
//
// One concern each: config.go (tunables and defaults), id.go (ids and XOR
// distance), krpc.go (the wire messages and compact forms), addr.go (which
// addresses are usable and how they are counted), table.go (the routing
// table, no I/O), store.go (the peer store), token.go (tokens), guard.go
// (per-source limits and the amplification budget), transport.go (UDP and
// the in-memory network), node.go (serving, transactions, maintenance),
// lookup.go (iterative lookups, GetPeers, Announce), state.go (the saved
// table) and stats.go.
//
// # Protocol
//
// ping, find_node, get_peers and announce_peer (with implied_port) are
// answered; other methods get error 204. Unknown keys are ignored: "v",
// BEP 32's "nodes6" and "want" (the node speaks IPv4 and answers with
// "nodes"), BEP 33's "scrape"/"noseed", BEP 42's "ip". A node sending
// "ro": 1 (BEP 43) is answered but never added to the table. Replies carry
// "v" = "JC" and a version.
//
// The table has buckets of K = 8 nodes indexed by the bits an id shares
// with ours; only the bucket holding our own id splits. A node enters it
// only after answering a query of ours from the address we asked: nodes
// named in replies are lookup candidates, and a node that queries us gets
// a ping first. A full bucket keeps a replacement cache and pings its
// stalest questionable node; two unanswered queries in a row make a node
// bad, and a bad node gives its slot to a replacement. Buckets unchanged
// for 15 minutes are refreshed by a lookup of a random id inside them.
//
// Lookups keep Alpha = 3 queries in flight to the closest candidates not
// yet asked, and finish when the K closest candidates that have not failed
// have all answered. A query unanswered after SlowQuery (500 ms) stops
// counting against Alpha, so dead nodes cost time only in parallel.
// Announce sends announce_peer, with the token each node gave, to the K
// closest nodes that answered the get_peers lookup.
//
// # Defences and bounds
//
//   - Every datagram is read into a buffer of MaxPacketSize+1 (2048) bytes;
//     a longer one is dropped unread. Bencode is parsed by btclient/bencode
//     (bounded nesting and lengths); compact node lists whose length is not
//     a multiple of 26 make the whole reply junk, and its sender is not
//     added.
//   - Queries: QueryRate per source (20/s, burst 40) and GlobalQueryRate
//     for all (2000/s); excess is dropped silently. A source is an IP, or
//     an IP and port for loopback and private addresses (all local
//     processes share 127.0.0.1).
//   - Junk (malformed or oversized packets, responses to no query of ours or
//     from another address than the one asked, forged tokens): JunkRate per
//     source (1/s, burst 20); past that the source is ignored for
//     BlockDuration (1 min).
//   - Amplification: every byte received from a source earns
//     AmplificationFactor (4) bytes of credit, capped at AmplificationBurst
//     (4096); every reply or verifying ping to it spends its size; what has
//     no credit is not sent, and get_peers replies carry fewer values to
//     fit. So over any interval, bytes sent to an address ≤ 4 × bytes
//     received from it + 4096. Queries a lookup sends are not replies: one
//     lookup asks one address at most once, and takes at most 2K nodes from
//     any one reply.
//   - Responses are matched to a pending transaction id and must come from
//     the address asked; tokens are SHA-1 of a secret rotated every 5
//     minutes, the querier's IP and the info hash (valid 5-10 minutes).
//   - A public node cannot point us at loopback or private addresses.
//   - The table holds at most MaxNodesPerIP (1) entries per IP and
//     MaxNodesPerSubnet (4) per public /24, and at most 160 buckets of K
//     nodes plus K replacements (2560 entries). The peer store holds at
//     most MaxInfoHashes (2000) × MaxPeersPerHash (256) peers, at most 4 per
//     IP per hash, each for 30 minutes. MaxPending (1024) queries await
//     answers, MaxVerifying (16) verifying pings run at once, and the limits
//     remember MaxSources (8192) sources.
//   - Every packet handler recovers from a panic (counted in Stats).
package dht
