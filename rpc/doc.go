// Package rpc serves Transmission's RPC protocol (/transmission/rpc, the
// camelCase and kebab-case names of RPC version 16 that transmission-remote
// 3.x and the tools built on it speak) over a session, with the guards a
// daemon reachable by a browser needs: Basic auth with failures rate
// limited, the X-Transmission-Session-Id handshake against cross-site
// requests, Host and Origin checks against DNS rebinding, bounded bodies,
// and paths kept inside the directories the daemon was given. It also
// serves the web page at / (embedded, using the same RPC) and has the
// client that `btclient remote` and the tests use.
package rpc
